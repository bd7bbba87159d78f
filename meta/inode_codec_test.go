package meta

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// randomInode sets each field of an Inode, or leaves it zero, at random,
// with values across the whole range of its type.
func randomInode(r *rand.Rand) Inode {
	some := func() bool { return r.IntN(2) == 0 }
	u64 := func() uint64 {
		if some() {
			return r.Uint64() >> r.IntN(64)
		}
		return 0
	}
	i64 := func() int64 { return int64(u64()) * int64(1-2*r.IntN(2)) }
	str := func() string {
		if some() {
			return string(bytes.Repeat([]byte{'a' + byte(r.IntN(26))}, r.IntN(300)))
		}
		return ""
	}
	in := Inode{Ino: u64(), Type: FileType(u64()), Size: i64(), Mode: uint32(u64()), MTime: i64(), Nlink: uint32(u64()),
		Uid: uint32(u64()), Gid: uint32(u64()), ATime: i64(), CTime: i64(), Gen: u64(), Target: str(), Rdev: u64(),
		Parent: u64(), Hash: str(), DataKey: uint32(u64()), ContentType: str()}
	if some() {
		in.Data = make([]byte, r.IntN(70000))
		for i := range in.Data {
			in.Data[i] = byte(r.Uint32())
		}
	}
	for range r.IntN(3) {
		c := ChunkRef{Size: i64(), Group: str(), Key: uint32(u64()), Tag: str()}
		c.Hash[0], c.Hash[31] = byte(r.Uint32()), byte(r.Uint32())
		in.Chunks = append(in.Chunks, c)
	}
	if some() {
		in.Usage = &Usage{Bytes: i64(), Files: i64(), Dirs: i64()}
	}
	if some() {
		in.Object = &Object{ETag: str(), Public: some(), Meta: map[string]string{"k": str()}}
	}
	return in
}

// TestInodeCodecMatchesReflection checks the hand-written codec against
// msgpack's reflection on the same tags: the same bytes out, the same
// Inode back, from the codec's bytes and from reflection's.
func TestInodeCodecMatchesReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		in := randomInode(r)
		if i == 0 {
			in = Inode{}
		}
		got, err := msgpack.Marshal(&in)
		if err != nil {
			t.Fatal(err)
		}
		want, err := msgpack.Marshal((*inodeFields)(&in))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("inode %d: the codec wrote\n%x\nreflection writes\n%x\nfor %+v", i, got, want, in)
		}
		// By value, as a field of another struct.
		byValue, err := msgpack.Marshal(struct{ In Inode }{in})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(byValue, want) {
			t.Fatalf("inode %d: encoded by value, the record differs", i)
		}
		var back Inode
		if err := msgpack.Unmarshal(want, &back); err != nil {
			t.Fatalf("inode %d: decode: %v", i, err)
		}
		direct, err := UnmarshalInode(want)
		if err != nil || !reflect.DeepEqual(direct, back) {
			t.Fatalf("inode %d: UnmarshalInode gave\n%+v (%v)\nthe decoder\n%+v", i, direct, err, back)
		}
		var ref Inode
		if err := msgpack.Unmarshal(want, (*inodeFields)(&ref)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, ref) {
			t.Fatalf("inode %d: the codec decoded\n%+v\nreflection decodes\n%+v", i, back, ref)
		}
	}
}

// otherEncodings returns records of v (a struct without its codec, by
// pointer) that a codec does not write itself but reflection reads:
// written with compact integers, as an array, with every field omitted
// when empty, with the keys in another order and a field this version
// does not know, and nil. plain is the record as reflection writes it.
func otherEncodings(t *testing.T, v any) (variants [][]byte, plain []byte) {
	t.Helper()
	for _, opt := range []func(*msgpack.Encoder){
		func(e *msgpack.Encoder) { e.UseCompactInts(true) },
		func(e *msgpack.Encoder) { e.UseArrayEncodedStructs(true) },
		func(e *msgpack.Encoder) { e.SetOmitEmpty(true) },
	} {
		var b bytes.Buffer
		e := msgpack.NewEncoder(&b)
		opt(e)
		if err := e.Encode(v); err != nil {
			t.Fatal(err)
		}
		variants = append(variants, b.Bytes())
	}
	m := map[string]any{"zz-unknown": []int{1, 2, 3}}
	plain, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := msgpack.Unmarshal(plain, &m); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	e := msgpack.NewEncoder(&b)
	e.SetSortMapKeys(true)
	if err := e.Encode(m); err != nil {
		t.Fatal(err)
	}
	return append(variants, b.Bytes(), []byte{0xc0}), plain
}

