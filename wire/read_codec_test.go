package wire

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"shoal/meta"
)

// readFields and readRespFields are Read and ReadResp without their
// encoders: reflection encodes them from the same tags.
type (
	readFields     Read
	readRespFields ReadResp
)

// randomValues makes the values of random fields: each is zero half the
// time, and otherwise across the whole range of its type.
type randomValues struct{ r *rand.Rand }

func (v randomValues) some() bool { return v.r.IntN(2) == 0 }

func (v randomValues) u64() uint64 {
	if v.some() {
		return v.r.Uint64() >> v.r.IntN(64)
	}
	return 0
}

// str is a string of up to max bytes.
func (v randomValues) str(max int) string {
	if v.some() {
		return strings.Repeat(string(rune('a'+v.r.IntN(26))), v.r.IntN(max))
	}
	return ""
}

// randomRead sets each field of a Read, or leaves it zero, at random.
func randomRead(r *rand.Rand) Read {
	v := randomValues{r}
	some, u64, str := v.some, v.u64, func() string { return v.str(300) }
	rd := Read{Group: str(), Kind: ReadKind(u64()), Path: str(), Dir: u64(), Want: uint32(u64()), Name: str(),
		Uid: uint32(u64()), After: u64(), Limit: int(int64(u64()) * int64(1-2*r.IntN(2))), AfterName: str()}
	for range r.IntN(3) {
		var h meta.Hash
		for i := range h {
			h[i] = byte(r.IntN(256))
		}
		rd.Hashes = append(rd.Hashes, h)
	}
	for range r.IntN(3) {
		rd.Groups = append(rd.Groups, str())
	}
	if some() {
		rd.Cred = &meta.Cred{Uid: uint32(u64()), Gid: uint32(u64()), Root: some(), Host: some()}
		if some() {
			rd.Cred.Groups = []uint32{uint32(u64()), uint32(u64())}
		}
	}
	if some() {
		for i := range rd.Token {
			rd.Token[i] = byte(r.IntN(256))
		}
	}
	return rd
}

// matchesReflection fails t unless *v encodes to the bytes reflection
// writes for fields (*v without its encoder) and reflection decodes them
// back to *v.
func matchesReflection[T any](t *testing.T, what string, v *T, fields any) {
	t.Helper()
	got, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want, err := msgpack.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s %+v:\ncodec      %x\nreflection %x", what, *v, got, want)
	}
	var back T
	if err := msgpack.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, *v) {
		t.Fatalf("%s %+v decoded as %+v (%v)", what, *v, back, err)
	}
}

// fieldsSet marks in set the fields v sets; everySet fails t for those
// no value set.
func fieldsSet[T any](set []bool, v T) {
	for f := range set {
		set[f] = set[f] || !reflect.ValueOf(v).Field(f).IsZero()
	}
}

func everySet[T any](t *testing.T, set []bool) {
	t.Helper()
	for f, s := range set {
		if !s {
			t.Errorf("no value set field %s", reflect.TypeFor[T]().Field(f).Name)
		}
	}
}

// TestReadCodecMatchesReflection checks the hand-written encoders of Read
// and ReadBatch against msgpack's reflection on the same tags: the same
// bytes, and the same values back through reflection's decoder.
func TestReadCodecMatchesReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	set := make([]bool, reflect.TypeFor[Read]().NumField()) // fields some read set
	for i := range 3000 {
		rd := randomRead(r)
		if i == 0 {
			rd = Read{}
		}
		fieldsSet(set, rd)
		matchesReflection(t, "read", &rd, (*readFields)(&rd))
	}
	everySet[Read](t, set)
	// A batch, as reflection would write it with each read reflected too.
	type reflected struct {
		Group string       `msgpack:"g"`
		Reads []readFields `msgpack:"r"`
	}
	for n := range 5 {
		b := ReadBatch{Group: "m"}
		for range n {
			b.Reads = append(b.Reads, randomRead(r))
		}
		if n == 1 {
			b.Reads = []Read{} // empty, not nil
		}
		matchesReflection(t, "batch", &b, reflected{Group: b.Group, Reads: *(*[]readFields)(reflect.ValueOf(&b.Reads).UnsafePointer())})
	}
}

