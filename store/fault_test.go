package store

import (
	"errors"
	"io/fs"
	"maps"
	"time"
)

// faultFS runs hook before every operation on a MemFS or a file opened
// through it; an error from hook fails the operation instead.
type faultFS struct {
	mem  *MemFS
	hook func(op string) error
}

var _ FS = (*faultFS)(nil)

func (f *faultFS) file(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, hook: f.hook}, nil
}

func (f *faultFS) Create(name string, perm fs.FileMode) (File, error) {
	if err := f.hook("create"); err != nil {
		return nil, err
	}
	return f.file(f.mem.Create(name, perm))
}

func (f *faultFS) CreateTemp(dir, pattern string) (File, error) {
	if err := f.hook("createtemp"); err != nil {
		return nil, err
	}
	return f.file(f.mem.CreateTemp(dir, pattern))
}

func (f *faultFS) Open(name string) (File, error) {
	if err := f.hook("open"); err != nil {
		return nil, err
	}
	return f.file(f.mem.Open(name))
}

func (f *faultFS) Rename(oldname, newname string) error {
	if err := f.hook("rename"); err != nil {
		return err
	}
	return f.mem.Rename(oldname, newname)
}

func (f *faultFS) Remove(name string) error {
	if err := f.hook("remove"); err != nil {
		return err
	}
	return f.mem.Remove(name)
}

func (f *faultFS) MkdirAll(dir string, perm fs.FileMode) error {
	if err := f.hook("mkdirall"); err != nil {
		return err
	}
	return f.mem.MkdirAll(dir, perm)
}

func (f *faultFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	if err := f.hook("readdir"); err != nil {
		return nil, err
	}
	return f.mem.ReadDir(dir)
}

// Statfs writes nothing, so no fault or crash before it differs from one
// before the next operation: it runs no hook.
func (f *faultFS) Statfs(dir string) (DiskSpace, error) { return f.mem.Statfs(dir) }

func (f *faultFS) Stat(name string) (fs.FileInfo, error) {
	if err := f.hook("stat"); err != nil {
		return nil, err
	}
	return f.mem.Stat(name)
}

func (f *faultFS) Chtimes(name string, atime, mtime time.Time) error {
	if err := f.hook("chtimes"); err != nil {
		return err
	}
	return f.mem.Chtimes(name, atime, mtime)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.hook("syncdir"); err != nil {
		return err
	}
	return f.mem.SyncDir(dir)
}

type faultFile struct {
	File
	hook func(op string) error
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.hook("write"); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if err := f.hook("sync"); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Close() error {
	if err := f.hook("close"); err != nil {
		f.File.Close() // the descriptor is gone whatever close says
		return err
	}
	return f.File.Close()
}

var errCrashed = errors.New("the machine crashed")

// crashPoint, as a faultFS hook, simulates a power loss just before the
// at-th operation once armed, and from then on fails every operation, as
// if the process were gone. It keeps two images of what a restart finds:
// image, where only what was synced survives (MemFS), and named, where
// every directory entry survives too but file content still only as far
// as it was synced (a file system that commits names in its journal but
// not data: a rename may outlive the content it points to).
type crashPoint struct {
	mem          *MemFS
	at           int // 0: not armed
	ops          []string
	image, named *MemFS
}

func (c *crashPoint) hook(op string) error {
	if c.at == 0 {
		return nil
	}
	c.ops = append(c.ops, op)
	if len(c.ops) == c.at {
		c.image, c.named = c.mem.CrashClone(), namedImage(c.mem)
	}
	if c.image != nil {
		return errCrashed
	}
	return nil
}

// namedImage is what a restart after a power loss finds on m if every
// directory entry survives, but file content only as far as it was synced.
func namedImage(m *MemFS) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	var image func(n *memNode) *memNode
	image = func(n *memNode) *memNode {
		if !n.dir {
			return n.durable()
		}
		c := &memNode{dir: true, perm: n.perm, mtime: n.mtime, kids: map[string]*memNode{}}
		for name, k := range n.kids {
			c.kids[name] = image(k)
		}
		c.syncedKids = maps.Clone(c.kids)
		return c
	}
	return &MemFS{root: image(m.root), temp: m.temp}
}
