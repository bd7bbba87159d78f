package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// FS is a directory tree of the cluster as an io/fs file system: it
// implements fs.FS, fs.StatFS, fs.ReadDirFS and fs.ReadFileFS, so
// fs.WalkDir, fs.Glob, http.FileServer(http.FS(...)) and
// template.ParseFS work on the cluster. Names are io/fs's: slash
// separated, relative to the root, "." for the root itself. Files open
// for reading (File), through the client's cache.
type FS struct {
	c    *Client
	ctx  context.Context
	root string
}

// FS returns the tree under root as an io/fs file system whose calls
// run under ctx.
func (c *Client) FS(ctx context.Context, root string) *FS {
	return &FS{c: c, ctx: ctx, root: path.Clean(absPath(root))}
}

var (
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.SubFS      = (*FS)(nil)
)

func (f *FS) path(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return path.Join(f.root, name), nil
}

// rename puts the io/fs name back in an error about the cluster's path.
func (f *FS) rename(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return err
}

// Open opens name for reading.
func (f *FS) Open(name string) (fs.File, error) {
	p, err := f.path("open", name)
	if err != nil {
		return nil, err
	}
	file, err := f.c.Open(f.ctx, p)
	if err != nil {
		return nil, f.rename(name, err)
	}
	return file, nil
}

// Stat returns name's attributes, without opening it.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	p, err := f.path("stat", name)
	if err != nil {
		return nil, err
	}
	st, err := f.c.Stat(f.ctx, p)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fsError(err)}
	}
	return fileInfo{name: path.Base(p), a: st.Attr}, nil
}

// ReadDir lists the directory name, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	d := file.(*File)
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, f.rename(name, err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// ReadFile reads the whole file name.
func (f *FS) ReadFile(name string) ([]byte, error) {
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	d := file.(*File)
	if d.typ == "dir" {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w: it is a directory", ErrIsDir)}
	}
	buf := make([]byte, d.size)
	if _, err := io.ReadFull(d, buf); err != nil {
		return nil, f.rename(name, err)
	}
	return buf, nil
}

// Sub returns the tree under dir.
func (f *FS) Sub(dir string) (fs.FS, error) {
	p, err := f.path("sub", dir)
	if err != nil {
		return nil, err
	}
	return &FS{c: f.c, ctx: f.ctx, root: p}, nil
}
