package mount

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"shoal/client"
)

// fsys is the state one mount shares between its inodes.
type fsys struct {
	cfg      Config
	c        Client
	window   int64 // read-cache window: the router's chunk size
	maxWrite int   // most bytes one WriteAt may carry
	// maxRanges is the most writes one PatchIno may carry; 0 with a
	// router without it, where each write is a WriteAt and each truncate
	// of an open file is sent at once.
	maxRanges   int
	maxFileSize int64 // the router's largest file; 0: not known
	writeBuffer int64
	groups      groupsCache // of the processes the mount acts for
	// writeBack is the bytes programs wrote that are not stored yet, over
	// all open files (openFile.held).
	writeBack atomic.Int64
	// namesEpoch counts the links, unlinks and renames made through this
	// mount: each may change the links or ctime of an open file without a
	// request on it, so attributes noted before one are not reused
	// (openFile.recentAttr).
	namesEpoch atomic.Uint64

	mu sync.Mutex // guards files and dirs
	// files holds the state of every inode open in this mount, by inode
	// number: its unsent writes and read cache. Attributes given to the
	// kernel include the unsent writes' size, or it would cut the file.
	files map[uint64]*openFile
	// dirs holds recent listings, so the lookups the kernel makes for
	// each entry of a listing (readdirplus) need no request of their own.
	// Any change made through this mount drops them all.
	dirs map[uint64]*listing
	// dirAttrs holds the attributes of directories as the last change
	// of names through this mount answered them (see changing), so the
	// stat the kernel makes of a directory after each change in it needs
	// no request of its own. Any change made through this mount drops
	// them all and notes its own.
	dirAttrs map[uint64]seenAttr
	// changes counts the changes made through this mount as they begin
	// and end: a change notes its directories, and an open its answer,
	// only if none began or ended while it was on its way (whose effect
	// its answer may lack).
	changes uint64
	// locks is the cluster's file locks this mount's sessions hold; nil
	// when locks are local to this host (locks.go).
	locks *mountLocks
}

type listing struct {
	entries map[string]client.Attr
	expires time.Time
}

// Mounted is a mounted cluster.
type Mounted struct {
	server *fuse.Server
	dir    string
}

// Mount mounts the cluster cfg.Client reaches at dir and serves it until
// Unmount, or until the file system is unmounted from outside.
func Mount(ctx context.Context, dir string, cfg Config) (*Mounted, error) {
	m, err := newFsys(ctx, dir, cfg)
	if err != nil {
		return nil, err
	}
	root := &node{m: m, ino: rootIno}
	attr, entry, negative := cfg.AttrTimeout, cfg.EntryTimeout, cfg.NegativeTimeout
	fuseLog := log.New(slogWriter{cfg.Logger}, "", 0)
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther: cfg.AllowOther,
			FsName:     cfg.Name,
			Name:       "shoal",
			// The kernel checks modes and owners against the attributes
			// given to it, as on a local disk.
			Options:       []string{"default_permissions"},
			MaxWrite:      1 << 20,
			MaxReadAhead:  1 << 20,
			DisableXAttrs: true,
			EnableLocks:   m.locks != nil,
			Debug:         cfg.Debug,
			Logger:        fuseLog,
		},
		AttrTimeout:     &attr,
		EntryTimeout:    &entry,
		NegativeTimeout: &negative,
		RootStableAttr:  &fs.StableAttr{Ino: rootIno, Mode: syscall.S_IFDIR},
		// Mode 0000 is a mode like any other (the library would show
		// it as 0644 or 0755, opening the inode to everyone).
		NullPermissions: true,
		Logger:          fuseLog,
	}
	var raw fuse.RawFileSystem = fs.NewNodeFS(root, opts)
	if cfg.Metrics != nil {
		x := newMetrics(m)
		for i, c := range x.all() {
			if err := cfg.Metrics.Register(c); err != nil {
				for _, done := range x.all()[:i] {
					cfg.Metrics.Unregister(done)
				}
				return nil, fmt.Errorf("mount %s: register its metrics: %w", dir, err)
			}
		}
		defer func() {
			if raw == nil { // not mounted
				for _, c := range x.all() {
					cfg.Metrics.Unregister(c)
				}
			}
		}()
		raw = metered{RawFileSystem: raw, x: x}
	}
	server, err := fuse.NewServer(raw, dir, &opts.MountOptions)
	if err == nil {
		go server.Serve()
		err = server.WaitMount()
	}
	if m.locks != nil {
		if err == nil {
			go func() { server.Wait(); m.locks.close() }()
		} else {
			m.locks.close()
		}
	}
	if err == nil {
		stop := make(chan struct{})
		go m.keepOrphans(stop)
		go func() { server.Wait(); close(stop) }()
	}
	if err != nil {
		raw = nil
		return nil, fmt.Errorf("mount %s: %w (is /dev/fuse there and fusermount3 installed? is the directory empty and not mounted already?)", dir, err)
	}
	return &Mounted{server: server, dir: dir}, nil
}

