package meta

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// randomOp sets each field of an Op, or leaves it zero, at random, with
// values across the whole range of its type.
func randomOp(r *rand.Rand) Op {
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
	op := Op{Kind: OpKind(u64()), Path: str(), To: str(), Recursive: some(), Parents: some(), Time: i64(),
		Mode: uint32(u64()), ModeGiven: some(), Forming: some(), ReqID: str(), Clock: i64(), Dir: u64(),
		ToDir: u64(), Uid: uint32(u64()), Gid: uint32(u64()), Excl: some(), NoReplace: some(), NotDir: some(),
		OnlyDir: some(), Orphan: some(), WantDirs: some(), Target: str(), TTL: i64(), Node: FileType(u64()),
		Rdev: u64(), Gen: u64(), Owner: some(), Bootstrap: some(), IfMatch: str(), IfAbsent: some(), Fence: u64()}
	if some() {
		in := randomInode(r)
		op.File = &in
	}
	for range r.IntN(3) {
		op.Members = append(op.Members, Member{ID: u64(), Name: str(), Addr: str()})
	}
	if some() {
		op.ReqSum = []byte(str() + "x")
	}
	if some() {
		op.Attr = &SetAttr{Valid: uint8(u64()), Mode: uint32(u64()), Uid: uint32(u64()), MTime: i64()}
	}
	if some() {
		op.Cred = &Cred{Uid: uint32(u64()), Gid: uint32(u64()), Root: some()}
		if some() {
			op.Cred.Groups = []uint32{uint32(u64()), uint32(u64())}
		}
	}
	if some() {
		op.User = &User{Name: str(), Uid: uint32(u64()), Admin: some(), Created: i64()}
	}
	if some() {
		op.Lock = &LockOp{Shared: some(), TTL: i64(), Key: str()}
	}
	return op
}

// TestOpCodecMatchesReflection checks the hand-written codec against
// msgpack's reflection on the same tags: the same bytes out, by value and
// within an Entry, and the same Op back, from the codec's bytes and from
// reflection's.
func TestOpCodecMatchesReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	set := make([]bool, reflect.TypeFor[Op]().NumField()) // fields some op set
	for i := range 5000 {
		op := randomOp(r)
		if i == 0 {
			op = Op{}
		}
		for f := range set {
			set[f] = set[f] || !reflect.ValueOf(op).Field(f).IsZero()
		}
		got, err := msgpack.Marshal(&op)
		if err != nil {
			t.Fatal(err)
		}
		want, err := msgpack.Marshal((*opFields)(&op))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("op %d: the codec wrote\n%x\nreflection writes\n%x\nfor %+v", i, got, want, op)
		}
		byValue, err := msgpack.Marshal(Entry{Index: uint64(i), Op: op})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(byValue, want) {
			t.Fatalf("op %d: encoded by value in an Entry, the record differs", i)
		}
		var back, ref Op
		if err := msgpack.Unmarshal(want, &back); err != nil {
			t.Fatalf("op %d: decode: %v", i, err)
		}
		if err := msgpack.Unmarshal(want, (*opFields)(&ref)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, ref) {
			t.Fatalf("op %d: the codec decoded\n%+v\nreflection decodes\n%+v", i, back, ref)
		}
	}
	for f, ok := range set {
		if !ok {
			t.Errorf("randomOp never sets Op.%s: the codec is not checked on it", reflect.TypeFor[Op]().Field(f).Name)
		}
	}
}

