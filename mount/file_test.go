package mount

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"shoal/harness"
)

// The tests of open files drive a mount's state over an in-memory cluster
// as the kernel drives it, through the FUSE methods of its nodes and
// handles, with no kernel in between. Chunks are 8 bytes, so the data of
// a test can be read in its failure message.

// chunk is the in-memory cluster's chunk size in these tests.
const chunk = 8

// testMount is a mount's state over an in-memory cluster.
type testMount struct {
	t   *testing.T
	m   *fsys
	c   *memCluster
	log *harness.LogBuffer // the mount's log
}

// newTestMount returns a mount of a new in-memory cluster whose writes
// carry at most maxWrite bytes, with the default config changed by
// configure (when not nil).
func newTestMount(t *testing.T, maxWrite int, configure func(*Config)) *testMount {
	t.Helper()
	return newTestMountRanges(t, maxWrite, 0, configure)
}

// newTestMountRanges is newTestMount with a cluster whose PatchIno takes
// up to ranges writes (0: none, as an older router).
func newTestMountRanges(t *testing.T, maxWrite, ranges int, configure func(*Config)) *testMount {
	t.Helper()
	tm := &testMount{t: t, c: newMemCluster(chunk, maxWrite), log: &harness.LogBuffer{}}
	tm.c.ranges = ranges
	cfg := DefaultConfig()
	cfg.Client = tm.c
	cfg.Logger = slog.New(slog.NewTextHandler(tm.log, nil))
	if configure != nil {
		configure(&cfg)
	}
	m, err := newFsys(context.Background(), "/test", cfg)
	if err != nil {
		t.Fatal(err)
	}
	tm.m = m
	return tm
}

// create makes an empty file and opens it, as open(2) with O_CREAT does.
func (tm *testMount) create(name string) (uint64, *handle) {
	tm.t.Helper()
	q := tm.m.asking()
	a, _, err := tm.c.CreateIn(context.Background(), rootIno, name, 0o644, 0, 0, true)
	if err != nil {
		tm.t.Fatal(err)
	}
	return a.Ino, &handle{f: tm.m.open(a, q)}
}

// open opens the file ino as node.Open does: with its attributes as the
// cluster answers them now.
func (tm *testMount) open(ino uint64) *handle {
	tm.t.Helper()
	q := tm.m.asking()
	a, err := tm.c.StatIno(context.Background(), ino)
	if err != nil {
		tm.t.Fatal(err)
	}
	return &handle{f: tm.m.open(a, q)}
}

// write writes s at off through h, and fails the test unless all of it
// was taken.
func (tm *testMount) write(h *handle, off int64, s string) {
	tm.t.Helper()
	if n, errno := h.Write(context.Background(), []byte(s), off); errno != 0 || int(n) != len(s) {
		tm.t.Fatalf("write %d bytes at %d: %d written, %v", len(s), off, n, errno)
	}
}

// read reads up to n bytes at off through h, into a buffer full of
// garbage (the kernel's buffer is not zeroed either).
func (tm *testMount) read(h *handle, off int64, n int) string {
	tm.t.Helper()
	buf := bytes.Repeat([]byte{'#'}, n)
	res, errno := h.Read(context.Background(), buf, off)
	if errno != 0 {
		tm.t.Fatalf("read %d bytes at %d: %v", n, off, errno)
	}
	got, _ := res.Bytes(nil)
	return string(got)
}

func (tm *testMount) fsync(h *handle) syscall.Errno {
	return h.Fsync(context.Background(), 0)
}

// truncate sets the size of ino as truncate(2) or ftruncate(2) do.
func (tm *testMount) truncate(ino uint64, size int64) syscall.Errno {
	return tm.truncateIn(context.Background(), ino, size)
}

// truncateIn is truncate as the request ctx (its caller).
func (tm *testMount) truncateIn(ctx context.Context, ino uint64, size int64) syscall.Errno {
	in := &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_SIZE, Size: uint64(size)}}
	var out fuse.AttrOut
	return (&node{m: tm.m, ino: ino}).Setattr(ctx, nil, in, &out)
}