// newFsys returns the state of a mount of the cluster cfg.Client reaches
// at dir, sized by the router's chunking.
func newFsys(ctx context.Context, dir string, cfg Config) (*fsys, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := cfg.Client.Statfs(ctx)
	if err != nil {
		return nil, fmt.Errorf("mount %s: ask the router %s for the cluster's chunk size: %w", dir, cfg.Client.Router(), err)
	}
	if st.ChunkSize <= 0 || st.MaxWrite <= 0 {
		return nil, fmt.Errorf("mount %s: the router %s answered chunk size %d and write limit %d: is it a Shoal router of this version?",
			dir, cfg.Client.Router(), st.ChunkSize, st.MaxWrite)
	}
	m := &fsys{
		cfg: cfg, c: cfg.Client, window: int64(st.ChunkSize), maxWrite: st.MaxWrite, maxRanges: min(st.MaxRanges, client.MaxPatchWrites), maxFileSize: st.MaxFileSize,
		writeBuffer: cfg.WriteBuffer, files: map[uint64]*openFile{}, dirs: map[uint64]*listing{},
		dirAttrs: map[uint64]seenAttr{},
	}
	if m.writeBuffer == 0 {
		m.writeBuffer = 4 * m.window
	}
	if l, ok := cfg.Client.(Locker); ok && cfg.LockTTL > 0 {
		m.locks = newMountLocks(l, cfg.LockTTL, cfg.Logger.Warn)
	}
	return m, nil
}

// Wait blocks until the file system is unmounted.
func (mt *Mounted) Wait() { mt.server.Wait() }

// Unmount unmounts the file system; it fails while a program uses it.
func (mt *Mounted) Unmount() error {
	if err := mt.server.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w (close the files and leave the directories open under it, or use shoal umount --lazy)", mt.dir, err)
	}
	return nil
}

// rootIno is the root directory's inode number in the cluster.
const rootIno = 1

// attrChanged drops the cached listings and what a change of names
// noted of the inode ino: this mount changed its attributes. (A change
// of names or an open on its way meanwhile notes nothing: see changing
// and open.) With dropNote, what an open of ino noted goes too: the
// change was made without the open file, and the open's answer may
// predate it.
func (m *fsys) attrChanged(ino uint64, dropNote bool) {
	m.mu.Lock()
	m.changes++
	clear(m.dirs)
	delete(m.dirAttrs, ino)
	if f := m.files[ino]; f != nil && dropNote {
		f.latest.Store(nil)
	}
	m.mu.Unlock()
}

// contentChanged drops the cached listings: this mount changed a file's
// content (and so its size and times in a listing), which leaves every
// directory's attributes as they were.
func (m *fsys) contentChanged() {
	m.mu.Lock()
	clear(m.dirs)
	m.mu.Unlock()
}

// change is a change of names on its way (see changing).
type change struct {
	m     *fsys
	began uint64
	dirs  []client.Attr
}

// changing begins a change of names (create, mkdir, link, unlink,
// rename...): its requests go with the returned context, which asks the
// cluster for the directories it changes, and end notes them.
func (m *fsys) changing(ctx context.Context) (context.Context, *change) {
	c := &change{m: m}
	m.mu.Lock()
	m.changes++
	c.began = m.changes
	m.mu.Unlock()
	return client.NoteDirs(ctx, &c.dirs), c
}