// An op decoded into one already holding values keeps those the record
// does not name and replaces those it does, as reflection does; a nil
// the record gives for a pointer makes it nil.
func TestOpDecodesIntoFilledOp(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := range 200 {
		into := randomOp(r)
		into.ReqSum = []byte("sum")
		rec, err := msgpack.Marshal(map[string]any{"k": 3, "qs": []byte("other"), "p": "/x", "u": 12})
		if err != nil {
			t.Fatal(err)
		}
		got, want := into, into
		errGot := msgpack.Unmarshal(rec, &got)
		errWant := msgpack.Unmarshal(rec, (*opFields)(&want))
		if errGot != nil || errWant != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("op %d: the codec decoded %+v (%v), reflection %+v (%v)", i, got, errGot, want, errWant)
		}
	}
	rec, err := msgpack.Marshal(map[string]any{"k": 3, "f": nil, "cr": nil})
	if err != nil {
		t.Fatal(err)
	}
	op := Op{File: &Inode{Ino: 7}, Cred: &Cred{Uid: 5}}
	if err := msgpack.Unmarshal(rec, &op); err != nil || op.File != nil || op.Cred != nil {
		t.Fatalf("a record naming File and Cred as nil decoded to File %v, Cred %v (%v), want both nil", op.File, op.Cred, err)
	}
}

// TestOpDecodesWhatReflectionAccepts feeds the decoder records it does
// not write itself: compact integers, other field orders, unknown fields,
// a struct encoded as an array, nil, and truncated records.
func TestOpDecodesWhatReflectionAccepts(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 500 {
		op := randomOp(r)
		variants, plain := otherEncodings(t, (*opFields)(&op))
		for j, v := range variants {
			var got, want Op
			errGot := msgpack.Unmarshal(v, &got)
			errWant := msgpack.Unmarshal(v, (*opFields)(&want))
			if (errGot == nil) != (errWant == nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("op %d, variant %d: the codec decoded %+v (%v), reflection %+v (%v)", i, j, got, errGot, want, errWant)
			}
		}
		for range 20 {
			cut := r.IntN(len(plain))
			var got Op
			if err := msgpack.Unmarshal(plain[:cut], &got); err == nil {
				t.Fatalf("op %d: a record cut to %d of %d bytes decoded without error", i, cut, len(plain))
			}
		}
	}
}

// TestCredCodecMatchesReflection checks a Cred's codec on its own: the
// ops above encode theirs with it on both sides.
func TestCredCodecMatchesReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 2000 {
		c := Cred{Uid: r.Uint32() >> r.IntN(32), Gid: r.Uint32() >> r.IntN(32), Root: r.IntN(2) == 0, Host: r.IntN(2) == 0}
		for range r.IntN(4) {
			c.Groups = append(c.Groups, r.Uint32()>>r.IntN(32))
		}
		got, err := msgpack.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := msgpack.Marshal((*credFields)(&c))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("cred %d: the codec wrote %x, reflection writes %x for %+v", i, got, want, c)
		}
		variants, plain := otherEncodings(t, (*credFields)(&c))
		for j, v := range append(variants, plain, plain[:len(plain)/2]) {
			var back, ref Cred
			errBack := msgpack.Unmarshal(v, &back)
			errRef := msgpack.Unmarshal(v, (*credFields)(&ref))
			if (errBack == nil) != (errRef == nil) || !reflect.DeepEqual(back, ref) {
				t.Fatalf("cred %d, variant %d: the codec decoded %+v (%v), reflection %+v (%v)", i, j, back, errBack, ref, errRef)
			}
		}
	}
}

// BenchmarkEntryCodec encodes and decodes a log entry of a small file's
// put, as each member does for its log and the wire.
func BenchmarkEntryCodec(b *testing.B) {
	in := Inode{Type: TypeFile, Size: 1024, Mode: 0o644, MTime: 1765000000000000000, Nlink: 1,
		Hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Data: make([]byte, 1024)}
	e := Entry{Index: 123456, Ballot: Ballot{Term: 5, Node: 2}, Op: Op{Kind: OpPut, Path: "/bench/small/f000123",
		Time: 1765000000000000000, File: &in, ReqID: "0123456789abcdef0123", Clock: 1765000000000000001,
		Cred: &Cred{Uid: 1000, Gid: 1000}}}
	raw, err := msgpack.Marshal(&e)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			if err := enc.Encode(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var d Entry
			if err := msgpack.Unmarshal(raw, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