// size is the size of ino that the kernel is told.
func (tm *testMount) size(ino uint64) int64 {
	tm.t.Helper()
	var out fuse.AttrOut
	if errno := (&node{m: tm.m, ino: ino}).Getattr(context.Background(), nil, &out); errno != 0 {
		tm.t.Fatalf("getattr: %v", errno)
	}
	return int64(out.Size)
}

// wantContent fails the test unless the cluster stores want for ino.
func (tm *testMount) wantContent(ino uint64, want string) {
	tm.t.Helper()
	if got := tm.c.content(ino); got != want {
		tm.t.Fatalf("the cluster stores %q, want %q", got, want)
	}
}

// wantSent fails the test unless the writes the cluster applied since
// the last call are want, in order ("off:data" each).
func (tm *testMount) wantSent(want ...string) {
	tm.t.Helper()
	var got []string
	for _, w := range tm.c.sent() {
		got = append(got, fmt.Sprintf("%d:%s", w.off, w.data))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		tm.t.Fatalf("the mount sent the writes\n%q\nwant\n%q", got, want)
	}
}

// gate holds the WriteAt calls the in-memory cluster gets until opened:
// a batch sent in the background stays on its way meanwhile.
type gate struct {
	arrived chan int64 // the offset of each write held
	open    chan struct{}
	err     error // what the held writes fail with, once opened (nil: they go through)
}

// holdWrites makes c hold every WriteAt at an offset for which hold is
// true, until the gate returned is opened.
func holdWrites(c *memCluster, hold func(off int64) bool) *gate {
	g := &gate{arrived: make(chan int64, 100), open: make(chan struct{})}
	c.onWrite(func(off int64, data []byte) error {
		if !hold(off) {
			return nil
		}
		g.arrived <- off
		<-g.open
		return g.err
	})
	return g
}

// wait returns the offset of the next write held, failing the test if
// none arrives soon.
func (g *gate) wait(t *testing.T) int64 {
	t.Helper()
	select {
	case off := <-g.arrived:
		return off
	case <-time.After(10 * time.Second):
		t.Fatal("no write reached the cluster within 10s")
		return 0
	}
}

// release lets the writes held go on, failing with err.
func (g *gate) release(err error) {
	g.err = err
	close(g.open)
}

// within runs f, and fails the test if it does not return within 10s:
// for calls that must not wait on the cluster.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10s", what)
	}
}

// settled waits until no batch of f is on its way.
func settled(f *openFile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
}

// pattern returns n bytes that differ from their neighbours.
func pattern(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// TestSequentialWritesGoOutInWholeChunks: a sequential writer's writes
// gather until the write buffer (four chunks) is full, and are then sent
// in the background, as writes of at most MaxWrite bytes from a chunk
// boundary, while the writer goes on; fsync sends the rest.
func TestSequentialWritesGoOutInWholeChunks(t *testing.T) {
	data := pattern(70)
	for _, tc := range []struct {
		maxWrite int
		want     []string // the writes sent, as off:data
	}{
		{chunk, []string{"0:" + data[0:8], "8:" + data[8:16], "16:" + data[16:24], "24:" + data[24:32],
			"32:" + data[32:40], "40:" + data[40:48], "48:" + data[48:56], "56:" + data[56:64], "64:" + data[64:70]}},
		{64, []string{"0:" + data[0:32], "32:" + data[32:64], "64:" + data[64:70]}},
	} {
		t.Run(fmt.Sprintf("max write %d", tc.maxWrite), func(t *testing.T) {
			tm := newTestMount(t, tc.maxWrite, nil)
			ino, h := tm.create("f")
			g := holdWrites(tm.c, func(off int64) bool { return off == 0 })
			for off := 0; off < 28; off += 4 {
				tm.write(h, int64(off), data[off:off+4])
			}
			tm.wantSent() // 28 bytes: the buffer is not full
			within(t, "the write that fills the buffer", func() { tm.write(h, 28, data[28:32]) })
			if off := g.wait(t); off != 0 {
				t.Fatalf("the first write sent is at %d", off)
			}
			// The batch is on its way; the writer goes on meanwhile.
			within(t, "a write while a batch is on its way", func() { tm.write(h, 32, data[32:36]) })
			g.release(nil)
			for off := 36; off < 68; off += 4 {
				tm.write(h, int64(off), data[off:off+4])
			}
			tm.write(h, 68, data[68:70])
			if errno := tm.fsync(h); errno != 0 {
				t.Fatalf("fsync: %v", errno)
			}
			tm.wantSent(tc.want...)
			tm.wantContent(ino, data)
		})
	}
}

// TestFsyncCloseAndReleaseSendEverything: writes that do not fill the
// buffer stay in memory until fsync, the flush of each close, or the
// release of the file's last handle sends them; a release that is not
// the last sends nothing.
func TestFsyncCloseAndReleaseSendEverything(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino, h := tm.create("f")
	tm.write(h, 0, "hello")
	tm.wantSent()
	tm.wantContent(ino, "")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.wantSent("0:hello")
	tm.wantContent(ino, "hello")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync with nothing to send: %v", errno)
	}
	tm.wantSent()

	tm.write(h, 5, " world")
	if errno := h.Flush(context.Background()); errno != 0 {
		t.Fatalf("flush: %v", errno)
	}
	tm.wantSent("5: world")

	// Two handles share the file's writes: the first release leaves them,
	// the last sends them.
	h2 := tm.open(ino)
	tm.write(h, 11, "!")
	h.Release(context.Background())
	tm.wantSent()
	if got := tm.read(h2, 0, 20); got != "hello world!" {
		t.Fatalf("the other handle reads %q", got)
	}
	h2.Release(context.Background())
	tm.wantSent("11:!")
	tm.wantContent(ino, "hello world!")
	if f := tm.m.opened(ino); f != nil {
		t.Fatal("the file is still open after its last release")
	}
}

