package mount

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// setattr changes attributes of ino as fchmod, fchown and futimens do,
// through the node as the kernel calls it, in ctx.
func (tm *testMount) setattr(ctx context.Context, ino uint64, in *fuse.SetAttrIn) fuse.Attr {
	tm.t.Helper()
	var out fuse.AttrOut
	if errno := (&node{m: tm.m, ino: ino}).Setattr(ctx, nil, in, &out); errno != 0 {
		tm.t.Fatalf("setattr %+v: %v", in.SetAttrInCommon, errno)
	}
	return out.Attr
}

// getattr returns the attributes of ino the kernel is told.
func (tm *testMount) getattr(ino uint64) fuse.Attr {
	tm.t.Helper()
	var out fuse.AttrOut
	if errno := (&node{m: tm.m, ino: ino}).Getattr(context.Background(), nil, &out); errno != 0 {
		tm.t.Fatalf("getattr: %v", errno)
	}
	return out.Attr
}

// asUser is the context of a FUSE request from user uid (group uid) in
// this process.
func asUser(uid uint32) context.Context {
	return fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: uid, Gid: uid}, Pid: uint32(os.Getpid())})
}

func chmodIn(mode uint32) *fuse.SetAttrIn {
	return &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_MODE, Mode: mode}}
}

func chownIn(uid, gid uint32) *fuse.SetAttrIn {
	return &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_UID | fuse.FATTR_GID, Owner: fuse.Owner{Uid: uid, Gid: gid}}}
}

func mtimeIn(t time.Time) *fuse.SetAttrIn {
	return &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_MTIME, Mtime: uint64(t.Unix())}}
}

// A program that writes a file, then sets its times, owner and mode and
// closes it (as tar and rsync do) costs the write and one change of
// attributes, sent at the close in that order, so the explicit mtime is
// not undone by the write. The mount shows the changes at once.
// With a router that takes writes and attributes in one request, the
// close sends them as one.
func TestAttrsWaitForTheWrites(t *testing.T) {
	for _, tc := range []struct {
		ranges int
		sent   []string
	}{
		{0, []string{"write 0+5", "attrs"}},
		{4, []string{"patch write 0+5 attrs"}},
	} {
		t.Run(fmt.Sprintf("ranges-%d", tc.ranges), func(t *testing.T) { attrsWaitForTheWrites(t, tc.ranges, tc.sent) })
	}
}

func attrsWaitForTheWrites(t *testing.T, ranges int, sent []string) {
	tm := newTestMountRanges(t, 64, ranges, nil)
	ino, h := tm.create("f")
	tm.c.changes()
	tm.write(h, 0, "hello")
	mtime := time.Unix(1_000_000_000, 0)
	ctx := context.Background()
	tm.setattr(ctx, ino, mtimeIn(mtime))
	tm.setattr(ctx, ino, chownIn(7, 8))
	got := tm.setattr(ctx, ino, chmodIn(0o600))
	if calls := tm.c.changes(); len(calls) != 0 {
		t.Fatalf("before the close the cluster got %q, want nothing", calls)
	}
	for what, a := range map[string]fuse.Attr{"setattr": got, "getattr": tm.getattr(ino)} {
		if a.Mode&0o7777 != 0o600 || a.Uid != 7 || a.Gid != 8 || a.Mtime != uint64(mtime.Unix()) || a.Size != 5 {
			t.Errorf("%s shows mode %o, owner %d:%d, mtime %d, size %d before the close; want 600, 7:8, %d, 5",
				what, a.Mode&0o7777, a.Uid, a.Gid, a.Mtime, a.Size, mtime.Unix())
		}
	}
	if errno := h.Flush(ctx); errno != 0 {
		t.Fatal(errno)
	}
	if calls, want := tm.c.changes(), sent; !slices.Equal(calls, want) {
		t.Fatalf("the close sent %q, want %q", calls, want)
	}
	a := tm.c.stat(ino)
	if a.Mode != 0o600 || a.Uid != 7 || a.Gid != 8 || !a.MTime.Equal(mtime) || tm.c.content(ino) != "hello" {
		t.Errorf("the cluster has mode %o, owner %d:%d, mtime %v, content %q; want 600, 7:8, %v, hello", a.Mode, a.Uid, a.Gid, a.MTime, tm.c.content(ino), mtime)
	}
	// With nothing unsent, a change goes out at once.
	tm.setattr(ctx, ino, chmodIn(0o644))
	if calls := tm.c.changes(); !slices.Equal(calls, []string{"attrs"}) {
		t.Errorf("a chmod with nothing unsent sent %q, want one change of attributes", calls)
	}
	h.Release(ctx)
}