// TestInodeDecodesWhatReflectionAccepts feeds the decoder records it does
// not write itself: compact integers, other field orders, unknown fields,
// a struct encoded as an array, nil, and truncated records.
func TestInodeDecodesWhatReflectionAccepts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		in := randomInode(r)
		variants, _ := otherEncodings(t, (*inodeFields)(&in))
		for j, v := range variants {
			var got, want Inode
			errGot := msgpack.Unmarshal(v, &got)
			errWant := msgpack.Unmarshal(v, (*inodeFields)(&want))
			if (errGot == nil) != (errWant == nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("inode %d, variant %d: the codec decoded %+v (%v), reflection %+v (%v)", i, j, got, errGot, want, errWant)
			}
			direct, errDirect := UnmarshalInode(v)
			if (errDirect == nil) != (errWant == nil) || errWant == nil && !reflect.DeepEqual(direct, want) {
				t.Fatalf("inode %d, variant %d: UnmarshalInode gave %+v (%v), reflection %+v (%v)", i, j, direct, errDirect, want, errWant)
			}
			for cut := range min(len(v), 40) {
				if _, err := UnmarshalInode(v[:cut]); err == nil && cut < len(v) && j < 3 {
					t.Fatalf("inode %d, variant %d: UnmarshalInode read a record cut at %d of %d bytes without error", i, j, cut, len(v))
				}
				var x Inode
				if err := msgpack.Unmarshal(v[:cut], &x); err == nil && cut < len(v) && j < 3 {
					var y Inode
					if msgpack.Unmarshal(v[:cut], (*inodeFields)(&y)) != nil {
						t.Fatalf("inode %d, variant %d: a record cut at %d bytes decoded without error, where reflection fails", i, j, cut)
					}
				}
			}
		}
	}
}