// TestOverlappingAndOutOfOrderWrites: writes in any order, over each
// other and over the stored content, read back as the last one wins and
// go out as one write per run of touching bytes, in offset order.
func TestOverlappingAndOutOfOrderWrites(t *testing.T) {
	tm := newTestMount(t, chunk, nil)
	stored := "0123456789abcdefghij"
	ino := tm.c.put("f", []byte(stored)).Ino
	h := tm.open(ino)
	want := []byte(stored)
	for _, w := range []struct {
		off int64
		s   string
	}{
		{30, "tail"},        // past the end: zeros between
		{2, "AAAA"},         // [2,6)
		{12, "CC"},          // [12,14)
		{4, "BBBBBBBBBB"},   // [4,14): over both
		{0, "z"},            // [0,1): apart from [2,14)
		{1, "y"},            // [1,2): joins the two
		{31, "AI"},          // inside "tail"
		{10, "-"},           // inside the long run
		{34, "\x00\x00end"}, // touching "tail"
	} {
		tm.write(h, w.off, w.s)
		if end := w.off + int64(len(w.s)); end > int64(len(want)) {
			want = append(want, make([]byte, end-int64(len(want)))...)
		}
		copy(want[w.off:], w.s)
		if got := tm.read(h, 0, 64); got != string(want) {
			t.Fatalf("after writing %q at %d, reads\n%q\nwant\n%q", w.s, w.off, got, want)
		}
	}
	if n := tm.size(ino); n != int64(len(want)) {
		t.Fatalf("the kernel is told size %d, want %d", n, len(want))
	}
	tm.wantSent()
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.wantSent("0:"+string(want[0:8]), "8:"+string(want[8:14]), "30:"+string(want[30:38]), "38:"+string(want[38:]))
	tm.wantContent(ino, string(want))
}