// Each change goes out as the user who made it: a change by another user
// than the one whose change waits is not merged into it; the waiting one
// is sent first, with the writes before it.
func TestAttrsOfAnotherUserAreSentApart(t *testing.T) {
	tm := newTestMount(t, 64, func(c *Config) { c.ActAs = true })
	ino, h := tm.create("f")
	tm.c.changes()
	if _, errno := h.Write(asUser(1000), []byte("data"), 0); errno != 0 {
		t.Fatal(errno)
	}
	tm.setattr(asUser(1000), ino, chmodIn(0o640))
	tm.setattr(asUser(0), ino, chownIn(5, 5))
	if calls, want := tm.c.changes(), []string{"write 0+4", "attrs as 1000", "attrs as 0"}; !slices.Equal(calls, want) {
		t.Fatalf("the cluster got %q, want %q", calls, want)
	}
	if a := tm.c.stat(ino); a.Mode != 0o640 || a.Uid != 5 {
		t.Errorf("the cluster has mode %o, owner %d; want 640, 5", a.Mode, a.Uid)
	}
	h.Release(context.Background())
}

// A truncate is never held back: it goes after the writes and changes
// before it.
func TestTruncateSendsWaitingAttrs(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino, h := tm.create("f")
	tm.c.changes()
	tm.write(h, 0, "hello")
	tm.setattr(context.Background(), ino, chmodIn(0o600))
	if errno := tm.truncate(ino, 2); errno != 0 {
		t.Fatal(errno)
	}
	if calls, want := tm.c.changes(), []string{"write 0+5", "attrs", "truncate 2"}; !slices.Equal(calls, want) {
		t.Fatalf("the cluster got %q, want %q", calls, want)
	}
	h.Release(context.Background())
}

// TestStatOfAnOpenFileIsItsLastAnswer: a stat of a file open here, after
// a write, a truncate or a chmod through the mount, is answered from what
// the cluster answered that change with, for the attribute timeout,
// without a request; a link, unlink or rename through the mount (which
// changes links or ctime without a request on the file) and the end of
// the timeout each make it ask again.
func TestStatOfAnOpenFileIsItsLastAnswer(t *testing.T) {
	tm := newTestMount(t, 64, func(c *Config) { c.AttrTimeout = time.Hour })
	ino, h := tm.create("f")
	tm.write(h, 0, "hello, world")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.truncate(ino, 5)
	tm.setattr(context.Background(), ino, chmodIn(0o600))
	tm.c.statCalls()
	if a := tm.getattr(ino); a.Size != 5 || a.Mode&0o7777 != 0o600 {
		t.Fatalf("stat after the changes: size %d mode %o, want 5 and 600", a.Size, a.Mode&0o7777)
	}
	if n := tm.c.statCalls(); n != 0 {
		t.Fatalf("a stat after the mount's own changes asked the cluster %d times, want none", n)
	}
	tm.m.namesEpoch.Add(1) // as node.Unlink, Link and Rename do
	tm.getattr(ino)
	if n := tm.c.statCalls(); n != 1 {
		t.Fatalf("a stat after an unlink through the mount asked the cluster %d times, want once", n)
	}

	tm = newTestMount(t, 64, func(c *Config) { c.AttrTimeout = 0 })
	ino, h = tm.create("f")
	tm.write(h, 0, "hello")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.c.statCalls()
	if a := tm.getattr(ino); a.Size != 5 {
		t.Fatalf("stat without an attribute timeout: size %d, want 5", a.Size)
	}
	if n := tm.c.statCalls(); n != 1 {
		t.Fatalf("without an attribute timeout a stat asked the cluster %d times, want once", n)
	}
}

