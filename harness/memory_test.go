package harness

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestParseCPUTime reads the CPU times of a line whose command holds
// spaces and parentheses, and of this process, against getrusage.
func TestParseCPUTime(t *testing.T) {
	line := "4242 (shoal (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 1000 2000000 300 18446744073709551615\n"
	if got, err := parseCPUTime(line); err != nil || got != 3800*time.Millisecond {
		t.Fatalf("parseCPUTime = %v, %v; want 3.8s (250 + 130 ticks)", got, err)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 2x0 130"} {
		if _, err := parseCPUTime(bad); err == nil {
			t.Errorf("parseCPUTime(%q) gave no error", bad)
		}
	}

	// Use 200ms of CPU, then compare with what the kernel says through
	// getrusage: the two count the same time, to a tick.
	var ru syscall.Rusage
	used := func() time.Duration {
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for start := used(); used()-start < 200*time.Millisecond; {
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skipf("SKIPPED: no /proc/self/stat on this system: %v", err)
	}
	want := used()
	got, err := parseCPUTime(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if got < 150*time.Millisecond || got > want+20*time.Millisecond || got < want-50*time.Millisecond {
		t.Fatalf("/proc/self/stat says %v of CPU, getrusage %v, after at least 200ms of work", got, want)
	}
}
