package mount

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"shoal/client"
)

// openFile is a file open in this mount: the writes not sent yet and the
// windows of content read lately. Every handle of the file shares it, so
// a write through one is read through another.
//
// Writes are kept in memory and sent as a few large writes at offsets:
// in the background when WriteBuffer bytes have gathered (while the
// program goes on writing the next ones; it waits only if those fill the
// buffer again first), and on close and fsync, which return only when
// the data is on a majority of its group's disks. A sequential writer
// fills whole chunks at chunk boundaries, which the router stores
// without reading anything back. Truncates wait with the writes (with a
// router that takes both in one request): a batch is one request, one
// commit, up to the router's limits (MaxWriteAt bytes, MaxPatchWrites
// runs; past them, several, each a commit).
//
// Attribute changes (mode, owner, times; not the size) made while writes
// are unsent wait with them, merged into one change sent with them (in
// the same request, when made by the user the batch goes as) or right
// after them, by the same close or fsync: a program that writes a file,
// sets its times, owner and mode and closes it (tar, cp -p, rsync) costs
// one request or two instead of four, and the change lands after the
// writes it followed, as the program ordered them (a write sent after an
// explicit mtime would undo it). This mount shows them at once; other
// hosts see them after the close, as they see the writes.
type openFile struct {
	m   *fsys
	ino uint64

	// Guarded by m.mu.
	opens  int
	orphan bool // unlinked while open: the cluster keeps it until the last close

	mu       sync.Mutex // serializes the file's reads, writes and flushes
	size     int64      // the stored content's size, as last seen
	gen      uint64     // the stored content's generation
	dirty    extents
	inflight *sending // writes being sent in the background, or nil
	// cut and trunc are the truncates made since the last batch went out,
	// which go with the next one: the stored content is cut to cut bytes
	// (the smallest size truncated to) before the writes in dirty, and
	// the file is sized to trunc (the last size truncated to) after
	// them, or to the end of the writes past it. -1: none. Kept only
	// with a router that takes them with the writes in one request
	// (fsys.maxRanges); a batch that carries them goes out at once, never
	// in the background.
	cut, trunc int64
	// truncBy is who made the truncates waiting (nil when the mount does
	// not act for users): the batch that carries them is sent as that
	// user, who the kernel let truncate the file.
	truncBy *client.Identity
	// closing is set while the last handle's release flushes: what comes
	// after that flush is not kept for a next one.
	closing  bool
	known    atomic.Pointer[sizes] // size, gen and the end of dirty and inflight, set by updateSizes
	held     int64                 // bytes in dirty and inflight, counted in m.writeBack
	windows  map[int64]*window
	order    []int64 // window numbers, least recently used first
	nextRead int64   // where a sequential reader reads next
	// pend is the attribute changes waiting for the writes, made by pendBy
	// (nil when the mount does not act for its users) at pendAt.
	pend   client.SetAttr
	pendBy *client.Identity
	pendAt time.Time

	// who is the user of the last request through this file, for the
	// requests the mount makes on its own (reading ahead, sending writes
	// in the background or at the last close) when it acts for users.
	who atomic.Pointer[client.Identity]
	// latest is the attributes the cluster last answered a request on
	// this file with, and when (see recentAttr).
	latest atomic.Pointer[seenAttr]
}

// seenAttr is an answer's attributes, when it came and the mount's
// names epoch then (fsys.namesEpoch).
type seenAttr struct {
	a     client.Attr
	at    time.Time
	epoch uint64
}

// asked is when this mount sent a request whose answer it may note as a
// file's attributes, and its names epoch and count of changes then.
type asked struct {
	at      time.Time
	epoch   uint64
	changes uint64
}

// asking is asked for a request about to be sent.
func (m *fsys) asking() asked {
	m.mu.Lock()
	defer m.mu.Unlock()
	return asked{epoch: m.namesEpoch.Load(), at: time.Now(), changes: m.changes}
}

// noteAttr records a, an answer to a request on the file this mount
// made when its names epoch was epoch (read before the request: a link,
// unlink or rename that ran meantime makes the answer stale) (mu held).
func (f *openFile) noteAttr(a client.Attr, epoch uint64) {
	f.latest.Store(&seenAttr{a: a, at: time.Now(), epoch: epoch})
}