// TestTruncateGoesAsItsUser: a truncate that waits for the next flush is
// sent, with the writes, as the user who made it, whoever used the file
// last; a truncate by another user than the one waiting is sent at once.
func TestTruncateGoesAsItsUser(t *testing.T) {
	tm := newTestMountRanges(t, 64, 4, func(c *Config) { c.ActAs = true })
	ino, h := tm.create("f")
	tm.c.changes()
	if _, errno := h.Write(asUser(1000), []byte("data"), 0); errno != 0 {
		t.Fatal(errno)
	}
	truncate := func(ctx context.Context, size int64) {
		t.Helper()
		if errno := tm.truncateIn(ctx, ino, size); errno != 0 {
			t.Fatalf("truncate to %d: %v", size, errno)
		}
	}
	truncate(asUser(0), 3)
	if _, errno := h.Read(asUser(1000), make([]byte, 4), 0); errno != 0 {
		t.Fatal(errno)
	}
	if calls := tm.c.changes(); len(calls) != 0 {
		t.Fatalf("before the flush the cluster got %q, want nothing", calls)
	}
	if errno := h.Flush(asUser(1000)); errno != 0 {
		t.Fatalf("close: %v", errno)
	}
	if calls, want := tm.c.changes(), []string{"patch truncate 3 write 0+3 size 3 as 0"}; !slices.Equal(calls, want) {
		t.Fatalf("the close by user 1000 sent %q, want %q", calls, want)
	}
	truncate(asUser(0), 2)
	truncate(asUser(1001), 1)
	if calls, want := tm.c.changes(), []string{"patch truncate 2 size 2 as 0", "truncate 1"}; !slices.Equal(calls, want) {
		t.Fatalf("the cluster got %q, want %q", calls, want)
	}
	if got := tm.c.content(ino); got != "d" {
		t.Fatalf("the cluster stores %q, want %q", got, "d")
	}
	h.Release(context.Background())
}

// TestStatAfterAnOpenIsTheOpens: an open asks for the file's attributes
// (close-to-open), and a stat after it shows them, not those the mount
// noted earlier from its own change while another handle held the file.
func TestStatAfterAnOpenIsTheOpens(t *testing.T) {
	tm := newTestMount(t, 64, func(c *Config) { c.AttrTimeout = time.Hour })
	ino, h := tm.create("f")
	tm.write(h, 0, "hello")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	tm.c.mu.Lock()
	tm.c.inodes[ino].attr.Mode = 0o600 // a chmod on another host
	tm.c.mu.Unlock()
	h2 := tm.open(ino)
	if a := tm.getattr(ino); a.Mode&0o7777 != 0o600 {
		t.Fatalf("a stat after an open shows mode %o, want the 600 the open was answered", a.Mode&0o7777)
	}
	h2.Release(context.Background())
	h.Release(context.Background())
}

