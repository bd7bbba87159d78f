package router

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"shoal/api"
	"shoal/meta"
)

// A listing's entries and a stat's answer read exactly as json.Marshal
// writes them: every kind of name (escapes, HTML characters, UTF-8 good
// and bad), every mode width, times at the ends of their range, every
// type, and the fields left out when empty.
func TestEntryJSONIsJSONMarshals(t *testing.T) {
	names := []string{"f000001", "", "with space", `q"uote`, `back\slash`, "<tag>&amp;", "a<b", "a>b", "a&b", "tab\there", "new\nline",
		"\x7f", "\x00", "\x1f", "ünïcode", "日本語", "\xff\xfe bad", "line\u2028sep", "emoji 🐟", "a/b"}
	times := []int64{0, 1, -1, 1_500_000_000_000_000_000, 1_700_000_000_123_456_789, 1_700_000_000_100_000_000,
		math.MinInt64, math.MaxInt64, time.Now().UnixNano()}
	modes := []uint32{0, 7, 0o10, 0o77, 0o100, 0o644, 0o755, 0o1777, 0o7777, math.MaxUint32}
	check := func(name string, in meta.Inode) {
		t.Helper()
		want, err := json.Marshal(api.DirEntry{Name: name, Attr: attrOf(in)})
		if err != nil {
			t.Fatalf("json.Marshal(%q, %+v): %v", name, in, err)
		}
		if got := appendEntryJSON([]byte("kept"), name, &in); string(got) != "kept"+string(want) {
			t.Fatalf("entry %q, inode %+v:\n got %s\nwant kept%s", name, in, got, want)
		}
		p := "/dir/" + name
		if want, err = json.Marshal(statOf(p, in)); err != nil {
			t.Fatalf("json.Marshal(statOf(%q, %+v)): %v", p, in, err)
		}
		if got := appendStatJSON([]byte("kept"), p, &in); string(got) != "kept"+string(want) {
			t.Fatalf("stat of %q, inode %+v:\n got %s\nwant kept%s", p, in, got, want)
		}
	}
	for _, name := range names {
		check(name, meta.Inode{Ino: 2, Type: meta.TypeFile, Mode: 0o644, Nlink: 1})
		check("link", meta.Inode{Type: meta.TypeSymlink, Target: name})
	}
	for _, ns := range times {
		check("t", meta.Inode{ATime: ns, MTime: ns, CTime: ns})
	}
	for _, m := range modes {
		check("m", meta.Inode{Mode: m})
	}
	for ty := meta.FileType(0); ty <= meta.TypeBlockDev+1; ty++ {
		check("ty", meta.Inode{Type: ty})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		in := meta.Inode{
			Ino: rng.Uint64(), Type: meta.FileType(rng.IntN(9)), Size: rng.Int64() - math.MaxInt64/2,
			Mode: rng.Uint32N(0o10000), Nlink: rng.Uint32(), Uid: rng.Uint32(), Gid: rng.Uint32(),
			ATime: rng.Int64(), MTime: -rng.Int64(), CTime: rng.Int64N(1 << 62), Gen: rng.Uint64(),
		}
		if rng.IntN(4) == 0 {
			in.Target = names[rng.IntN(len(names))]
		}
		if rng.IntN(4) == 0 {
			in.Rdev = rng.Uint64()
		}
		if rng.IntN(2) == 0 {
			in.Hash = names[rng.IntN(len(names))]
		}
		if rng.IntN(4) == 0 {
			in.ContentType = names[rng.IntN(len(names))]
		}
		if rng.IntN(4) == 0 {
			in.Usage = &meta.Usage{Bytes: rng.Int64(), Files: -rng.Int64N(9), Dirs: rng.Int64N(1000)}
		}
		check(names[rng.IntN(len(names))], in)
	}
}
