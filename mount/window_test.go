package mount

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
)

// cached returns the numbers of the windows f holds, in order.
func cached(f *openFile) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.windows))
}

// waitFetches waits until every window f holds is fetched.
func waitFetches(f *openFile) {
	f.mu.Lock()
	ws := slices.Collect(maps.Values(f.windows))
	f.mu.Unlock()
	for _, w := range ws {
		<-w.ready
	}
}

// TestSequentialReadFetchesEachWindowOnce: a program reading a file from
// start to end in pieces that straddle chunk boundaries reads it whole;
// each chunk-sized window is fetched once, two ahead of the reader, and
// the last one is short.
func TestSequentialReadFetchesEachWindowOnce(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	stored := pattern(75)
	h := tm.open(tm.c.put("f", []byte(stored)).Ino)
	if got := tm.read(h, 0, 5); got != stored[:5] {
		t.Fatalf("read %q", got)
	}
	if got := cached(h.f); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("after the first read the windows are %v, want 0 and the next two", got)
	}
	for off := 5; off < 75; off += 5 {
		if got, want := tm.read(h, int64(off), 5), stored[off:min(off+5, 75)]; got != want {
			t.Fatalf("5 bytes at %d read %q, want %q", off, got, want)
		}
	}
	if got := tm.read(h, 75, 5); got != "" {
		t.Fatalf("at the end: %q", got)
	}
	// Every window fetched was read, so every fetch has returned.
	got := tm.c.readsAt()
	slices.Sort(got)
	if want := []int64{0, 8, 16, 24, 32, 40, 48, 56, 64, 72}; !slices.Equal(got, want) {
		t.Fatalf("windows fetched at %v, want each of %v once", got, want)
	}
}

// TestReadAcrossWindows: a read that is not where the last one ended
// fetches the windows it covers and no more.
func TestReadAcrossWindows(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	stored := pattern(75)
	h := tm.open(tm.c.put("f", []byte(stored)).Ino)
	if got := tm.read(h, 6, 20); got != stored[6:26] {
		t.Fatalf("20 bytes at 6 read %q, want %q", got, stored[6:26])
	}
	if got := cached(h.f); !slices.Equal(got, []int64{0, 1, 2, 3}) {
		t.Fatalf("the windows are %v, want the four the read covers", got)
	}
	if got := tm.read(h, 70, 20); got != stored[70:] {
		t.Fatalf("20 bytes at 70 read %q, want %q", got, stored[70:])
	}
}

// TestLeastRecentlyReadWindowGoes: the cache keeps ReadCache windows,
// dropping the one read longest ago.
func TestLeastRecentlyReadWindowGoes(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	stored := pattern(75)
	h := tm.open(tm.c.put("f", []byte(stored)).Ino)
	// One byte into each window: no reader is sequential.
	readWindow := func(k int64) {
		t.Helper()
		if got := tm.read(h, k*chunk+1, 1); got != stored[k*chunk+1:k*chunk+2] {
			t.Fatalf("window %d read %q", k, got)
		}
	}
	for _, k := range []int64{0, 1, 2, 3, 0, 4} {
		readWindow(k)
	}
	if got := cached(h.f); !slices.Equal(got, []int64{0, 2, 3, 4}) {
		t.Fatalf("the windows are %v, want all but 1, the one read longest ago", got)
	}
	tm.c.readsAt()
	readWindow(0)
	readWindow(1)
	if got := tm.c.readsAt(); !slices.Equal(got, []int64{8}) {
		t.Fatalf("fetched %v, want window 1 only", got)
	}
}

// TestWindowsTakeTheMountsOwnWrites: once the mount's writes are stored,
// the windows read before show them without being fetched again: the
// content's generation moved by the mount's writes alone.
func TestWindowsTakeTheMountsOwnWrites(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	stored := pattern(20) // window 2 holds 4 bytes
	h := tm.open(tm.c.put("f", []byte(stored)).Ino)
	tm.read(h, 0, 20)
	waitFetches(h.f)
	tm.write(h, 6, "WXYZ") // across the boundary of windows 0 and 1
	tm.write(h, 22, "AB")  // past the end, in window 2: a hole before it
	tm.write(h, 30, "Q")   // in window 3, never fetched
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.c.readsAt()
	want := stored[:6] + "WXYZ" + stored[10:20] + "\x00\x00AB" + strings.Repeat("\x00", 6) + "Q"
	if got := tm.read(h, 0, 31); got != want {
		t.Fatalf("after the send, the file reads %q, want %q", got, want)
	}
	if got := tm.c.readsAt(); !slices.Equal(got, []int64{24}) {
		t.Fatalf("fetched %v, want window 3 only (the others hold the writes)", got)
	}
	tm.wantContent(h.f.ino, want)
}

// TestWindowsFetchedAgainAfterAChangeElsewhere: when another client
// changed the file before the mount's writes were stored, the windows
// read before are stale, and are fetched again.
func TestWindowsFetchedAgainAfterAChangeElsewhere(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	stored := pattern(24)
	h := tm.open(tm.c.put("f", []byte(stored)).Ino)
	tm.read(h, 0, 16)
	waitFetches(h.f)
	tm.c.change(h.f.ino, func(b []byte) []byte { return append([]byte("OTHER"), b[5:]...) })
	tm.write(h, 6, "WXYZ")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.c.readsAt()
	if got := tm.read(h, 0, 12); got != "OTHERfWXYZkl" {
		t.Fatalf("after the send, 12 bytes at 0 read %q", got)
	}
	if got := tm.c.readsAt(); !slices.Equal(got, []int64{0, 8}) {
		t.Fatalf("fetched %v, want windows 0 and 1 again", got)
	}
}