// TestStatAfterACreateOrOpenIsItsAnswer: a stat of a file just created or
// opened here is answered from what the create or open was answered,
// with the writes and attribute changes not sent yet, without a request
// (tar asks for it after writing each file, before its fchown).
func TestStatAfterACreateOrOpenIsItsAnswer(t *testing.T) {
	tm := newTestMount(t, 64, func(c *Config) { c.AttrTimeout = time.Hour })
	tm.c.statCalls()
	ino, h := tm.create("f")
	tm.write(h, 0, "hello")
	tm.setattr(context.Background(), ino, chmodIn(0o600))
	if a := tm.getattr(ino); a.Size != 5 || a.Mode&0o7777 != 0o600 {
		t.Fatalf("stat after a create, a write and a chmod: size %d mode %o, want 5 and 600", a.Size, a.Mode&0o7777)
	}
	if n := tm.c.statCalls(); n != 0 {
		t.Fatalf("a stat after a create asked the cluster %d times, want none", n)
	}
	h.Release(context.Background())

	h = tm.open(ino)
	if n := tm.c.statCalls(); n != 1 {
		t.Fatalf("an open asked the cluster %d times, want once", n)
	}
	if a := tm.getattr(ino); a.Size != 5 || a.Mode&0o7777 != 0o600 {
		t.Fatalf("stat after an open: size %d mode %o, want 5 and 600", a.Size, a.Mode&0o7777)
	}
	if n := tm.c.statCalls(); n != 0 {
		t.Fatalf("a stat after an open asked the cluster %d times, want none", n)
	}
	h.Release(context.Background())
}

// TestStatOfADirAfterAChangeInIt: a change of names through the mount
// asks for the directories it changed, and a stat of one of them after
// it is answered from that, as it is after the change, without a
// request; not when another change began or ended while it was on its
// way (its answer may lack the other's effect), once any other change
// ends, after a change that failed, after a change of its attributes,
// nor past the attribute timeout.
func TestStatOfADirAfterAChangeInIt(t *testing.T) {
	tm := newTestMount(t, 64, func(c *Config) { c.AttrTimeout = time.Hour })
	ctx := context.Background()
	create := func(ctx context.Context, name string) {
		t.Helper()
		if _, _, err := tm.c.CreateIn(ctx, rootIno, name, 0o644, 0, 0, true); err != nil {
			t.Fatal(err)
		}
	}
	asks := func(what string, want int) {
		t.Helper()
		root := tm.c.stat(rootIno)
		tm.c.statCalls()
		got := tm.getattr(rootIno)
		if n := tm.c.statCalls(); n != want {
			t.Fatalf("%s: a stat of the directory asked the cluster %d times, want %d", what, n, want)
		}
		if got.Mtime != uint64(root.MTime.Unix()) || got.Mtimensec != uint32(root.MTime.Nanosecond()) {
			t.Fatalf("%s: the directory's mtime shows as %d.%09d, the cluster has %v", what, got.Mtime, got.Mtimensec, root.MTime)
		}
	}

	cctx, ch := tm.m.changing(ctx)
	create(cctx, "a")
	ch.end()
	asks("after a create", 0)

	cctx, ch = tm.m.changing(ctx)
	if err := tm.c.UnlinkIn(cctx, rootIno, "a", false); err != nil {
		t.Fatal(err)
	}
	ch.end()
	asks("after an unlink", 0)

	// Two changes on their way at once: the one that ends first, alone
	// since it began, notes its answer; the other's end, which may be
	// newer, drops it and notes nothing.
	c1, ch1 := tm.m.changing(ctx)
	c2, ch2 := tm.m.changing(ctx)
	create(c1, "b")
	create(c2, "c")
	ch2.end()
	asks("after the second of two changes at once", 0)
	ch1.end()
	asks("after both of two changes at once", 1)

	// One that began and ended while another was on its way.
	c1, ch1 = tm.m.changing(ctx)
	create(c1, "d")
	c2, ch2 = tm.m.changing(ctx)
	create(c2, "e")
	ch2.end()
	ch1.end()
	asks("after a change inside another", 1)

	// A failed change, and any other change, drop what was noted.
	cctx, ch = tm.m.changing(ctx)
	create(cctx, "f")
	ch.end()
	cctx, ch = tm.m.changing(ctx)
	if _, _, err := tm.c.CreateIn(cctx, rootIno, "f", 0o644, 0, 0, true); err == nil {
		t.Fatal("a second exclusive create of f succeeded")
	}
	ch.end()
	asks("after a failed change", 1)
	cctx, ch = tm.m.changing(ctx)
	create(cctx, "g")
	ch.end()
	// A file's content or attributes: the directory is as it was.
	tm.m.contentChanged()
	tm.m.attrChanged(tm.c.names["g"], false)
	asks("after a change of a file in it", 0)
	tm.m.attrChanged(rootIno, false)
	asks("after a change of its attributes", 1)

	tm = newTestMount(t, 64, func(c *Config) { c.AttrTimeout = 0 })
	cctx, ch = tm.m.changing(ctx)
	create(cctx, "a")
	ch.end()
	asks("without an attribute timeout", 1)
}

