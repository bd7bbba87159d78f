package mount

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
)

// failWrites makes the WriteAt calls of c fail with the error the
// function returned gives (nil: they go through), changeable meanwhile.
func failWrites(c *memCluster) func(func(off int64) error) {
	var mu sync.Mutex
	fail := func(int64) error { return nil }
	c.onWrite(func(off int64, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return fail(off)
	})
	return func(f func(off int64) error) {
		mu.Lock()
		fail = f
		mu.Unlock()
	}
}

func always(err error) func(int64) error { return func(int64) error { return err } }

// errUnavailable is the error a request gets when the group stayed
// without a primary for longer than the client retries.
var errUnavailable = &client.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "no primary"}

// Writes the cluster refused are reported to fsync, close or the write
// that waits for them, and are kept to go again: none is dropped without
// a word.

// TestSendErrorReachesFsyncAndClose: a write the cluster refuses fails
// fsync and close with its errno, and is kept for the next try.
func TestSendErrorReachesFsyncAndClose(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino, h := tm.create("f")
	fail := failWrites(tm.c)
	tm.write(h, 0, "data")
	fail(always(fmt.Errorf("store: %w", client.ErrNoSpace)))
	if errno := tm.fsync(h); errno != syscall.ENOSPC {
		t.Fatalf("fsync on a full cluster: %v, want ENOSPC", errno)
	}
	if errno := h.Flush(context.Background()); errno != syscall.ENOSPC {
		t.Fatalf("close on a full cluster: %v, want ENOSPC", errno)
	}
	if got := tm.read(h, 0, 10); got != "data" {
		t.Fatalf("the writes refused read %q", got)
	}
	fail(always(nil))
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync once there is room: %v", errno)
	}
	tm.wantContent(ino, "data")
}

// TestFlushCutShortGoesOn: a flush that failed after some of its writes
// went through sends the rest next time, not those again.
func TestFlushCutShortGoesOn(t *testing.T) {
	tm := newTestMount(t, chunk, nil)
	ino, h := tm.create("f")
	fail := failWrites(tm.c)
	data := pattern(20)
	tm.write(h, 0, data)
	fail(func(off int64) error {
		if off == 8 {
			return errUnavailable
		}
		return nil
	})
	if errno := tm.fsync(h); errno != syscall.EIO {
		t.Fatalf("fsync: %v, want EIO", errno)
	}
	tm.wantSent("0:" + data[:8])
	fail(always(nil))
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync again: %v", errno)
	}
	tm.wantSent("8:"+data[8:16], "16:"+data[16:])
	tm.wantContent(ino, data)
}

// TestFailedBatchGoesAgainUnderNewerWrites: a batch that failed in the
// background is kept under the writes made while it was on its way,
// which are newer.
func TestFailedBatchGoesAgainUnderNewerWrites(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino, h := tm.create("f")
	g := holdWrites(tm.c, func(int64) bool { return true })
	tm.write(h, 0, strings.Repeat("a", 32))
	g.wait(t)
	tm.write(h, 0, "NEW")
	g.release(errUnavailable)
	settled(h.f)
	tm.c.onWrite(nil)
	want := "NEW" + strings.Repeat("a", 29)
	if got := tm.read(h, 0, 40); got != want {
		t.Fatalf("after the batch failed the file reads %q, want %q", got, want)
	}
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.wantSent("0:" + want)
	tm.wantContent(ino, want)
}

// TestWriteWaitingForAFailedBatchGetsItsError: the write that fills the
// buffer again while a batch is on its way waits for it, and fails with
// its error; its own bytes are kept all the same.
func TestWriteWaitingForAFailedBatchGetsItsError(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino, h := tm.create("f")
	g := holdWrites(tm.c, func(int64) bool { return true })
	a, b := strings.Repeat("a", 32), strings.Repeat("b", 32)
	tm.write(h, 0, a)
	g.wait(t)
	done := make(chan syscall.Errno)
	go func() {
		_, errno := h.Write(context.Background(), []byte(b), 32)
		done <- errno
	}()
	waitBlockedIn(t, "shoal/mount.(*openFile).settle")
	g.release(fmt.Errorf("store: %w", client.ErrNoSpace))
	if errno := <-done; errno != syscall.ENOSPC {
		t.Fatalf("the write that filled the buffer again: %v, want ENOSPC", errno)
	}
	// Its bytes are kept all the same, and go with the next flush.
	tm.c.onWrite(nil)
	if got := tm.read(h, 0, 100); got != a+b {
		t.Fatalf("the file reads %q", got)
	}
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.wantContent(ino, a+b)
}