// end ends the change: it drops the cached listings and directory
// attributes, and then, unless another change began or ended meanwhile,
// the directories it changed, as its answer gave them, serve stats for
// the attribute timeout. A change that failed has none.
func (c *change) end() {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	alone := m.changes == c.began
	m.changes++
	clear(m.dirs)
	clear(m.dirAttrs)
	if !alone {
		return
	}
	now := time.Now()
	for _, d := range c.dirs {
		m.dirAttrs[d.Ino] = seenAttr{a: d, at: now}
	}
}

// dirAttr returns the attributes of the directory ino a change through
// this mount answered, if that was within the attribute timeout.
func (m *fsys) dirAttr(ino uint64) (client.Attr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.dirAttrs[ino]
	if !ok || time.Since(s.at) >= m.cfg.AttrTimeout {
		return client.Attr{}, false
	}
	return s.a, true
}

// listed caches the entries of dir.
func (m *fsys) listed(dir uint64, entries []client.DirEntry) {
	l := &listing{entries: make(map[string]client.Attr, len(entries)), expires: time.Now().Add(m.cfg.AttrTimeout)}
	for _, e := range entries {
		l.entries[e.Name] = e.Attr
	}
	m.mu.Lock()
	m.dirs[dir] = l
	m.mu.Unlock()
}

// lookup returns the attributes of name in dir, from a fresh listing if
// there is one.
func (m *fsys) lookup(ctx context.Context, dir uint64, name string) (client.Attr, error) {
	m.mu.Lock()
	l := m.dirs[dir]
	if l != nil && time.Now().After(l.expires) {
		delete(m.dirs, dir)
		l = nil
	}
	var a client.Attr
	ok := false
	if l != nil {
		a, ok = l.entries[name]
	}
	m.mu.Unlock()
	if ok {
		return a, nil
	}
	return m.c.LookupIn(ctx, dir, name)
}

// shown returns a as the kernel is told it, for a file open in this
// mount: its size is more when the mount holds unsent writes past its
// end, and its mode, owner and times have the changes not sent yet (see
// openFile). When this mount knows a newer generation of the content, a
// was answered before one of its writes landed (Gen only grows), and
// that write no longer counts as unsent: the size is the newer one, or
// the kernel would cut the file.
func (m *fsys) shown(a client.Attr) client.Attr {
	m.mu.Lock()
	f := m.files[a.Ino]
	m.mu.Unlock()
	if f == nil {
		return a
	}
	k := f.known.Load()
	if a.Gen < k.gen {
		a.Size = k.size
	}
	a.Size = max(a.Size, k.end)
	if k.exact >= 0 {
		a.Size = k.exact
	}
	p := k.pend
	if p == nil {
		return a
	}
	if p.Mode != nil {
		a.Mode = *p.Mode
	}
	if p.Uid != nil {
		a.Uid = *p.Uid
	}
	if p.Gid != nil {
		a.Gid = *p.Gid
	}
	at := func(t *time.Time) time.Time {
		if t.IsZero() {
			return k.pendAt // "now": the cluster sets its own when it gets it
		}
		return *t
	}
	if p.ATime != nil {
		a.ATime = at(p.ATime)
	}
	if p.MTime != nil {
		a.MTime = at(p.MTime)
	}
	a.CTime = k.pendAt
	return a
}