// TestSetattrAnswerIsKept: the kernel may keep the attributes the cluster
// answers a change of attributes with for the attribute timeout, as
// those of a stat (it would otherwise ask for them again at once: rsync
// -a's utimes and chmod of each file cost a round trip more each); not
// those of a change kept for the next flush of an open file, whose times
// are not the cluster's yet (a stat after the close must show the
// truncate's ctime and mtime: pjdfstest's ftruncate and open O_TRUNC).
func TestSetattrAnswerIsKept(t *testing.T) {
	tm := newTestMountRanges(t, 64, 4, func(c *Config) { c.AttrTimeout = 3 * time.Second })
	ino, h := tm.create("f")
	setattr := func(in *fuse.SetAttrIn) fuse.AttrOut {
		t.Helper()
		var out fuse.AttrOut
		if errno := (&node{m: tm.m, ino: ino}).Setattr(context.Background(), nil, in, &out); errno != 0 {
			t.Fatalf("setattr: %v", errno)
		}
		return out
	}
	tm.write(h, 0, "hello")
	if out := setattr(&fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_SIZE, Size: 2}}); out.Timeout() != 0 || out.Size != 2 {
		t.Fatalf("a truncate kept for the flush: size %d kept for %v, want 2 for no time", out.Size, out.Timeout())
	}
	h.Release(context.Background())
	if out := setattr(chmodIn(0o600)); out.Timeout() != 3*time.Second || out.Mode&0o7777 != 0o600 {
		t.Fatalf("chmod of a closed file: mode %o kept for %v, want 600 for 3s", out.Mode&0o7777, out.Timeout())
	}
}

// TestOpenRacingAChmod: an open's answer is not kept when a change of the
// file's attributes made through this mount without the file open ended
// while the open was asking, or ends after it: its answer may predate
// the change, and a stat after it asks the cluster.
func TestOpenRacingAChmod(t *testing.T) {
	tm := newTestMount(t, 64, func(c *Config) { c.AttrTimeout = time.Hour })
	ino, h := tm.create("f")
	h.Release(context.Background())

	// The chmod ends between the open's answer and its registering.
	q := tm.m.asking()
	a := tm.c.stat(ino)
	tm.setattr(context.Background(), ino, chmodIn(0o600))
	h = &handle{f: tm.m.open(a, q)}
	tm.c.statCalls()
	if got := tm.getattr(ino); got.Mode&0o7777 != 0o600 || tm.c.statCalls() != 1 {
		t.Fatalf("a stat after an open that raced a chmod: mode %o, want the cluster asked and 600", got.Mode&0o7777)
	}
	h.Release(context.Background())

	// The chmod commits before the open's answer is used, and ends after.
	q = tm.m.asking()
	a = tm.c.stat(ino)
	h = &handle{f: tm.m.open(a, q)}
	tm.c.mu.Lock()
	tm.c.inodes[ino].attr.Mode = 0o640 // the chmod's commit
	tm.c.mu.Unlock()
	tm.m.attrChanged(ino, true) // its end, made without the file open
	tm.c.statCalls()
	if got := tm.getattr(ino); got.Mode&0o7777 != 0o640 || tm.c.statCalls() != 1 {
		t.Fatalf("a stat after an open that a chmod ended after: mode %o, want the cluster asked and 640", got.Mode&0o7777)
	}
	h.Release(context.Background())
}
