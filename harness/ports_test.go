package harness

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsNeverRepeat(t *testing.T) {
	var ps Ports
	seen := map[int]bool{}
	for range 50 {
		p, err := ps.Free()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		if p < lowPort || p >= 32768 {
			t.Fatalf("port %d is not below the ephemeral range (32768 up), where a bind to port 0 could take it", p)
		}
		seen[p] = true
	}
	base, err := ps.Block(5)
	if err != nil {
		t.Fatal(err)
	}
	for p := base; p < base+5; p++ {
		if seen[p] {
			t.Fatalf("block port %d handed out before", p)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("block port %d: %v", p, err)
		}
		l.Close()
	}
	next, err := ps.Block(5)
	if err != nil {
		t.Fatal(err)
	}
	if next < base+5 && next+5 > base {
		t.Fatalf("blocks [%d,%d) and [%d,%d) overlap", base, base+5, next, next+5)
	}
}

// Test binaries started one after another have process IDs a few apart;
// their ports must start far apart, or two would hand out the same ones.
func TestPortStartsScatter(t *testing.T) {
	for base := 100; base < 4_000_000; base += 99_991 {
		for i := range 16 {
			for j := range i {
				a, b := startOffset(base+i), startOffset(base+j)
				d := max(a-b, b-a)
				if d = min(d, lowSpan-d); d < 300 {
					t.Fatalf("process IDs %d and %d start %d ports apart", base+i, base+j, d)
				}
			}
		}
	}
}