// TestReadSeesUnsentWrites: a read through the open file returns the
// stored content with the writes not sent yet over it, those on their
// way included, and zeros between the stored end and a write past it;
// the size the kernel is told counts them too.
func TestReadSeesUnsentWrites(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	stored := pattern(32)
	ino := tm.c.put("f", []byte(stored)).Ino
	h := tm.open(ino)
	if got := tm.read(h, 0, 8); got != stored[:8] {
		t.Fatalf("read %q", got)
	}
	tm.write(h, 6, "XY") // across the first chunk boundary
	if got := tm.read(h, 4, 8); got != "efXYijkl" {
		t.Fatalf("a cached window under an unsent write reads %q", got)
	}
	tm.write(h, 40, "end")
	if got := tm.read(h, 30, 20); got != "ef\x00\x00\x00\x00\x00\x00\x00\x00end" {
		t.Fatalf("across the stored end: %q", got)
	}
	if n := tm.size(ino); n != 43 {
		t.Fatalf("the kernel is told size %d, want 43", n)
	}
	tm.wantSent()

	// Fill the buffer: a batch goes out and is held on its way.
	g := holdWrites(tm.c, func(int64) bool { return true })
	tm.write(h, 100, strings.Repeat("P", 32))
	g.wait(t)
	tm.write(h, 101, "Q") // newer than the batch
	for _, r := range []struct {
		off  int64
		n    int
		want string
	}{
		{4, 8, "efXYijkl"},
		{38, 8, "\x00\x00end\x00\x00\x00"},
		{99, 4, "\x00PQP"},
		{128, 10, "PPPP"},
	} {
		if got := tm.read(h, r.off, r.n); got != r.want {
			t.Errorf("with a batch on its way, %d bytes at %d read %q, want %q", r.n, r.off, got, r.want)
		}
	}
	if n := tm.size(ino); n != 132 {
		t.Errorf("with a batch on its way, the kernel is told size %d, want 132", n)
	}
	g.release(nil)
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	want := []byte(stored + strings.Repeat("\x00", 100))
	copy(want[6:], "XY")
	copy(want[40:], "end")
	copy(want[100:], strings.Repeat("P", 32))
	want[101] = 'Q'
	tm.wantContent(ino, string(want[:132]))
	if got := tm.read(h, 0, 200); got != string(want[:132]) {
		t.Fatalf("after fsync the file reads %q", got)
	}
}

// waitBlockedIn waits until some goroutine is in the function fn (its
// name as a stack trace shows it), for a test that must act only once a
// call waits inside the mount, which changes nothing anyone can see.
func waitBlockedIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if n := runtime.Stack(buf, true); bytes.Contains(buf[:n], []byte(fn+"(")) {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("no goroutine waits in %s after 10s", fn)
}

// TestTruncateWithUnsentWrites: a truncate sends the writes before it
// first, since they are older, then cuts or extends the file; what was
// read before it is not read again, and writes after it land on the new
// size.
func TestTruncateWithUnsentWrites(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino := tm.c.put("f", []byte("0123456789")).Ino
	h := tm.open(ino)
	if got := tm.read(h, 0, 10); got != "0123456789" {
		t.Fatalf("read %q", got)
	}
	tm.c.changes()
	// write, ftruncate, write (as the e2e test "offsets, sparse files
	// and truncate" does through the kernel)
	tm.write(h, 5, "XYZ")
	if errno := tm.truncate(ino, 7); errno != 0 {
		t.Fatalf("truncate: %v", errno)
	}
	if got := strings.Join(tm.c.changes(), ", "); got != "write 5+3, truncate 7" {
		t.Fatalf("the cluster got %s: want the write before the truncate", got)
	}
	if got := tm.read(h, 0, 20); got != "01234XY" {
		t.Fatalf("after the truncate the file reads %q", got)
	}
	tm.write(h, 9, "!")
	if got := tm.read(h, 0, 20); got != "01234XY\x00\x00!" {
		t.Fatalf("after a write past the truncated end the file reads %q", got)
	}
	if n := tm.size(ino); n != 10 {
		t.Fatalf("the kernel is told size %d, want 10", n)
	}

	// Down and up again with nothing unsent: the cached windows go.
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.read(h, 0, 10)
	tm.truncate(ino, 3)
	tm.truncate(ino, 10)
	if got := tm.read(h, 0, 20); got != "012\x00\x00\x00\x00\x00\x00\x00" {
		t.Fatalf("after a truncate down and up the file reads %q", got)
	}

	// A truncate while a batch is on its way waits for it.
	g := holdWrites(tm.c, func(int64) bool { return true })
	tm.write(h, 0, strings.Repeat("P", 32))
	g.wait(t)
	tm.c.changes()
	done := make(chan syscall.Errno)
	go func() { done <- tm.truncate(ino, 4) }()
	waitBlockedIn(t, "shoal/mount.(*openFile).settle")
	g.release(nil)
	if errno := <-done; errno != 0 {
		t.Fatalf("truncate: %v", errno)
	}
	if got := strings.Join(tm.c.changes(), ", "); got != "write 0+32, truncate 4" {
		t.Fatalf("the cluster got %s: want the batch before the truncate", got)
	}
	tm.wantContent(ino, "PPPP")
	if got := tm.read(h, 0, 20); got != "PPPP" {
		t.Fatalf("after the truncate the file reads %q", got)
	}
}

