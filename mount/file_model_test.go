package mount

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestOpenFileMatchesAReference: random writes, reads (sequential ones
// among them), truncates, fsyncs and reopens of one file through the
// mount, with write buffers small enough that batches go out in the
// background mid-run, against a byte slice written as pwrite(2) and
// ftruncate(2) would: every read and every size the kernel is told is the
// slice's, and so is what the cluster stores after each fsync and the
// last close.
func TestOpenFileMatchesAReference(t *testing.T) {
	// With a router that takes several writes and truncates in one
	// request (up to 1 or 3 of them), and with one that does not.
	for _, ranges := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("ranges-%d", ranges), func(t *testing.T) { openFileMatchesAReference(t, ranges) })
	}
}

func openFileMatchesAReference(t *testing.T, ranges int) {
	for seed := range uint64(150) {
		r := rand.New(rand.NewPCG(seed, 7))
		tm := newTestMountRanges(t, chunk*(1+r.IntN(3)), ranges, func(c *Config) {
			c.WriteBuffer = int64(4 + r.IntN(40))
			c.ReadCache = 2 + r.IntN(3)
		})
		ino, h := tm.create("f")
		var ref []byte
		var steps []string // what was done, for the failure message
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d, after\n%v\n%s", seed, steps, fmt.Sprintf(format, args...))
		}
		wantStored := func() {
			t.Helper()
			if got := tm.c.content(ino); got != string(ref) {
				fail("the cluster stores %q, want %q", got, ref)
			}
		}
		var nextRead int64
		for range 200 {
			switch op := r.IntN(20); {
			case op < 8:
				off, p := int64(r.IntN(80)), make([]byte, 1+r.IntN(20))
				for i := range p {
					p[i] = 'A' + byte(r.IntN(26))
				}
				steps = append(steps, fmt.Sprintf("write %q at %d", p, off))
				tm.write(h, off, string(p))
				ref = resize(ref, max(int64(len(ref)), off+int64(len(p))))
				copy(ref[off:], p)
			case op < 14:
				off, n := int64(r.IntN(100)), 1+r.IntN(30)
				if op < 11 {
					off = nextRead // a sequential reader
				}
				steps = append(steps, fmt.Sprintf("read %d at %d", n, off))
				want := ref[min(off, int64(len(ref))):min(off+int64(n), int64(len(ref)))]
				if got := tm.read(h, off, n); got != string(want) {
					fail("read %q, want %q", got, want)
				}
				nextRead = off + int64(len(want))
			case op < 16:
				size := int64(r.IntN(90))
				steps = append(steps, fmt.Sprintf("truncate %d", size))
				if errno := tm.truncate(ino, size); errno != 0 {
					fail("truncate: %v", errno)
				}
				ref = resize(ref, size)
			case op < 17:
				steps = append(steps, "fsync")
				if errno := tm.fsync(h); errno != 0 {
					fail("fsync: %v", errno)
				}
				wantStored()
			case op < 18:
				steps = append(steps, "close and open")
				h.Flush(t.Context())
				h.Release(t.Context())
				wantStored()
				h = tm.open(ino)
			default:
				steps = append(steps, "stat")
				if n := tm.size(ino); n != int64(len(ref)) {
					fail("the kernel is told size %d, want %d", n, len(ref))
				}
			}
			if len(steps) > 12 {
				steps = steps[1:]
			}
		}
		h.Flush(t.Context())
		h.Release(t.Context())
		wantStored()
	}
}

// resize cuts b to size bytes, or extends it with zeros.
func resize(b []byte, size int64) []byte {
	if size <= int64(len(b)) {
		return b[:size]
	}
	return append(b, make([]byte, size-int64(len(b)))...)
}