// randomReadResp sets each field of a ReadResp, or leaves it zero, at
// random.
func randomReadResp(r *rand.Rand) ReadResp {
	v := randomValues{r}
	some, u64, str := v.some, v.u64, func() string { return v.str(40) }
	inode := func() meta.Inode {
		return meta.Inode{Ino: u64(), Type: meta.FileType(r.IntN(4)), Size: int64(u64() >> 1), Mode: uint32(u64()),
			MTime: int64(u64() >> 1), Nlink: uint32(u64()), Uid: uint32(u64()), Target: str(), Hash: str()}
	}
	resp := ReadResp{Code: meta.Code(str()), Inode: inode(), Next: u64(), More: some()}
	for range r.IntN(3) {
		resp.Entries = append(resp.Entries, meta.DirEntry{Name: str(), Inode: inode()})
	}
	for range r.IntN(3) {
		resp.Referenced = append(resp.Referenced, some())
	}
	for range r.IntN(3) {
		resp.Located = append(resp.Located, str())
	}
	if some() {
		resp.User = &meta.User{Name: str(), Uid: uint32(u64()), Gid: uint32(u64())}
	}
	for range r.IntN(2) {
		resp.Users = append(resp.Users, meta.User{Name: str(), Uid: uint32(u64())})
	}
	for range r.IntN(2) {
		resp.Owned = append(resp.Owned, meta.OwnedInode{Path: str(), Inode: inode()})
	}
	if some() {
		resp.Lock = &meta.LockState{Ino: u64(), Holders: []meta.LockHolder{{Token: u64(), Key: str(), Shared: some()}}}
	}
	return resp
}

// TestReadRespCodecMatchesReflection checks the hand-written encoders of
// ReadResp and ReadBatchResp against msgpack's reflection on the same
// tags: the same bytes, and the same values back through reflection's
// decoder.
func TestReadRespCodecMatchesReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	set := make([]bool, reflect.TypeFor[ReadResp]().NumField())
	for i := range 3000 {
		resp := randomReadResp(r)
		if i == 0 {
			resp = ReadResp{}
		}
		fieldsSet(set, resp)
		matchesReflection(t, "answer", &resp, (*readRespFields)(&resp))
	}
	everySet[ReadResp](t, set)
	type reflected struct {
		Resps []readRespFields `msgpack:"r"`
		Errs  []*ErrorMsg      `msgpack:"e,omitempty"`
	}
	for n := range 5 {
		var b ReadBatchResp
		for range n {
			b.Resps = append(b.Resps, randomReadResp(r))
		}
		switch n {
		case 1:
			b.Resps = []ReadResp{} // empty, not nil
		case 3:
			b.Errs = []*ErrorMsg{nil, {Code: "unavailable", Message: "m", Leader: "a"}, nil}
		}
		matchesReflection(t, "batch answer", &b, reflected{Resps: *(*[]readRespFields)(reflect.ValueOf(&b.Resps).UnsafePointer()), Errs: b.Errs})
	}
}

// BenchmarkReadBatchEncode measures encoding a batch of four lookups
// with their callers' credentials, as a router sends under load, by the
// codec and by reflection.
func BenchmarkReadBatchEncode(b *testing.B) {
	b.ReportAllocs()
	cred := &meta.Cred{Uid: 1000, Gid: 1000, Groups: []uint32{1000, 27}}
	batch := ReadBatch{Group: "g1"}
	for i := range 4 {
		batch.Reads = append(batch.Reads, Read{Group: "g1", Kind: ReadLookup, Path: fmt.Sprintf("/bench/meta/f%06d", i), Cred: cred, Want: 4})
	}
	type reflected struct {
		Group string       `msgpack:"g"`
		Reads []readFields `msgpack:"r"`
	}
	ref := reflected{Group: batch.Group, Reads: *(*[]readFields)(reflect.ValueOf(&batch.Reads).UnsafePointer())}
	for _, c := range []struct {
		name string
		v    any
	}{{"codec", &batch}, {"reflection", &ref}} {
		b.Run(c.name, func(b *testing.B) {
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			for b.Loop() {
				buf.Reset()
				if err := enc.Encode(c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