// TestUnlinkedWhileOpen: a file unlinked while open here (an orphan) is
// still read, written and synced through its handles, and the cluster
// drops it after the last release, which sends what is left first.
func TestUnlinkedWhileOpen(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino := tm.c.put("f", []byte("still here")).Ino
	h, h2 := tm.open(ino), tm.open(ino)
	// What node.Unlink does for a file open in this mount.
	if err := tm.c.UnlinkIn(t.Context(), rootIno, "f", true); err != nil {
		t.Fatal(err)
	}
	h.f.orphaned()
	tm.write(h, 0, "STILL")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	if got := tm.read(h2, 0, 20); got != "STILL here" {
		t.Fatalf("read %q", got)
	}
	tm.write(h2, 10, "!")
	h.Release(t.Context())
	if _, err := tm.c.StatIno(t.Context(), ino); err != nil {
		t.Fatalf("the orphan was dropped while a handle was open: %v", err)
	}
	h2.Release(t.Context())
	tm.wantSent("0:STILL", "10:!")
	if _, err := tm.c.StatIno(t.Context(), ino); err == nil {
		t.Fatal("the orphan is still in the cluster after its last release")
	}
}

// TestOneRunGoesAsAWriteAt: with a router that takes several writes in
// one request, a batch of one run (a sequential writer's) still goes as
// a write at an offset, which the router stores chunk by chunk as it
// arrives, unless it is at most a chunk into an empty file (a patch then
// says the file is empty: see TestFirstFlushSaysTheFileIsEmpty); several
// runs, or a truncate, go as one patch.
func TestOneRunGoesAsAWriteAt(t *testing.T) {
	tm := newTestMountRanges(t, 64, 4, nil)
	ino, h := tm.create("f")
	tm.c.changes()
	tm.write(h, 0, "abc")
	tm.write(h, 3, "def")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.write(h, 6, "gh")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.write(h, 0, "X")
	tm.write(h, 4, "Y")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	if errno := tm.truncate(ino, 5); errno != 0 {
		t.Fatalf("truncate: %v", errno)
	}
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	want := []string{"patch write 0+6", "write 6+2", "patch write 0+1 write 4+1", "patch truncate 5 size 5"}
	if got := tm.c.changes(); !slices.Equal(got, want) {
		t.Fatalf("the mount sent %q, want %q", got, want)
	}
	tm.wantContent(ino, "XbcdY")
}

// TestFirstFlushSaysTheFileIsEmpty: the first batch into a file created
// empty tells the router so, with the generation it was empty at (the
// router then need not read it first); later batches, a batch into a
// file with content, and a run longer than a chunk (stored as it
// arrives) do not.
func TestFirstFlushSaysTheFileIsEmpty(t *testing.T) {
	tm := newTestMountRanges(t, 64, 4, nil)
	ino, h := tm.create("f")
	gen := tm.c.stat(ino).Gen
	tm.write(h, 0, "hello")
	tm.setattr(context.Background(), ino, chmodIn(0o600))
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.write(h, 5, " world")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	h.Release(context.Background())
	if want := []string{fmt.Sprintf("empty at %d", gen)}; !slices.Equal(tm.c.hints, want) {
		t.Fatalf("the patches said %q, want %q", tm.c.hints, want)
	}
	tm.wantContent(ino, "hello world")

	tm.c.hints = nil
	_, h = tm.create("big")
	tm.c.changes()
	tm.write(h, 0, strings.Repeat("b", 65))
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	h.Release(context.Background())
	if got, want := tm.c.changes(), []string{"write 0+64", "write 64+1"}; len(tm.c.hints) != 0 || !slices.Equal(got, want) {
		t.Fatalf("a run longer than a chunk went as %q saying %q, want %q saying nothing", got, tm.c.hints, want)
	}
}