// recentAttr returns the attributes the cluster answered this mount's
// last request on the file with, if that was within the attribute
// timeout and no link, unlink or rename through this mount came since
// (each changes a file's links or ctime without a request on it). Every
// change this mount makes to the file answers with its attributes, so
// they are as current as the kernel's own cache of them would be: a
// write or a truncate makes the kernel forget what it cached, and
// without this each following stat would be a round trip.
func (f *openFile) recentAttr() (client.Attr, bool) {
	s := f.latest.Load()
	if s == nil || s.epoch != f.m.namesEpoch.Load() || time.Since(s.at) >= f.m.cfg.AttrTimeout {
		return client.Attr{}, false
	}
	return s.a, true
}

// act is fsys.as for a request on this file, which also remembers its
// user for the file's background requests.
func (f *openFile) act(ctx context.Context) context.Context {
	if id, ok := f.m.caller(ctx); ok {
		f.who.Store(&id)
	}
	return f.m.as(ctx)
}

// actor makes ctx act for the file's last user (see who).
func (f *openFile) actor(ctx context.Context) context.Context {
	if id := f.who.Load(); id != nil {
		return client.ActAs(ctx, *id)
	}
	return ctx
}

// opCtx is the mount's opCtx acting for the file's last user.
func (f *openFile) opCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := opCtx()
	return f.actor(ctx), cancel
}

// sizes is what the size of an open file is made of, stored whole for
// attributes read without its mu (see fsys.size): the stored content's
// generation and size, and the end of the writes not stored yet.
type sizes struct {
	gen       uint64
	size, end int64 // end is 0 when every write is stored
	// exact, when not -1, is the size whatever is stored: a truncate
	// waits to be sent.
	exact int64
	// pend is the attribute changes not sent yet, nil when none; pendAt
	// is when they were made.
	pend   *client.SetAttr
	pendAt time.Time
}

// updateSizes stores the file's sizes for readers without mu (mu held).
func (f *openFile) updateSizes() {
	end, held := f.dirty.end(), f.dirty.bytes
	if f.inflight != nil && len(f.inflight.runs) > 0 {
		end = max(end, f.inflight.runs[len(f.inflight.runs)-1].end())
		held += f.inflight.bytes
	}
	if d := held - f.held; d != 0 {
		f.m.writeBack.Add(d)
		f.held = held
	}
	s := &sizes{gen: f.gen, size: f.size, end: end, exact: -1}
	if f.trunc >= 0 {
		s.exact = max(f.trunc, f.dirty.end())
	}
	if f.pend != (client.SetAttr{}) {
		p := f.pend
		s.pend, s.pendAt = &p, f.pendAt
	}
	f.known.Store(s)
}

// unsent reports whether writes or attribute changes wait to be sent (mu
// held).
func (f *openFile) unsent() bool {
	return f.dirty.bytes > 0 || f.inflight != nil || f.pend != (client.SetAttr{}) || f.trunc >= 0
}

// deferTruncate records a truncate to size, to go with the next batch of
// writes, and reports whether it could: not with a router that cannot
// take truncates and writes in one request, nor past the router's
// largest file (which the router refuses at once).
//
// It is sent as who (the user who truncates, nil when the mount does not
// act for users), with the writes that wait: a truncate by another user
// than the one of a truncate already waiting is not kept either.
func (f *openFile) deferTruncate(size int64, who *client.Identity) bool {
	if f.m.maxRanges == 0 || f.m.maxFileSize > 0 && size > f.m.maxFileSize {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing || f.trunc >= 0 && !sameIdentity(f.truncBy, who) {
		return false
	}
	f.truncBy = who
	f.dirty.truncate(size)
	if f.cut < 0 || size < f.cut {
		f.cut = size
	}
	f.trunc = size
	f.updateSizes()
	return true
}

// deferAttrs records sa, a change of attributes other than the size made by
// who, to be sent after the unsent writes, and reports whether it could:
// not when nothing is unsent, nor when another user's change waits (each
// change goes out as the user who made it).
func (f *openFile) deferAttrs(sa client.SetAttr, who *client.Identity) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sa.Size != nil || !f.unsent() || f.closing {
		return false
	}
	if f.pend != (client.SetAttr{}) && !sameIdentity(f.pendBy, who) {
		return false
	}
	if sa.Mode != nil {
		f.pend.Mode = sa.Mode
	}
	if sa.Uid != nil {
		f.pend.Uid = sa.Uid
	}
	if sa.Gid != nil {
		f.pend.Gid = sa.Gid
	}
	if sa.ATime != nil {
		f.pend.ATime = sa.ATime
	}
	if sa.MTime != nil {
		f.pend.MTime = sa.MTime
	}
	f.pendBy, f.pendAt = who, time.Now()
	f.updateSizes()
	return true
}