// fill sets out from a, as this mount shows it: with its unsent writes
// and attribute changes.
func (m *fsys) fill(out *fuse.Attr, a client.Attr) {
	if a.Type == client.TypeFile {
		a = m.shown(a)
	}
	out.Ino = a.Ino
	out.Size = uint64(a.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = uint32(min(m.window, 1<<20))
	out.Mode = typeBits(a.Type) | a.Mode&0o7777
	out.Nlink = a.Nlink
	out.Owner = fuse.Owner{Uid: a.Uid, Gid: a.Gid}
	out.Rdev = uint32(a.Rdev)
	out.SetTimes(&a.ATime, &a.MTime, &a.CTime)
}

// fileTypes are the kernel's type bits of each inode type but a regular
// file's (S_IFREG, the rest).
var fileTypes = map[string]uint32{
	client.TypeDir: syscall.S_IFDIR, client.TypeSymlink: syscall.S_IFLNK,
	client.TypeFIFO: syscall.S_IFIFO, client.TypeSocket: syscall.S_IFSOCK,
	client.TypeCharDev: syscall.S_IFCHR, client.TypeBlockDev: syscall.S_IFBLK,
}

func typeBits(t string) uint32 {
	if bits, ok := fileTypes[t]; ok {
		return bits
	}
	return syscall.S_IFREG
}

// nodeType is the special file type of a mknod(2) mode; "" for any other.
func nodeType(mode uint32) string {
	for t, bits := range fileTypes {
		if mode&syscall.S_IFMT == bits && t != client.TypeDir && t != client.TypeSymlink {
			return t
		}
	}
	return ""
}

// uninterrupted keeps a request going when the kernel interrupts it. A
// signal to the calling thread interrupts its FUSE request, and Go
// programs get SIGURG all the time: giving up would fail their calls with
// EINTR and leave changes half-known. A killed program does not wait for
// the answer anyway, and every request has its own timeouts.
func uninterrupted(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// as is uninterrupted, and when the mount acts for its users (Config.ActAs)
// the request goes out as the calling process's user: its uid, gid and
// supplementary groups, which the cluster checks permissions against.
func (m *fsys) as(ctx context.Context) context.Context {
	out := uninterrupted(ctx)
	if id, ok := m.caller(ctx); ok {
		out = client.ActAs(out, id)
	}
	return out
}

// caller is the identity of the process behind a FUSE request, when the
// mount acts for its users.
func (m *fsys) caller(ctx context.Context) (client.Identity, bool) {
	if !m.cfg.ActAs {
		return client.Identity{}, false
	}
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return client.Identity{}, false
	}
	return client.Identity{Uid: c.Uid, Gid: c.Gid, Groups: m.groups.of(c.Pid, time.Now())}, true
}

// groupsCache remembers each process's supplementary groups for a moment:
// a program reading a file sequentially makes a request per 128 KiB, and
// rereading /proc for each would cost more than the request.
type groupsCache struct {
	mu    sync.Mutex
	byPid map[uint32]cachedGroups
}

type cachedGroups struct {
	groups []uint32
	read   time.Time
}

// groupsTTL is how long a process's groups are reused: setgroups(2) by a
// running program is rare, and takes effect here within it (as does a pid
// reused by another process within it: the kernel, which checks modes
// first, still sees the right groups).
const groupsTTL = time.Second

// maxCachedPids bounds the cache; past it, it starts again.
const maxCachedPids = 1024

func (g *groupsCache) of(pid uint32, now time.Time) []uint32 {
	g.mu.Lock()
	c, ok := g.byPid[pid]
	g.mu.Unlock()
	if ok && now.Sub(c.read) < groupsTTL {
		return c.groups
	}
	groups := procGroups(pid)
	g.mu.Lock()
	if g.byPid == nil || len(g.byPid) >= maxCachedPids {
		g.byPid = map[uint32]cachedGroups{}
	}
	g.byPid[pid] = cachedGroups{groups: groups, read: now}
	g.mu.Unlock()
	return groups
}

// procGroups reads the supplementary groups of process pid from
// /proc/PID/status: FUSE passes only the uid and gid, and the kernel,
// which checks modes here first (default_permissions), counts them too.
func procGroups(pid uint32) []uint32 {
	if pid == 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return nil // the process is gone: its request goes as uid and gid alone
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Groups:")
		if !ok {
			continue
		}
		var gs []uint32
		for _, f := range strings.Fields(rest) {
			if g, err := strconv.ParseUint(f, 10, 32); err == nil {
				gs = append(gs, uint32(g))
			}
		}
		return gs
	}
	return nil
}

// opCtx bounds work that must finish even if the program that caused it
// was interrupted (sending unsent writes on close): the client's own
// timeouts bound each request inside it.
func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Minute)
}

// slogWriter sends go-fuse's log lines to the mount's logger.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Info("fuse", "msg", string(p))
	return len(p), nil
}
