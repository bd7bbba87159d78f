package store

// The file system under the store's own files (chunk files, snapshot
// files, the node ID and claim files), behind an interface so that tests
// can run the store on a MemFS and simulate a crash at any step. bbolt
// keeps meta.db on the operating system's file system whatever the FS.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"shoal/meta"
)

// FS is the part of a file system the store uses. Paths are in the host's
// syntax (filepath). Errors wrap the io/fs sentinels (fs.ErrNotExist, ...)
// like the os package's.
type FS interface {
	// Create creates or truncates the file name for reading and writing.
	Create(name string, perm fs.FileMode) (File, error)
	// CreateTemp creates a new file in dir named by pattern, whose last
	// "*" is replaced by a string no other file there has (os.CreateTemp).
	CreateTemp(dir, pattern string) (File, error)
	// Open opens the file name for reading.
	Open(name string) (File, error)
	// Rename replaces newname, if it exists, with oldname.
	Rename(oldname, newname string) error
	// Remove removes the file or empty directory name.
	Remove(name string) error
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string, perm fs.FileMode) error
	// ReadDir lists dir, sorted by name.
	ReadDir(dir string) ([]fs.DirEntry, error)
	// Stat describes the file name.
	Stat(name string) (fs.FileInfo, error)
	// Chtimes sets the access and modification times of name.
	Chtimes(name string, atime, mtime time.Time) error
	// SyncDir makes the entries of dir (names created, renamed or removed
	// in it) durable, as File.Sync does for a file's content.
	SyncDir(dir string) error
	// Statfs reports the room on the file system that holds dir.
	Statfs(dir string) (DiskSpace, error)
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Closer
	// Sync makes the content written so far durable.
	Sync() error
	Stat() (fs.FileInfo, error)
	// Name is the path the file was opened or created with.
	Name() string
}

// OSFS is the operating system's file system: the one a node runs on.
type OSFS struct{}

var _ FS = OSFS{}

// Create implements FS.
func (OSFS) Create(name string, perm fs.FileMode) (File, error) {
	return osFile(os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm))
}

// CreateTemp implements FS.
func (OSFS) CreateTemp(dir, pattern string) (File, error) {
	return osFile(os.CreateTemp(dir, pattern))
}

// Open implements FS.
func (OSFS) Open(name string) (File, error) { return osFile(os.Open(name)) }

// Rename implements FS.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

// ReadDir implements FS.
func (OSFS) ReadDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }

// Stat implements FS.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// Chtimes implements FS.
func (OSFS) Chtimes(name string, atime, mtime time.Time) error {
	return os.Chtimes(name, atime, mtime)
}

// SyncDir implements FS: on Linux a directory is made durable by an fsync
// of the directory itself.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// diskFault marks err with meta.ErrDiskFailed when it is the disk
// refusing a write: a read-only file system, an I/O error, or no room.
// The chunk store tells a full disk apart first (wrapSpace): there, no
// room means the group is full, not broken.
func diskFault(err error) error {
	if err == nil || errors.Is(err, meta.ErrDiskFailed) {
		return err
	}
	for _, e := range []syscall.Errno{syscall.EROFS, syscall.EIO, syscall.ENOSPC, syscall.EDQUOT} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", meta.ErrDiskFailed, err)
		}
	}
	return err
}

// refusesWrites returns the error with which the disk under dir refuses a
// write now (EROFS, EIO, ENOSPC, EDQUOT), or nil: it makes and removes an
// empty file there. It tells a disk fault from another failure where the
// error at hand lost its errno, as bbolt's does when the file system
// turned read-only while meta.db grew ("mmap allocate error: read-only
// file system", text). The kernel's read-only state after an ext4 error
// (emergency_ro) is not seen by access(2), hence a real write. It is best
// effort: an empty file needs no data block, so a full disk may take it.
func refusesWrites(dir string) error {
	f, err := os.CreateTemp(dir, ".write-probe-*")
	if err == nil {
		f.Close()
		err = os.Remove(f.Name())
	}
	if err != nil && errors.Is(diskFault(err), meta.ErrDiskFailed) {
		return err
	}
	return nil
}

// osFile keeps a failed open from returning a non-nil File holding a nil
// *os.File.
func osFile(f *os.File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return f, nil
}

// readFile returns the content of the file name, like os.ReadFile: one
// allocation of the size the file has, since chunks are megabytes.
func readFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := 0
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && int64(int(fi.Size())) == fi.Size() {
		size = int(fi.Size())
	}
	data, err := readDirect(f, size)
	if err != nil {
		return data, err
	}
	if data == nil {
		data = make([]byte, 0, size+1) // +1: EOF is seen without growing
	}
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return data, err
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

// mkdirAllDurable creates dir and any missing parents, like MkdirAll, and
// syncs the directory holding each one it creates: a file synced into a
// directory whose own name was never synced is lost in a crash all the
// same. A dir that exists costs one Stat, as in MkdirAll.
func mkdirAllDurable(fsys FS, dir string, perm fs.FileMode) error {
	if fi, err := fsys.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllDurable(fsys, parent, perm); err != nil {
			return err
		}
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return err
	}
	return fsys.SyncDir(parent)
}

// writeDurable replaces the file at p with data so that after a crash it
// holds either the old content or the new, never a torn write: write a
// temporary file beside it, sync it, rename it over p, sync the directory.
func writeDurable(fsys FS, p string, data []byte, perm fs.FileMode) error {
	tmp := p + ".tmp"
	f, err := fsys.Create(tmp, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, p)
	}
	if err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(p))
}