func sameIdentity(a, b *client.Identity) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Uid == b.Uid && a.Gid == b.Gid && slices.Equal(a.Groups, b.Groups)
}

// sendAttrs sends the attribute changes that waited for the writes, as
// the user who made them (mu held); on failure they wait for the next
// flush.
func (f *openFile) sendAttrs(ctx context.Context) error {
	if f.pend == (client.SetAttr{}) {
		return nil
	}
	if f.pendBy != nil {
		ctx = client.ActAs(ctx, *f.pendBy)
	}
	epoch := f.m.namesEpoch.Load()
	a, err := f.m.c.SetAttrIno(ctx, f.ino, f.pend)
	if err != nil {
		return fmt.Errorf("set attributes of inode %d after its writes: %w", f.ino, err)
	}
	f.pend, f.pendBy = client.SetAttr{}, nil
	if a.Gen >= f.gen {
		f.size, f.gen = a.Size, a.Gen
		f.noteAttr(a, epoch)
	}
	f.updateSizes()
	return nil
}

// open returns the open state of the file a describes, counting one more
// handle. A newer generation than the one cached means another client
// changed the content: the cached windows go. An older one was answered
// before one of this mount's own writes landed (a batch that went out
// while the open waited for a), and is not taken: Gen only grows.
func (m *fsys) open(a client.Attr, q asked) *openFile {
	m.mu.Lock()
	// A change through this mount while the open asked (a chmod of the
	// file, say) may be newer than its answer.
	fresh := m.changes == q.changes
	f := m.files[a.Ino]
	if f == nil {
		f = &openFile{m: m, ino: a.Ino, windows: map[int64]*window{}, gen: a.Gen, size: a.Size, cut: -1, trunc: -1, dirty: extents{limit: m.writeBuffer}}
		f.updateSizes()
		m.files[a.Ino] = f
	}
	f.opens++
	m.mu.Unlock()
	f.mu.Lock()
	f.closing = false
	// An open asks for the file's attributes (close-to-open): those
	// noted before it asked may be older than what it was answered, and
	// what it was answered serves the stats after it (tar's fchown asks
	// for them at once). Those noted since it asked are as recent.
	if s := f.latest.Load(); s == nil || s.at.Before(q.at) {
		f.latest.Store(nil)
	}
	if a.Gen > f.gen {
		f.dropWindows()
	}
	if a.Gen >= f.gen {
		f.size, f.gen = a.Size, a.Gen
		f.updateSizes()
		if fresh && f.latest.Load() == nil {
			f.noteAttr(a, q.epoch)
		}
	}
	f.mu.Unlock()
	return f
}

// opened returns the open state of inode ino, or nil.
func (m *fsys) opened(ino uint64) *openFile {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.files[ino]
}

func (f *openFile) orphaned() {
	f.m.mu.Lock()
	f.orphan = true
	f.m.mu.Unlock()
}

// release drops one handle. The last one sends what is left and, for an
// orphan, tells the cluster to drop the file.
func (f *openFile) release() {
	f.m.mu.Lock()
	last := f.opens == 1
	f.m.mu.Unlock()
	if last {
		ctx, cancel := f.opCtx()
		defer cancel()
		f.mu.Lock()
		// What comes from now on is sent at once, unless the file was
		// opened again meanwhile (open clears it, after counting).
		f.m.mu.Lock()
		f.closing = f.opens == 1
		f.m.mu.Unlock()
		err := f.flushLocked(ctx)
		f.mu.Unlock()
		if err != nil {
			f.m.cfg.Logger.Error("writes to a closed file could not be sent and are lost", "ino", f.ino, "err", err)
		}
	}
	f.m.mu.Lock()
	f.opens--
	gone := f.opens == 0
	if gone && f.m.files[f.ino] == f {
		delete(f.m.files, f.ino)
	}
	orphan := f.orphan
	f.m.mu.Unlock()
	if gone {
		f.mu.Lock()
		f.m.writeBack.Add(-f.held) // writes that could not be sent are lost, not held
		f.held = 0
		f.mu.Unlock()
	}
	if gone && orphan {
		ctx, cancel := f.opCtx()
		defer cancel()
		if err := f.m.c.ReleaseIno(ctx, f.ino); err != nil {
			f.m.cfg.Logger.Warn("an unlinked file could not be dropped after its last close", "ino", f.ino, "err", err)
		}
	}
}