// TestLastReleaseLogsWhatItCouldNotSend: what the last release of a file
// cannot send is lost, and the mount logs it as an error.
func TestLastReleaseLogsWhatItCouldNotSend(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	_, h := tm.create("f")
	fail := failWrites(tm.c)
	tm.write(h, 0, "data")
	fail(always(errUnavailable))
	h.Release(context.Background())
	if log := tm.log.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "are lost") {
		t.Fatalf("the mount logged\n%s\nwant an error saying the writes are lost", log)
	}
}

// TestContentChangedElsewhere: another client's changes to a file open
// here. Writes go to the cluster as writes at offsets, which the router
// splices into the content as it is then (computing them again when
// another change commits first, see meta.Inode.Gen), so they keep the
// other client's bytes; an open file reads what it cached until it
// sends a write or the file is opened again with a new generation
// (close-to-open consistency).
func TestContentChangedElsewhere(t *testing.T) {
	t.Run("unsent writes land on the new content", func(t *testing.T) {
		tm := newTestMount(t, 64, nil)
		ino := tm.c.put("f", []byte(strings.Repeat("a", 16))).Ino
		h := tm.open(ino)
		tm.read(h, 0, 16)
		tm.write(h, 2, "M")
		tm.c.change(ino, func(b []byte) []byte { b[12] = 'O'; return b })
		if got := tm.read(h, 0, 16); got != "aaMaaaaaaaaaaaaa" {
			t.Fatalf("before it sends, the open file reads %q: want what it read before, under its write", got)
		}
		if errno := tm.fsync(h); errno != 0 {
			t.Fatalf("fsync: %v", errno)
		}
		tm.wantContent(ino, "aaMaaaaaaaaaOaaa")
		if got := tm.read(h, 0, 16); got != "aaMaaaaaaaaaOaaa" {
			t.Fatalf("after it sent, the open file reads %q: want both changes", got)
		}
	})

	t.Run("an open with a new generation drops what was read", func(t *testing.T) {
		tm := newTestMount(t, 64, nil)
		ino := tm.c.put("f", []byte("v1v1v1v1")).Ino
		h := tm.open(ino)
		if got := tm.read(h, 0, 20); got != "v1v1v1v1" {
			t.Fatalf("read %q", got)
		}
		tm.c.readsAt()
		// Opened again, unchanged: what was read is still good.
		h2 := tm.open(ino)
		if got := tm.read(h2, 0, 20); got != "v1v1v1v1" {
			t.Fatalf("read %q", got)
		}
		if r := tm.c.readsAt(); len(r) != 0 {
			t.Fatalf("an open of unchanged content read it again at %v", r)
		}
		tm.c.change(ino, func([]byte) []byte { return []byte("v2v2v2v2v2") })
		if got := tm.read(h, 0, 20); got != "v1v1v1v1" {
			t.Fatalf("changed elsewhere, not opened again: reads %q, want what it read", got)
		}
		h3 := tm.open(ino)
		for _, h := range []*handle{h, h3} {
			if got := tm.read(h, 0, 20); got != "v2v2v2v2v2" {
				t.Fatalf("opened again after a change elsewhere: reads %q", got)
			}
		}
	})

	t.Run("a write the router gave up on is kept for the next try", func(t *testing.T) {
		tm := newTestMount(t, 64, nil)
		ino, h := tm.create("f")
		fail := failWrites(tm.c)
		tm.write(h, 0, "data")
		// The router computes a write again when another change commits
		// first, and gives up after a few tries.
		fail(always(&client.Error{Status: http.StatusConflict, Code: "conflict", Message: "changed meanwhile"}))
		if errno := tm.fsync(h); errno != syscall.EIO {
			t.Fatalf("fsync: %v, want EIO", errno)
		}
		fail(always(nil))
		if errno := tm.fsync(h); errno != 0 {
			t.Fatalf("fsync again: %v", errno)
		}
		tm.wantContent(ino, "data")
	})
}

