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

// randomRead sets each field of a Read, or leaves it zero, at random,
// with values across the whole range of its type.
func randomRead(r *rand.Rand) Read {
	some := func() bool { return r.IntN(2) == 0 }
	u64 := func() uint64 {
		if some() {
			return r.Uint64() >> r.IntN(64)
		}
		return 0
	}
	str := func() string {
		if some() {
			return strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(300))
		}
		return ""
	}
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
		for f := range set {
			set[f] = set[f] || !reflect.ValueOf(rd).Field(f).IsZero()
		}
		got, err := msgpack.Marshal(&rd)
		if err != nil {
			t.Fatal(err)
		}
		want, err := msgpack.Marshal((*readFields)(&rd))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read %+v:\ncodec      %x\nreflection %x", rd, got, want)
		}
		var back Read
		if err := msgpack.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, rd) {
			t.Fatalf("read %+v decoded as %+v (%v)", rd, back, err)
		}
	}
	for f, s := range set {
		if !s {
			t.Errorf("no read set field %s", reflect.TypeFor[Read]().Field(f).Name)
		}
	}
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
		want, err := msgpack.Marshal(reflected{Group: b.Group, Reads: *(*[]readFields)(reflect.ValueOf(&b.Reads).UnsafePointer())})
		if err != nil {
			t.Fatal(err)
		}
		got, err := msgpack.Marshal(&b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("batch of %d:\ncodec      %x\nreflection %x", n, got, want)
		}
		var back ReadBatch
		if err := msgpack.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, b) {
			t.Fatalf("batch %+v decoded as %+v (%v)", b, back, err)
		}
	}
}

// randomReadResp sets each field of a ReadResp, or leaves it zero, at
// random.
func randomReadResp(r *rand.Rand) ReadResp {
	some := func() bool { return r.IntN(2) == 0 }
	u64 := func() uint64 {
		if some() {
			return r.Uint64() >> r.IntN(64)
		}
		return 0
	}
	str := func() string {
		if some() {
			return strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(40))
		}
		return ""
	}
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
		for f := range set {
			set[f] = set[f] || !reflect.ValueOf(resp).Field(f).IsZero()
		}
		got, err := msgpack.Marshal(&resp)
		if err != nil {
			t.Fatal(err)
		}
		want, err := msgpack.Marshal((*readRespFields)(&resp))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("answer %+v:\ncodec      %x\nreflection %x", resp, got, want)
		}
		var back ReadResp
		if err := msgpack.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, resp) {
			t.Fatalf("answer %+v decoded as %+v (%v)", resp, back, err)
		}
	}
	for f, s := range set {
		if !s {
			t.Errorf("no answer set field %s", reflect.TypeFor[ReadResp]().Field(f).Name)
		}
	}
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
		want, err := msgpack.Marshal(reflected{Resps: *(*[]readRespFields)(reflect.ValueOf(&b.Resps).UnsafePointer()), Errs: b.Errs})
		if err != nil {
			t.Fatal(err)
		}
		got, err := msgpack.Marshal(&b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("batch answer of %d:\ncodec      %x\nreflection %x", n, got, want)
		}
		var back ReadBatchResp
		if err := msgpack.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, b) {
			t.Fatalf("batch answer %+v decoded as %+v (%v)", b, back, err)
		}
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