// read fills p from offset off: stored content, zeros past its end, and
// the unsent writes over both.
func (f *openFile) read(ctx context.Context, p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.known.Load()
	size := max(f.size, k.end)
	if k.exact >= 0 {
		size = k.exact
	}
	if off >= size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), size-off)]
	end := off + int64(len(p))
	stored := min(end, f.size)
	if f.cut >= 0 {
		stored = min(stored, f.cut) // a truncate waits to be sent
	}
	pos := off
	W := f.m.window
	for pos < stored {
		k := pos / W
		w, err := f.windowAt(ctx, k)
		if err != nil {
			return 0, err
		}
		to := min(stored, (k+1)*W)
		n := copy(p[pos-off:to-off], w.data[min(pos-k*W, int64(len(w.data))):])
		clear(p[pos-off+int64(n) : to-off]) // the file shrank since it was opened
		pos = to
	}
	clear(p[pos-off:])
	if f.inflight != nil {
		q := p
		if f.cut >= 0 {
			// The batch on its way is older than the truncate waiting.
			q = p[:max(0, min(int64(len(p)), f.cut-off))]
		}
		(&extents{runs: f.inflight.runs}).overlay(off, q)
	}
	f.dirty.overlay(off, p)
	if off == f.nextRead {
		// A sequential reader: fetch the next windows now, keeping one
		// slot of the cache for the window being read.
		last := (f.size + W - 1) / W
		for k := (end-1)/W + 1; k < last && k <= (end-1)/W+int64(f.m.cfg.ReadCache-2); k++ {
			f.fetch(k)
		}
	}
	f.nextRead = end
	return len(p), nil
}

// write records p at off. Once the unsent writes fill the write buffer
// they are sent in the background, after the batch before them.
func (f *openFile) write(ctx context.Context, p []byte, off int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirty.write(off, p)
	f.updateSizes()
	if f.dirty.bytes < f.m.writeBuffer {
		return nil
	}
	if err := f.settle(); err != nil {
		return err
	}
	if f.trunc >= 0 {
		// A batch with truncates goes at once (and only once the batch
		// on its way settled, since settle lets go of mu meanwhile): one
		// sent in the background would be older than the next.
		ctx, cancel := f.opCtx()
		defer cancel()
		return f.flushLocked(ctx)
	}
	j := f.take()
	f.inflight = j
	go func() {
		ctx, cancel := f.opCtx()
		defer cancel()
		a, res, err := f.send(ctx, j)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.sent(a, res, j, err)
		j.err = err
		f.inflight = nil
		f.updateSizes()
		close(j.done)
	}()
	return nil
}

// settle waits, with mu released meanwhile, until no batch is on its
// way, and returns the error of the one it waited for.
func (f *openFile) settle() error {
	for f.inflight != nil {
		j := f.inflight
		f.mu.Unlock()
		<-j.done
		f.mu.Lock()
		if j.err != nil {
			return j.err
		}
	}
	return nil
}

// flushLocked sends every unsent write, then the attribute changes that
// waited for them, and returns when the cluster has them; what could not
// be sent stays for the next try.
func (f *openFile) flushLocked(ctx context.Context) error {
	if err := f.settle(); err != nil {
		return err
	}
	b := f.take()
	var by *client.Identity // who the batch is sent as
	if id, ok := client.ActingAs(ctx); ok {
		by = &id
	}
	if (b.cut >= 0 || b.size >= 0) && b.truncBy != nil && !sameIdentity(b.truncBy, by) {
		// Truncates go as the user who made them.
		ctx, by = client.ActAs(ctx, *b.truncBy), b.truncBy
	}
	if f.pend != (client.SetAttr{}) && f.m.maxRanges > 0 && sameIdentity(f.pendBy, by) &&
		(b.bytes > 0 || b.size >= 0) && !(len(b.runs) == 1 && b.cut < 0 && b.size < 0 && b.bytes >= f.m.window) {
		// The attribute changes that waited go in the same request as
		// the writes when made by the user the batch goes as (one
		// commit, not two), unless the writes are whole chunks the
		// router should store as they arrive.
		b.attrs, b.attrsBy, f.pend, f.pendBy = f.pend, f.pendBy, client.SetAttr{}, nil
	}
	a, res, err := f.send(ctx, b)
	f.sent(a, res, b, err)
	f.updateSizes()
	if err != nil {
		return err
	}
	return f.sendAttrs(ctx)
}