// TestFailedBatchStaysCutByALaterTruncate: a batch that failed in the
// background while a truncate made after it waited keeps only what the
// truncate left of it, and the truncate, sent with it by the next flush,
// lands before the writes made after it.
func TestFailedBatchStaysCutByALaterTruncate(t *testing.T) {
	tm := newTestMountRanges(t, 64, 4, nil)
	ino, h := tm.create("f")
	g := holdWrites(tm.c, func(int64) bool { return true })
	tm.write(h, 0, strings.Repeat("a", 32)) // fills the buffer: a batch goes
	g.wait(t)
	if errno := tm.truncate(ino, 10); errno != 0 {
		t.Fatalf("truncate: %v", errno)
	}
	tm.write(h, 20, "NEW")
	g.release(errUnavailable)
	settled(h.f)
	tm.c.onWrite(nil)
	want := strings.Repeat("a", 10) + strings.Repeat("\x00", 10) + "NEW"
	if got := tm.read(h, 0, 40); got != want {
		t.Fatalf("after the batch failed the file reads %q, want %q", got, want)
	}
	if n := tm.size(ino); n != int64(len(want)) {
		t.Fatalf("the kernel is told size %d, want %d", n, len(want))
	}
	tm.c.changes()
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	if got := tm.c.changes(); !slices.Equal(got, []string{"patch truncate 10 write 0+10 write 20+3 size 23"}) {
		t.Fatalf("the fsync sent %q, want the truncate, the writes and the size in one patch", got)
	}
	tm.wantContent(ino, want)
}

// TestTruncateDuringTheLastCloseIsSent: a truncate that comes while the
// last close of a file sends its writes is sent itself, not kept for a
// flush that will not come.
func TestTruncateDuringTheLastCloseIsSent(t *testing.T) {
	tm := newTestMountRanges(t, 64, 4, nil)
	ino, h := tm.create("f")
	g := holdWrites(tm.c, func(int64) bool { return true })
	tm.write(h, 0, "hello world")
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		h.Release(context.Background())
	}()
	g.wait(t) // the close is sending the writes
	truncated := make(chan syscall.Errno, 1)
	go func() { truncated <- tm.truncate(ino, 5) }()
	g.release(nil)
	<-closed
	if errno := <-truncated; errno != 0 {
		t.Fatalf("truncate: %v", errno)
	}
	tm.c.onWrite(nil)
	tm.wantContent(ino, "hello")
}

// TestWriteAfterAWaitSendsATruncateAtOnce: a write that fills the buffer
// while a batch is on its way waits for it; a truncate made meanwhile
// goes with that write's batch, sent before the write returns, never in
// the background.
func TestWriteAfterAWaitSendsATruncateAtOnce(t *testing.T) {
	tm := newTestMountRanges(t, 64, 4, func(c *Config) { c.WriteBuffer = 8 })
	ino, h := tm.create("f")
	g := holdWrites(tm.c, func(off int64) bool { return off == 0 })
	tm.write(h, 0, strings.Repeat("a", 10)) // a batch goes, held
	g.wait(t)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		tm.write(h, 20, strings.Repeat("b", 10)) // waits for the batch
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := harness.WaitFor(ctx, "the second write to be taken", func() bool { return h.f.known.Load().end == 30 }); err != nil {
		t.Fatal(err)
	}
	if errno := tm.truncate(ino, 25); errno != 0 {
		t.Fatalf("truncate: %v", errno)
	}
	tm.c.changes()
	g.release(nil)
	<-wrote
	if got, want := tm.c.changes(), []string{"write 0+10", "patch truncate 25 write 20+5 size 25"}; !slices.Equal(got, want) {
		t.Fatalf("by the time the write returned the cluster got %q, want %q", got, want)
	}
	tm.wantContent(ino, strings.Repeat("a", 10)+strings.Repeat("\x00", 10)+"bbbbb")
}
