package store

import (
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemFS is an FS held in memory that can simulate a power loss, after
// pebble's strict in-memory file system: CrashClone returns what a restart
// would find, where a file keeps only the content it had at its last
// Sync, and a directory only the entries (names created, renamed or
// removed) it had at its last SyncDir. A name whose directory was never
// synced is lost, however well its content was synced. The root directory
// always survives. MemFS renames files only, never directories.
type MemFS struct {
	mu   sync.Mutex // guards every node and open file of this MemFS
	root *memNode
	temp int   // the last suffix CreateTemp used
	size int64 // what Statfs reports as the disk's size; 0: not known
}

var _ FS = (*MemFS)(nil)

// memNode is a file or a directory, with the state a crash would keep.
type memNode struct {
	dir   bool
	perm  fs.FileMode
	mtime time.Time
	data  []byte              // a file's content
	kids  map[string]*memNode // a directory's entries

	syncedData  []byte
	syncedMtime time.Time
	syncedKids  map[string]*memNode
}

// NewMemFS returns an empty MemFS: a root directory and nothing in it.
func NewMemFS() *MemFS {
	return &MemFS{root: newMemDir(0o755)}
}

func newMemDir(perm fs.FileMode) *memNode {
	return &memNode{dir: true, perm: perm, mtime: time.Now(), kids: map[string]*memNode{}, syncedKids: map[string]*memNode{}}
}

// CrashClone returns the file system as a restart after a power loss at
// this instant would find it. The receiver is unchanged and stays usable,
// like a process that has not noticed yet.
func (m *MemFS) CrashClone() *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &MemFS{root: m.root.durable(), temp: m.temp}
}

// durable copies what of n survives a crash; in the copy all is synced.
func (n *memNode) durable() *memNode {
	if !n.dir {
		data := slices.Clone(n.syncedData)
		return &memNode{perm: n.perm, mtime: n.syncedMtime, data: data, syncedData: data, syncedMtime: n.syncedMtime}
	}
	c := &memNode{dir: true, perm: n.perm, mtime: n.mtime, kids: map[string]*memNode{}}
	for name, k := range n.syncedKids {
		c.kids[name] = k.durable()
	}
	c.syncedKids = maps.Clone(c.kids)
	return c
}

// split turns a path into its names below the root.
func split(name string) []string {
	name = strings.Trim(filepath.ToSlash(filepath.Clean(name)), "/")
	if name == "" || name == "." {
		return nil
	}
	return strings.Split(name, "/")
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// lookupLocked finds the node at name.
func (m *MemFS) lookupLocked(op, name string) (*memNode, error) {
	n := m.root
	for _, part := range split(name) {
		if !n.dir {
			return nil, pathErr(op, name, syscall.ENOTDIR)
		}
		k, ok := n.kids[part]
		if !ok {
			return nil, pathErr(op, name, syscall.ENOENT)
		}
		n = k
	}
	return n, nil
}

// parentLocked finds the directory that holds (or would hold) name, and
// name's last element.
func (m *MemFS) parentLocked(op, name string) (*memNode, string, error) {
	parts := split(name)
	if len(parts) == 0 {
		return nil, "", pathErr(op, name, syscall.EINVAL) // the root
	}
	dir, err := m.lookupLocked(op, filepath.Dir(filepath.Clean(name)))
	if err != nil {
		return nil, "", err
	}
	if !dir.dir {
		return nil, "", pathErr(op, name, syscall.ENOTDIR)
	}
	return dir, parts[len(parts)-1], nil
}

// Create implements FS.
func (m *MemFS) Create(name string, perm fs.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("open", name)
	if err != nil {
		return nil, err
	}
	n, ok := dir.kids[base]
	switch {
	case ok && n.dir:
		return nil, pathErr("open", name, syscall.EISDIR)
	case ok:
		n.data, n.mtime = nil, time.Now()
	default:
		n = &memNode{perm: perm.Perm(), mtime: time.Now()}
		dir.kids[base] = n
	}
	return &memFile{fs: m, n: n, name: name, write: true}, nil
}

// CreateTemp implements FS.
func (m *MemFS) CreateTemp(dir, pattern string) (File, error) {
	if strings.ContainsRune(pattern, filepath.Separator) {
		return nil, pathErr("createtemp", pattern, syscall.EINVAL)
	}
	prefix, suffix := pattern, ""
	if i := strings.LastIndex(pattern, "*"); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.lookupLocked("createtemp", dir)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, pathErr("createtemp", dir, syscall.ENOTDIR)
	}
	for {
		m.temp++
		base := prefix + strconv.Itoa(m.temp) + suffix
		if _, taken := d.kids[base]; taken {
			continue
		}
		n := &memNode{perm: 0o600, mtime: time.Now()}
		d.kids[base] = n
		return &memFile{fs: m, n: n, name: filepath.Join(dir, base), write: true}, nil
	}
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("open", name)
	if err != nil {
		return nil, err
	}
	return &memFile{fs: m, n: n, name: name}, nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	from, oldBase, err := m.parentLocked("rename", oldname)
	if err != nil {
		return err
	}
	to, newBase, err := m.parentLocked("rename", newname)
	if err != nil {
		return err
	}
	n, ok := from.kids[oldBase]
	switch {
	case !ok:
		return pathErr("rename", oldname, syscall.ENOENT)
	case n.dir:
		return pathErr("rename", oldname, syscall.EINVAL) // see MemFS
	}
	if old, ok := to.kids[newBase]; ok && old.dir {
		return pathErr("rename", newname, syscall.EISDIR)
	}
	delete(from.kids, oldBase)
	to.kids[newBase] = n
	return nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("remove", name)
	if err != nil {
		return err
	}
	n, ok := dir.kids[base]
	switch {
	case !ok:
		return pathErr("remove", name, syscall.ENOENT)
	case n.dir && len(n.kids) > 0:
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(dir.kids, base)
	return nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string, perm fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.root
	for _, part := range split(dir) {
		k, ok := n.kids[part]
		if !ok {
			k = newMemDir(perm.Perm())
			n.kids[part] = k
		}
		if !k.dir {
			return pathErr("mkdir", dir, syscall.ENOTDIR)
		}
		n = k
	}
	return nil
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.lookupLocked("open", dir)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, pathErr("readdirent", dir, syscall.ENOTDIR)
	}
	var out []fs.DirEntry
	for _, name := range slices.Sorted(maps.Keys(d.kids)) {
		out = append(out, fs.FileInfoToDirEntry(d.kids[name].info(name)))
	}
	return out, nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("stat", name)
	if err != nil {
		return nil, err
	}
	return n.info(filepath.Base(name)), nil
}