// TestWindowsCutByTheMountsTruncate: a truncate made through the mount
// cuts the windows read before instead of dropping them, and a truncate
// back up reads zeros where the content was cut.
func TestWindowsCutByTheMountsTruncate(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	stored := pattern(24)
	h := tm.open(tm.c.put("f", []byte(stored)).Ino)
	tm.read(h, 0, 24)
	waitFetches(h.f)
	for _, size := range []int64{10, 20} {
		if errno := tm.truncate(h.f.ino, size); errno != 0 {
			t.Fatalf("truncate to %d: %v", size, errno)
		}
	}
	tm.c.readsAt()
	want := stored[:10] + strings.Repeat("\x00", 10)
	if got := tm.read(h, 0, 24); got != want {
		t.Fatalf("after the truncates, the file reads %q, want %q", got, want)
	}
	if got := tm.c.readsAt(); len(got) != 0 {
		t.Fatalf("fetched %v, want nothing: the windows were cut", got)
	}
	tm.wantContent(h.f.ino, want)
}

// TestFileCutShortElsewhere: a file another client cut while it was open
// here reads zeros from its new end up to the size this mount knows.
func TestFileCutShortElsewhere(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	stored := pattern(24)
	ino := tm.c.put("f", []byte(stored)).Ino
	h := tm.open(ino)
	tm.c.change(ino, func(b []byte) []byte { return b[:10] })
	if got, want := tm.read(h, 0, 24), stored[:10]+strings.Repeat("\x00", 14); got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// TestReadErrorIsTheReadsAlone: a window that could not be fetched fails
// the read that needs it, with its errno, and is fetched again by the
// next one.
func TestReadErrorIsTheReadsAlone(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	stored := pattern(24)
	h := tm.open(tm.c.put("f", []byte(stored)).Ino)
	tm.c.onRead(func(off int64) error {
		if off == 8 {
			return fmt.Errorf("window 1: %w", errUnavailable)
		}
		return nil
	})
	buf := make([]byte, 4)
	if _, errno := h.Read(t.Context(), buf, 8); errno != syscall.EIO {
		t.Fatalf("a read of a window that cannot be fetched: %v, want EIO", errno)
	}
	tm.c.onRead(nil)
	if got := tm.read(h, 8, 4); got != stored[8:12] {
		t.Fatalf("read again: %q", got)
	}
}

// TestFailedWindowTakesOneSlot: a window whose fetch failed and that is
// then fetched again counts once in the cache, which still holds
// ReadCache windows.
func TestFailedWindowTakesOneSlot(t *testing.T) {
	tm := newTestMount(t, 64, func(c *Config) { c.ReadCache = 3 })
	stored := pattern(32)
	h := tm.open(tm.c.put("f", []byte(stored)).Ino)
	tm.c.onRead(func(off int64) error {
		if off == 8 {
			return errUnavailable
		}
		return nil
	})
	if _, errno := h.Read(t.Context(), make([]byte, 4), 8); errno != syscall.EIO {
		t.Fatalf("a read of a window that cannot be fetched: %v, want EIO", errno)
	}
	tm.c.onRead(nil)
	// Windows 1, 2 and 3, one byte each: no reader is sequential.
	for _, off := range []int64{8, 17, 26} {
		if got := tm.read(h, off, 1); got != stored[off:off+1] {
			t.Fatalf("read %q at %d", got, off)
		}
	}
	tm.c.readsAt()
	if got := tm.read(h, 9, 1); got != stored[9:10] {
		t.Fatalf("read %q at 9", got)
	}
	if got := tm.c.readsAt(); len(got) != 0 {
		t.Fatalf("window 1 was fetched again at %v: the cache of 3 holds %v", got, cached(h.f))
	}
}

// TestReadWindow: a window's content is read whole, whatever size was
// expected; a short one is the end of the file; a body longer than a
// window, or cut short or broken by an error, is refused.
func TestReadWindow(t *testing.T) {
	const W = 8
	for _, tc := range []struct {
		body, want string
		expect     int64
		err        string
	}{
		{"abcdefgh", "abcdefgh", W, ""},
		{"abcdefgh", "abcdefgh", 3, ""},   // the file grew since it was last seen
		{"abcdefgh", "abcdefgh", 100, ""}, // the window is not its last
		{"abc", "abc", 3, ""},
		{"abc", "abc", 0, ""},
		{"abc", "abc", -5, ""}, // past the end as last seen
		{"", "", 2, ""},
		{"abcdefghi", "", W, "more than the 8 bytes"},
	} {
		got, err := readWindow(iotest.OneByteReader(strings.NewReader(tc.body)), W, tc.expect)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("body %q: %q, %v; want an error saying %q", tc.body, got, err, tc.err)
		case tc.err == "" && (err != nil || string(got) != tc.want):
			t.Errorf("body %q, %d expected: %q, %v; want %q", tc.body, tc.expect, got, err, tc.want)
		case cap(got) > W:
			t.Errorf("body %q: a buffer of %d bytes, over the window's %d", tc.body, cap(got), W)
		}
	}
	for _, cut := range []error{io.ErrUnexpectedEOF, syscall.ECONNRESET} {
		broken := io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(cut))
		if got, err := readWindow(broken, W, W); !errors.Is(err, cut) {
			t.Errorf("a body cut by %v: %q, %v; want the error", cut, got, err)
		}
	}
}
