package replication

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// logBuffer collects one node's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the records whose message starts with msg.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var rec map[string]any
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m, _ := rec["msg"].(string); strings.HasPrefix(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

// member is what the primary p reports of member id.
func member(t *testing.T, p *Node, id uint64) wire.MemberInfo {
	t.Helper()
	m, _ := memberInfo(t, p, id)
	return m
}

// A member whose disk turns read-only logs it (once, not once per
// refused write), reports itself out of sync with the error in its
// status, and the primary reports it not synced with the error, while
// the group commits with the other two. Once the disk takes writes again,
// so does the member, and it is synced again.
func TestMemberDiskRefusesWrites(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	logs := &logBuffer{}
	c.cfg = func(cfg *Config) {
		cfg.RepairInterval = 50 * time.Millisecond
		if cfg.ID == 3 {
			cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		}
	}
	for _, id := range []uint64{1, 2, 3} {
		c.start(id)
	}
	if err := c.promote(1, 1); err != nil {
		t.Fatal(err)
	}
	c.waitAllVoters(1, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	if err := put(ctx, c.node(1), "/before", "b"); err != nil {
		t.Fatal(err)
	}
	p, m3 := c.node(1), c.node(3)
	harness.Await(t, 10*time.Second, "member 3 synced", func() bool { return member(t, p, 3).Synced && m3.Status().InSync })

	c.disks[3].Fail(syscall.EROFS)
	for i := range 20 {
		if err := put(ctx, p, fmt.Sprintf("/f%d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatalf("put %d with member 3's disk read-only: %v", i, err)
		}
	}
	harness.Await(t, 5*time.Second, "member 3 to report its disk", func() bool { return m3.Status().DiskError != "" })
	if s := m3.Status(); s.InSync || !strings.Contains(s.DiskError, "read-only file system") {
		t.Errorf("member 3's status: in sync %v, disk error %q; want out of sync with the cause", s.InSync, s.DiskError)
	}
	harness.Await(t, 5*time.Second, "the primary to report member 3's disk", func() bool { return member(t, p, 3).DiskError != "" })
	if mi := member(t, p, 3); mi.Synced || !strings.Contains(mi.DiskError, "read-only file system") {
		t.Errorf("the primary reports member 3 %+v; want not synced, with the cause", mi)
	}
	if mi := member(t, p, 2); !mi.Synced || mi.DiskError != "" {
		t.Errorf("the primary reports member 2 %+v; want synced", mi)
	}
	// The commits rest on members 1 and 2: 2 holds every entry, 3 none
	// since its disk turned.
	if commit, s2, s3 := p.Status().Commit, c.node(2).Status(), m3.Status(); s2.LastIndex < commit || s3.LastIndex >= commit {
		t.Errorf("member 2 holds %d entries, member 3 %d, of %d committed: want 2 with all and 3 behind", s2.LastIndex, s3.LastIndex, commit)
	}
	refused := logs.lines(t, "the disk refused a write")
	if len(refused) != 1 || refused[0]["level"] != "ERROR" || !strings.Contains(fmt.Sprint(refused[0]["err"]), "read-only file system") {
		t.Errorf("member 3 logged %d lines of its disk refusing writes, want one error with the cause: %v", len(refused), refused)
	}

	c.disks[3].Fail(nil)
	if err := put(ctx, p, "/healed", "h"); err != nil {
		t.Fatal(err)
	}
	harness.Await(t, 10*time.Second, "member 3 synced again", func() bool {
		mi := member(t, p, 3)
		return mi.Synced && mi.DiskError == "" && m3.Status().InSync && m3.Status().DiskError == ""
	})
	if back := logs.lines(t, "the disk takes writes again"); len(back) != 1 {
		t.Errorf("member 3 logged %d lines of its disk coming back, want one: %v", len(back), back)
	}
	c.assertConverged(ctx)
}

// A primary whose disk turns read-only cannot store a chunk or append its
// log: the write fails, with ErrDiskFailed (its chunk refused) or
// ErrDeposed (the others held the chunk first, its log refused the
// entry), both of which routers retry; the primary steps down and counts
// itself out of sync, so that another member takes over; the group goes
// on there.
func TestPrimaryDiskRefusesWrites(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	for _, id := range []uint64{1, 2, 3} {
		c.start(id)
	}
	if err := c.promote(1, 1); err != nil {
		t.Fatal(err)
	}
	c.waitAllVoters(1, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	if err := put(ctx, c.node(1), "/before", "b"); err != nil {
		t.Fatal(err)
	}
	p := c.node(1)
	c.disks[1].Fail(syscall.EROFS)
	err := put(ctx, p, "/lost", "x")
	if !errors.Is(err, meta.ErrDiskFailed) && !errors.Is(err, wire.ErrDeposed) || !strings.Contains(fmt.Sprint(err), "read-only file system") {
		t.Fatalf("put at a primary whose disk is read-only: %v, want ErrDiskFailed or ErrDeposed with the cause", err)
	}
	harness.Await(t, 5*time.Second, "the primary to step down", func() bool { return p.Status().Role == Follower })
	if s := p.Status(); s.InSync || !strings.Contains(s.DiskError, "read-only file system") {
		t.Errorf("old primary's status: in sync %v, disk error %q; want out of sync with the cause", s.InSync, s.DiskError)
	}
	if err := c.promote(3, 2); err != nil {
		t.Fatalf("a member that can write takes over: %v", err)
	}
	if err := put(ctx, c.node(3), "/after", "a"); err != nil {
		t.Fatalf("write after the failover: %v", err)
	}
	for path, want := range map[string]string{"/before": "b", "/after": "a"} {
		if got, err := read(ctx, c.node(3), path); err != nil || got != want {
			t.Errorf("%s = %q, %v at the new primary; want %q", path, got, err, want)
		}
	}
}

// Every member's disk down to the reserve kept for metadata: the group
// refuses new data (a chunk, a mkdir) with ErrNoSpace, the answer for a
// full cluster, and nothing else. Deletes commit, reads are served, the
// primary keeps leading under the same ballot and no member counts its
// disk as failed. Room coming back lets writes through again.
func TestFullDisksKeepTheGroup(t *testing.T) {
	const reserve = 64 << 20
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.cfg = func(cfg *Config) { cfg.Store.SetLimits(store.Limits{Reserve: reserve}) }
	for _, id := range []uint64{1, 2, 3} {
		c.start(id)
	}
	if err := c.promote(1, 1); err != nil {
		t.Fatal(err)
	}
	c.waitAllVoters(1, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	p := c.node(1)
	for _, f := range []string{"/a", "/b"} {
		if err := put(ctx, p, f, "content of "+f); err != nil {
			t.Fatal(err)
		}
	}
	ballot := p.Status().Ballot

	for _, id := range []uint64{1, 2, 3} {
		c.disks[id].SetFree(reserve / 2)
	}
	if err := put(ctx, p, "/c", "new content"); !errors.Is(err, meta.ErrNoSpace) {
		t.Errorf("a new file on full disks: %v, want ErrNoSpace", err)
	}
	if _, err := p.Propose(ctx, meta.Op{Kind: meta.OpMkdir, Path: "/d"}); !errors.Is(err, meta.ErrNoSpace) {
		t.Errorf("mkdir on full disks: %v, want ErrNoSpace", err)
	}
	if r, err := p.Propose(ctx, meta.Op{Kind: meta.OpDelete, Path: "/a"}); err != nil || r.Err() != nil {
		t.Errorf("delete on full disks: %v, %v", err, r.Err())
	}
	if r, err := p.Propose(ctx, meta.Op{Kind: meta.OpRename, Path: "/b", To: "/b2"}); err != nil || r.Err() != nil {
		t.Errorf("rename on full disks: %v, %v", err, r.Err())
	}
	if got, err := read(ctx, p, "/b2"); err != nil || got != "content of /b" {
		t.Errorf("read on full disks: %q, %v", got, err)
	}
	if _, err := read(ctx, p, "/a"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("read of the deleted file: %v, want not found", err)
	}
	// Heartbeats go on; nobody steps down or counts its disk as failed.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if s := p.Status(); s.Role != Leader || s.Ballot != ballot || !s.InSync {
			t.Fatalf("the primary on a full disk: %+v; want it leading ballot %s, in sync", s, ballot)
		}
		for _, id := range []uint64{1, 2, 3} {
			if s := c.node(id).Status(); s.DiskError != "" {
				t.Fatalf("member %d counts its full disk as failed: %s", id, s.DiskError)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, id := range []uint64{1, 2, 3} {
		c.disks[id].SetFree(-1)
	}
	harness.Await(t, 5*time.Second, "a write once the disks have room", func() bool { return put(ctx, p, "/c", "new content") == nil })
	c.assertConverged(ctx)
}

// A write that began before the disk refused another and went through
// after it says nothing of the disk now: only a write that began after
// the refusal shows the disk takes writes again. (A primary's own log
// append, still on its way when the disk turned read-only, used to mark
// the disk well again, and a node whose disk refused could count as in
// sync.)
func TestDiskHealthIgnoresStaleSuccess(t *testing.T) {
	d := &diskHealth{log: slog.New(slog.DiscardHandler), every: time.Hour}
	t0 := time.Now()
	refused := fmt.Errorf("write: %w", meta.ErrDiskFailed)
	if !d.report(refused, "store chunk", t0.Add(2*time.Millisecond), t0.Add(3*time.Millisecond)) {
		t.Fatal("a first refusal did not change the disk's state")
	}
	if d.report(nil, "append to log", t0.Add(time.Millisecond), t0.Add(4*time.Millisecond)) || d.failure() == nil {
		t.Fatalf("a write that began before the refusal cleared it: %v", d.failure())
	}
	if d.report(nil, "append to log", t0.Add(2*time.Millisecond), t0.Add(5*time.Millisecond)) || d.failure() == nil {
		t.Fatalf("a write that began with the refusal cleared it: %v", d.failure())
	}
	if !d.report(nil, "append to log", t0.Add(6*time.Millisecond), t0.Add(7*time.Millisecond)) || d.failure() != nil {
		t.Fatalf("a write that began after the refusal did not clear it: %v", d.failure())
	}
	// An older refusal reported late keeps the later start.
	d.report(refused, "append to log", t0.Add(10*time.Millisecond), t0.Add(11*time.Millisecond))
	d.report(refused, "apply to namespace", t0.Add(8*time.Millisecond), t0.Add(12*time.Millisecond))
	if d.report(nil, "store chunk", t0.Add(9*time.Millisecond), t0.Add(13*time.Millisecond)) || d.failure() == nil {
		t.Fatalf("a write that began between two refusals cleared them: %v", d.failure())
	}
}