// Chtimes implements FS.
func (m *MemFS) Chtimes(name string, atime, mtime time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("chtimes", name)
	if err != nil {
		return err
	}
	n.mtime = mtime
	return nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.lookupLocked("open", dir)
	if err != nil {
		return err
	}
	if !d.dir {
		return pathErr("sync", dir, syscall.ENOTDIR)
	}
	d.syncedKids = maps.Clone(d.kids)
	return nil
}

// SetSize makes the file system bytes large, as Statfs reports it: its
// free space is then what its files' content leaves (writes are not
// refused; a test checks that the store refuses them first). 0 makes the
// size unknown again.
func (m *MemFS) SetSize(bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.size = bytes
}

// Statfs implements FS.
func (m *MemFS) Statfs(dir string) (DiskSpace, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.lookupLocked("statfs", dir); err != nil {
		return DiskSpace{}, err
	}
	if m.size == 0 {
		return DiskSpace{}, nil
	}
	return DiskSpace{Size: m.size, Free: max(m.size-m.root.bytes(), 0)}, nil
}

// bytes is the content held under n.
func (n *memNode) bytes() int64 {
	b := int64(len(n.data))
	for _, k := range n.kids {
		b += k.bytes()
	}
	return b
}

// memInfo describes a node as it was when asked.
type memInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (n *memNode) info(name string) memInfo {
	mode := n.perm
	if n.dir {
		mode |= fs.ModeDir
	}
	return memInfo{name: name, size: int64(len(n.data)), mode: mode, mtime: n.mtime}
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return i.mode }
func (i memInfo) ModTime() time.Time { return i.mtime }
func (i memInfo) IsDir() bool        { return i.mode.IsDir() }
func (i memInfo) Sys() any           { return nil }

// memFile is an open file of a MemFS.
type memFile struct {
	fs     *MemFS
	n      *memNode
	name   string
	off    int64 // of the next Read or Write
	write  bool
	closed bool
}

func (f *memFile) check(op string, write bool) error {
	switch {
	case f.closed:
		return pathErr(op, f.name, fs.ErrClosed)
	case f.n.dir:
		return pathErr(op, f.name, syscall.EISDIR)
	case write && !f.write:
		return pathErr(op, f.name, syscall.EBADF)
	}
	return nil
}

func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if f.off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[f.off:])
	f.off += int64(k)
	return k, nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("readat", f.name, syscall.EINVAL)
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	end := f.off + int64(len(p))
	if end > int64(len(f.n.data)) {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[f.off:], p)
	f.off = end
	f.n.mtime = time.Now()
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("sync", false); err != nil {
		return err
	}
	f.n.syncedData = slices.Clone(f.n.data)
	f.n.syncedMtime = f.n.mtime
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return nil, pathErr("stat", f.name, fs.ErrClosed)
	}
	return f.n.info(filepath.Base(f.name)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Name() string { return f.name }
