package store

import (
	"io/fs"
	"sync"
	"time"
)

// FailFS is an FS whose writes fail on demand, as a disk's do when its
// file system turns read-only, fills up or breaks (after pebble's
// error-injecting vfs): tests of how a node copes run it under their
// stores. Reads go on working, as on a read-only file system.
//
// A DB opened on a FailFS (OpenOn) refuses the writes of its meta.db too:
// bbolt writes that file past the FS, but it lives on the same disk.
type FailFS struct {
	// FS holds the files; for a DB it must reach the operating system's
	// (OSFS), as bbolt opens its files by path.
	FS

	mu   sync.Mutex
	err  error // what every write fails with; nil: none fails
	free int64 // what Statfs reports free; negative: what the disk says
}

var _ FS = (*FailFS)(nil)

// NewFailFS returns a FailFS over fsys that fails nothing yet.
func NewFailFS(fsys FS) *FailFS { return &FailFS{FS: fsys, free: -1} }

// SetFree makes Statfs report bytes free, as on a disk that has filled up
// to there (writes still go through: a test checks that the store stops
// first); a negative count reports the disk's own figure again.
func (f *FailFS) SetFree(bytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.free = bytes
}

// Statfs implements FS.
func (f *FailFS) Statfs(dir string) (DiskSpace, error) {
	d, err := f.FS.Statfs(dir)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && f.free >= 0 {
		d.Free = min(f.free, d.Size)
	}
	return d, err
}

// Fail makes every write from now on fail with err (syscall.EROFS, say),
// inside an *fs.PathError as the os package reports it; nil lets writes
// through again.
func (f *FailFS) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// refusal is the error a write of name fails with now, nil if none.
func (f *FailFS) refusal(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: name, Err: f.err}
}

func (f *FailFS) file(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &failFile{File: file, fs: f}, nil
}

// Create implements FS.
func (f *FailFS) Create(name string, perm fs.FileMode) (File, error) {
	if err := f.refusal("open", name); err != nil {
		return nil, err
	}
	return f.file(f.FS.Create(name, perm))
}

// CreateTemp implements FS.
func (f *FailFS) CreateTemp(dir, pattern string) (File, error) {
	if err := f.refusal("createtemp", dir); err != nil {
		return nil, err
	}
	return f.file(f.FS.CreateTemp(dir, pattern))
}

// Open implements FS.
func (f *FailFS) Open(name string) (File, error) { return f.file(f.FS.Open(name)) }

// Rename implements FS.
func (f *FailFS) Rename(oldname, newname string) error {
	if err := f.refusal("rename", newname); err != nil {
		return err
	}
	return f.FS.Rename(oldname, newname)
}

// Remove implements FS.
func (f *FailFS) Remove(name string) error {
	if err := f.refusal("remove", name); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

// MkdirAll implements FS: like os.MkdirAll, it writes nothing, and so
// cannot fail, when dir exists.
func (f *FailFS) MkdirAll(dir string, perm fs.FileMode) error {
	if fi, err := f.FS.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := f.refusal("mkdir", dir); err != nil {
		return err
	}
	return f.FS.MkdirAll(dir, perm)
}

// Chtimes implements FS.
func (f *FailFS) Chtimes(name string, atime, mtime time.Time) error {
	if err := f.refusal("chtimes", name); err != nil {
		return err
	}
	return f.FS.Chtimes(name, atime, mtime)
}

// SyncDir implements FS.
func (f *FailFS) SyncDir(dir string) error {
	if err := f.refusal("sync", dir); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

// failFile is a file of a FailFS: opened before the writes began to
// fail, it fails them all the same.
type failFile struct {
	File
	fs *FailFS
}

func (f *failFile) Write(p []byte) (int, error) {
	if err := f.fs.refusal("write", f.Name()); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *failFile) Sync() error {
	if err := f.fs.refusal("sync", f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

// refusedWrite is the error a write to name on fsys fails with now, when
// fsys is a FailFS; nil otherwise.
func refusedWrite(fsys FS, name string) error {
	if f, ok := fsys.(*FailFS); ok {
		return f.refusal("write", name)
	}
	return nil
}