func BenchmarkInodeCodec(b *testing.B) {
	in := Inode{Ino: 12345, Type: TypeFile, Size: 1024, Mode: 0o644, MTime: 1 << 60, Nlink: 1, Uid: 1000, Gid: 1000,
		ATime: 1 << 60, CTime: 1 << 60, Gen: 3, Parent: 7, Hash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Data: make([]byte, 1024)}
	for _, c := range []struct {
		name string
		v    any
		out  any
	}{{"codec", &in, new(Inode)}, {"reflection", (*inodeFields)(&in), new(inodeFields)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v, err := msgpack.Marshal(c.v)
				if err != nil {
					b.Fatal(err)
				}
				if err := msgpack.Unmarshal(v, c.out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkInodeDecodeDir(b *testing.B) {
	in := Inode{Ino: 12345, Type: TypeDir, Mode: 0o755, MTime: 1 << 60, Nlink: 2, Uid: 1000, Gid: 1000,
		ATime: 1 << 60, CTime: 1 << 60, Parent: 7}
	v, _ := msgpack.Marshal(&in)
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out Inode
			if err := msgpack.Unmarshal(v, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out inodeFields
			if err := msgpack.Unmarshal(v, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := UnmarshalInode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal(&in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal((*inodeFields)(&in)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// dirEntryFields is a DirEntry as reflection encoded it before Inode had
// a codec: the name, then the inode's fields inlined.
type dirEntryFields struct {
	Name string `msgpack:"n"`
	inodeFields
}

// TestDirEntryCodecMatchesReflection checks a DirEntry's bytes and its
// decoding against reflection's inlined encoding of it.
func TestDirEntryCodecMatchesReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		in := randomInode(r)
		de := DirEntry{Name: string(bytes.Repeat([]byte{'x'}, r.IntN(40))), Inode: in}
		got, err := msgpack.Marshal(de)
		if err != nil {
			t.Fatal(err)
		}
		old := dirEntryFields{Name: de.Name, inodeFields: inodeFields(in)}
		want, err := msgpack.Marshal(&old)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("entry %d: the codec wrote\n%x\nreflection writes\n%x", i, got, want)
		}
		var back DirEntry
		if err := msgpack.Unmarshal(want, &back); err != nil {
			t.Fatal(err)
		}
		var ref dirEntryFields
		if err := msgpack.Unmarshal(want, &ref); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, DirEntry{Name: ref.Name, Inode: Inode(ref.inodeFields)}) {
			t.Fatalf("entry %d: the codec decoded\n%+v\nreflection decodes\n%+v", i, back, ref)
		}
	}
	var nilEntry DirEntry
	if err := msgpack.Unmarshal([]byte{0xc0}, &nilEntry); err != nil || !reflect.DeepEqual(nilEntry, DirEntry{}) {
		t.Fatalf("nil decoded as %+v, %v", nilEntry, err)
	}
}

// lentReader lends its unread bytes, as a frame of the wire protocol
// does (lentBytes), and counts the records read from them.
type lentReader struct {
	bytes.Reader
	b    []byte
	lent int
}

func newLentReader(b []byte) *lentReader {
	l := &lentReader{b: b}
	l.Reset(b)
	return l
}

func (l *lentReader) Unread() []byte { return l.b[len(l.b)-l.Len():] }
func (l *lentReader) Discard(n int)  { l.lent++; l.Seek(int64(n), io.SeekCurrent) }

// Records read from a reader that lends its bytes decode as reflection
// decodes them, each encoding of them, and the decoder goes on from
// where each ended: an inode twice, then an entry, then a number, in one
// stream. Cut short, they fail as reflection fails.
func TestLentRecordsDecodeAsReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	lent := 0
	for i := range 1000 {
		in := randomInode(r)
		if i%2 == 0 { // scalars only, as most answers are
			in.Chunks, in.Usage, in.Object = nil, nil, nil
		}
		de := dirEntryFields{Name: fmt.Sprint("name", i), inodeFields: inodeFields(in)}
		inodes, _ := otherEncodings(t, (*inodeFields)(&in))
		entries, _ := otherEncodings(t, &de)
		plainIn, _ := msgpack.Marshal(&in)
		plainDe, _ := msgpack.Marshal(DirEntry{Name: de.Name, Inode: in})
		inodes, entries = append(inodes, plainIn), append(entries, plainDe)
		for j := range inodes {
			var want1, want2 Inode
			var wantDe dirEntryFields
			errWant := msgpack.Unmarshal(inodes[j], (*inodeFields)(&want1))
			msgpack.Unmarshal(inodes[j], (*inodeFields)(&want2))
			var asCodec DirEntry
			if err := msgpack.Unmarshal(entries[j], &wantDe); err != nil || errWant != nil || msgpack.Unmarshal(entries[j], &asCodec) != nil {
				continue // a variant reflection, or a DirEntry, does not read (an entry as an array)
			}
			stream := slices.Concat(inodes[j], inodes[j], entries[j], []byte{7})
			lr := newLentReader(stream)
			d := msgpack.NewDecoder(lr)
			var got1, got2 Inode
			var gotDe DirEntry
			var seven int
			if err := cmp.Or(d.Decode(&got1), d.Decode(&got2), d.Decode(&gotDe), d.Decode(&seven)); err != nil {
				t.Fatalf("inode %d, variant %d: %v", i, j, err)
			}
			if !reflect.DeepEqual(got1, want1) || !reflect.DeepEqual(got2, want2) ||
				!reflect.DeepEqual(gotDe, DirEntry{Name: wantDe.Name, Inode: Inode(wantDe.inodeFields)}) || seven != 7 {
				t.Fatalf("inode %d, variant %d: decoded\n%+v\n%+v\n%+v then %d\nreflection decodes\n%+v\n%+v", i, j, got1, got2, gotDe, seven, want1, wantDe)
			}
			lent += lr.lent
			for cut := range min(len(inodes[j]), 40) {
				var x, y Inode
				errGot := msgpack.NewDecoder(newLentReader(inodes[j][:cut])).Decode(&x)
				errRef := msgpack.Unmarshal(inodes[j][:cut], (*inodeFields)(&y))
				if (errGot == nil) != (errRef == nil) {
					t.Fatalf("inode %d, variant %d, cut at %d of %d bytes: decoded with %v, reflection with %v", i, j, cut, len(inodes[j]), errGot, errRef)
				}
			}
		}
	}
	if lent == 0 {
		t.Fatal("no record was read from the lent bytes")
	}
}

// FuzzLentRecords: whatever the bytes, an Inode and a DirEntry read from
// a reader that lends them decode, or fail, as read through the decoder
// alone, and leave the reader where it does.
func FuzzLentRecords(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 4 {
		in := randomInode(r)
		in.Chunks, in.Usage, in.Object = nil, nil, nil
		b, _ := msgpack.Marshal(DirEntry{Name: "f", Inode: in})
		f.Add(b)
		b, _ = msgpack.Marshal(&in)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		stream := append(slices.Clip(b), 7)
		var in, inLent Inode
		var de, deLent DirEntry
		plain := msgpack.NewDecoder(bytes.NewReader(stream))
		errIn := plain.Decode(&in)
		restIn, _ := io.ReadAll(plain.Buffered())
		lent := msgpack.NewDecoder(newLentReader(stream))
		errInLent := lent.Decode(&inLent)
		restInLent, _ := io.ReadAll(lent.Buffered())
		if (errIn == nil) != (errInLent == nil) || errIn == nil && (!reflect.DeepEqual(in, inLent) || !bytes.Equal(restIn, restInLent)) {
			t.Fatalf("inode from %x: %+v (%v), rest %x; lent %+v (%v), rest %x", b, in, errIn, restIn, inLent, errInLent, restInLent)
		}
		plain = msgpack.NewDecoder(bytes.NewReader(stream))
		errDe := plain.Decode(&de)
		restDe, _ := io.ReadAll(plain.Buffered())
		lent = msgpack.NewDecoder(newLentReader(stream))
		errDeLent := lent.Decode(&deLent)
		restDeLent, _ := io.ReadAll(lent.Buffered())
		if (errDe == nil) != (errDeLent == nil) || errDe == nil && (!reflect.DeepEqual(de, deLent) || !bytes.Equal(restDe, restDeLent)) {
			t.Fatalf("entry from %x: %+v (%v), rest %x; lent %+v (%v), rest %x", b, de, errDe, restDe, deLent, errDeLent, restDeLent)
		}
	})
}