// setattr sends the unsent writes, then changes the attributes.
func (f *openFile) setattr(ctx context.Context, sa client.SetAttr) (client.Attr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.flushLocked(ctx); err != nil {
		return client.Attr{}, err
	}
	epoch := f.m.namesEpoch.Load()
	a, err := f.m.c.SetAttrIno(ctx, f.ino, sa)
	if err != nil {
		return a, err
	}
	switch {
	case a.Gen == f.gen+1 && sa.Size != nil && a.Size == *sa.Size:
		// Only this truncate changed the content.
		f.cutWindows(a.Size)
	case a.Gen != f.gen || a.Size != f.size:
		f.dropWindows()
	}
	f.size, f.gen = a.Size, a.Gen
	f.noteAttr(a, epoch)
	f.updateSizes()
	return a, nil
}

// handle is one open(2) of a file.
type handle struct {
	f *openFile

	mu    sync.Mutex
	locks []heldLock // the lock sessions that took locks through it
}

func (h *handle) noteLock(l heldLock) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, have := range h.locks {
		if have == l {
			return
		}
	}
	h.locks = append(h.locks, l)
}

// dropLocks gives up the locks taken through h, at its last close. The
// kernel names the process that closes a descriptor only in the flush,
// which the node API does not pass on, so fcntl locks cannot be dropped
// at the close of one descriptor as POSIX has it: a child that closes its
// copy must not drop its parent's locks.
func (h *handle) dropLocks() {
	ml := h.f.m.locks
	if ml == nil {
		return
	}
	h.mu.Lock()
	drop := h.locks
	h.locks = nil
	h.mu.Unlock()
	for _, l := range drop {
		ml.drop(l.session, h.f.ino)
	}
}

var (
	_ fs.FileReader   = (*handle)(nil)
	_ fs.FileWriter   = (*handle)(nil)
	_ fs.FileFlusher  = (*handle)(nil)
	_ fs.FileFsyncer  = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	ctx = h.f.act(ctx)
	n, err := h.f.read(ctx, dest, off)
	if err != nil {
		return nil, h.f.m.errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	ctx = h.f.act(ctx)
	if err := h.f.write(ctx, data, off); err != nil {
		return 0, h.f.m.errno(err)
	}
	return uint32(len(data)), 0
}

// Flush runs at every close(2): close-to-open consistency means what was
// written is stored before close returns, so another host that opens
// the file next reads all of it.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	h.f.act(ctx)
	return h.sync()
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	h.f.act(ctx)
	return h.sync()
}

func (h *handle) sync() syscall.Errno {
	ctx, cancel := h.f.opCtx()
	defer cancel()
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return h.f.m.errno(h.f.flushLocked(ctx))
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.dropLocks()
	h.f.release()
	return 0
}

// orphanTTL is the lease the mount keeps the files it has open after
// their unlink under: its lock lease, or the cluster's default of a
// minute when locks are local.
func (m *fsys) orphanTTL() time.Duration {
	if m.cfg.LockTTL > 0 {
		return m.cfg.LockTTL
	}
	return time.Minute
}

// keepOrphans renews, until stop, the leases of the files this mount has
// open after their unlink: the cluster drops such a file once its lease
// runs out, so one a dead mount held open is not kept for ever. It
// renews every third of the lease, or of the minute an orphan starts
// with if that is shorter, each as the file's user (as its release is).
func (m *fsys) keepOrphans(stop <-chan struct{}) {
	ttl := m.orphanTTL()
	t := time.NewTicker(min(ttl, time.Minute) / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		m.mu.Lock()
		var held []*openFile
		for _, f := range m.files {
			if f.orphan {
				held = append(held, f)
			}
		}
		m.mu.Unlock()
		for _, f := range held {
			ctx, cancel := context.WithTimeout(f.actor(context.Background()), min(ttl, time.Minute)/3)
			err := m.c.KeepOrphanIno(ctx, f.ino, ttl)
			cancel()
			if err != nil && !errors.Is(err, client.ErrNotFound) {
				m.cfg.Logger.Warn("could not renew the lease of a file unlinked while open: the cluster drops it if this goes on", "ino", f.ino, "err", err)
			}
		}
	}
}
