package mount

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// The extents of random writes and truncates against a byte array with a
// mask of dirty bytes: the same bytes read back, the runs stay sorted,
// apart and non-empty, and the byte count is right.
func TestExtentsMatchAReference(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 2))
		var x extents
		const size = 300
		ref := make([]byte, size)
		dirty := make([]bool, size)
		for step := range 60 {
			if r.IntN(8) == 0 {
				n := int64(r.IntN(size))
				x.truncate(n)
				for i := n; i < size; i++ {
					dirty[i], ref[i] = false, 0
				}
			} else {
				off := r.IntN(size - 50)
				p := make([]byte, 1+r.IntN(49))
				for i := range p {
					p[i] = byte(r.Uint32())
				}
				x.write(int64(off), p)
				copy(ref[off:], p)
				for i := range p {
					dirty[off+i] = true
				}
			}
			var want int64
			for _, d := range dirty {
				if d {
					want++
				}
			}
			if x.bytes != want {
				t.Fatalf("seed %d step %d: %d dirty bytes counted, want %d", seed, step, x.bytes, want)
			}
			for i, run := range x.runs {
				if len(run.data) == 0 || i > 0 && x.runs[i-1].end() >= run.off {
					t.Fatalf("seed %d step %d: runs %d and %d overlap, touch or are empty", seed, step, i-1, i)
				}
				for k := range run.data {
					if !dirty[run.off+int64(k)] {
						t.Fatalf("seed %d step %d: byte %d is in a run but was never written", seed, step, run.off+int64(k))
					}
				}
			}
			got := make([]byte, size)
			x.overlay(0, got)
			masked := make([]byte, size)
			for i := range ref {
				if dirty[i] {
					masked[i] = ref[i]
				}
			}
			if !bytes.Equal(got, masked) {
				t.Fatalf("seed %d step %d: overlay differs", seed, step)
			}
		}
	}
}

func TestExtentsRestoreKeepsNewerWrites(t *testing.T) {
	var x extents
	x.write(0, []byte("aaaa"))
	sent := x.take()
	x.write(2, []byte("bb"))
	x.restore(sent)
	got := make([]byte, 4)
	x.overlay(0, got)
	if string(got) != "aabb" || x.bytes != 4 {
		t.Fatalf("after restore: %q, %d bytes", got, x.bytes)
	}
}

// TestExtentsSequentialGrowth: a sequential writer's run grows in a few
// large steps, not a copy of the whole run every few writes.
func TestExtentsSequentialGrowth(t *testing.T) {
	var x extents
	p := make([]byte, 1<<10)
	moves := 0
	var last *byte
	for i := range 256 {
		x.write(int64(i*len(p)), p)
		if len(x.runs) != 1 {
			t.Fatalf("after %d sequential writes: %d runs, want one", i+1, len(x.runs))
		}
		if first := &x.runs[0].data[0]; first != last {
			moves++
			last = first
		}
	}
	// 1, 4, 16, 64 and 256 KiB: five buffers.
	if moves > 5 {
		t.Errorf("256 sequential writes of 1 KiB moved the run %d times, want at most 5", moves)
	}
	// With a limit, the room ahead stops there.
	x = extents{limit: 100 << 10}
	for i := range 80 {
		x.write(int64(i*len(p)), p)
	}
	if c := cap(x.runs[0].data); c > 100<<10 {
		t.Errorf("80 KiB written under a limit of 100 KiB: a buffer of %d bytes", c)
	}
	x.write(80<<10, make([]byte, 64<<10))
	if got := len(x.runs[0].data); got != 144<<10 {
		t.Errorf("a write past the limit: %d bytes in the run, want %d", got, 144<<10)
	}
}
