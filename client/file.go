package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"shoal/api"
)

// ErrChanged: the file was replaced or changed by someone else since it
// was opened, and the version a read needs is gone: open it again. A
// File reads the version it opened (close-to-open, as NFS and the mount
// do) and never splices two.
var ErrChanged = errors.New("file changed since it was opened")

// File is an open file or directory of the cluster, used like an
// *os.File: Read, ReadAt, Write, WriteAt, Seek, Truncate, Stat, Sync,
// ReadDir and Close. Changes are kept in memory and written to the
// cluster by Sync and Close (and whenever more than 32 MiB are waiting),
// as whole ranges, so a program writing a file in small pieces sends a
// few requests; another client sees them once they are written
// (close-to-open). A File is safe for concurrent use; it is bound to its
// inode, so a rename meanwhile does not move its reads or writes.
type File struct {
	c    *Client
	ctx  context.Context
	name string
	flag int

	mu     sync.Mutex
	closed bool
	ino    uint64
	typ    string
	etag   string // the version reads come from ("" for an empty file never written)
	remote int64  // the size of that version
	size   int64  // the size as this File sees it
	off    int64
	first  []byte // block 0, as the open fetched it
	// ahead holds blocks fetched ahead of a sequential reader when the
	// client keeps no cache; last is the block read last.
	ahead map[int64][]byte
	last  int64

	// A writable file's changes not yet written: dirty ranges (sorted,
	// apart, inside [0, size)) over the first base bytes of the remote
	// version (less than remote after a truncation).
	dirty      []extent
	dirtyBytes int64
	base       int64
	resized    bool

	// A directory's entries, read in pages.
	entries []DirEntry
	next    string
	more    bool
	pos     int
}

type extent struct {
	off  int64
	data []byte
}

// flushAt is how many changed bytes a File keeps before it writes them,
// and maxDirty how many it keeps at most while writing them fails.
const (
	flushAt  = 32 << 20
	maxDirty = 4 * flushAt
)

// maxPatch bounds one write request (the router takes 64 MiB).
const maxPatch = 32 << 20

// Open opens the file or directory at name for reading.
func (c *Client) Open(ctx context.Context, name string) (*File, error) {
	return c.OpenFile(ctx, name, os.O_RDONLY, 0)
}

// Create creates or truncates the file at name, as os.Create does (mode
// 0666, which the cluster keeps as given: it has no umask).
func (c *Client) Create(ctx context.Context, name string) (*File, error) {
	return c.OpenFile(ctx, name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens name with the flags of os.OpenFile: O_RDONLY, O_WRONLY
// or O_RDWR, and O_CREATE (with perm; O_EXCL: fail if it exists),
// O_TRUNC and O_APPEND. Errors are *fs.PathError wrapping the client's
// errors (errors.Is(err, fs.ErrNotExist) and ErrNotFound both hold).
func (c *Client) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (*File, error) {
	name = path.Clean(absPath(name))
	f, err := c.openFile(ctx, name, flag, perm)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fsError(err)}
	}
	return f, nil
}

func (c *Client) openFile(ctx context.Context, name string, flag int, perm fs.FileMode) (*File, error) {
	f := &File{c: c, ctx: ctx, name: name, flag: flag}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	switch {
	case flag&os.O_CREATE != 0:
		q := url.Values{"op": {"create"}, "mode": {fmt.Sprintf("%04o", uint32(perm.Perm())|modeBits(perm))}}
		if flag&os.O_EXCL != 0 {
			q.Set("excl", "1")
		}
		var st Stat
		if err := c.call(ctx, http.MethodPost, name, q, &st); err != nil {
			return nil, err
		}
		f.setStat(st)
	case !writable:
		if err := f.openRead(); err != nil {
			return nil, err
		}
	default:
		st, err := c.Stat(ctx, name)
		if err != nil {
			return nil, err
		}
		f.setStat(st)
	}
	if writable && f.typ == api.TypeDir {
		return nil, fmt.Errorf("%w: a directory cannot be opened for writing", ErrIsDir)
	}
	if writable && flag&os.O_TRUNC != 0 && f.size > 0 {
		if err := f.Truncate(0); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// modeBits carries setuid, setgid and sticky from an fs.FileMode.
func modeBits(m fs.FileMode) uint32 {
	var b uint32
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

func (f *File) setStat(st Stat) {
	f.ino, f.typ, f.etag = st.Ino, st.Type, st.Hash
	f.remote, f.size, f.base = st.Size, st.Size, st.Size
}

// openRead opens for reading with one request: a GET of the first block
// (or the first page of a directory), conditional on the version the
// cache holds, which then answers 304 with no body.
func (f *File) openRead() error {
	c := f.c
	h := http.Header{"Range": {fmt.Sprintf("bytes=0-%d", cacheBlock-1)}}
	known, haveVersion := c.cache.version(f.name)
	if haveVersion {
		h.Set("If-None-Match", `"`+known.etag+`"`)
	}
	resp, err := c.send(f.ctx, request{method: http.MethodGet, what: f.name,
		url: c.fsURL(f.name, url.Values{"limit": {"1000"}}), header: h, bound: boundWhole, notModified: true})
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusRequestedRangeNotSatisfiable {
		// An empty file: no range of it can be asked for.
		st, err := c.Stat(f.ctx, f.name)
		if err == nil {
			f.setStat(st)
		}
		return err
	}
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	f.typ = resp.Header.Get("X-Shoal-Type")
	f.ino, _ = strconv.ParseUint(resp.Header.Get("X-Shoal-Ino"), 10, 64)
	switch {
	case resp.StatusCode == http.StatusNotModified:
		f.typ, f.etag, f.size = api.TypeFile, known.etag, known.size
		if f.ino == 0 {
			f.ino = known.ino
		}
	case f.typ == api.TypeDir:
		var l api.Listing
		if err := readListing(resp.Body, &l); err != nil {
			return fmt.Errorf("decode the listing: %w", err)
		}
		f.entries, f.next, f.more = l.Entries, l.Next, l.Next != ""
		return nil
	case f.typ == api.TypeSymlink:
		return fmt.Errorf("%w: %s is a symlink, which the API does not follow", ErrInvalid, f.name)
	default:
		f.typ, f.etag = api.TypeFile, strings.Trim(resp.Header.Get("ETag"), `"`)
		f.size = resp.ContentLength
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			_, total, _ := strings.Cut(cr, "/")
			f.size, _ = strconv.ParseInt(total, 10, 64)
		}
		if f.size < 0 {
			return fmt.Errorf("the router said nothing of the file's size")
		}
		first, err := io.ReadAll(io.LimitReader(resp.Body, cacheBlock))
		if err != nil || int64(len(first)) != min(f.size, cacheBlock) {
			return shortBody{int64(len(first)), f.size}
		}
		f.first = first
		c.cache.put(blockKey{f.etag, 0}, first)
		c.cache.setVersion(f.name, pathVersion{etag: f.etag, ino: f.ino, size: f.size})
	}
	f.remote, f.base = f.size, f.size
	return nil
}

// Name returns the path the file was opened by.
func (f *File) Name() string { return f.name }

func (f *File) pathErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &fs.PathError{Op: op, Path: f.name, Err: fsError(err)}
}

func (f *File) check(op string, write bool) error {
	switch {
	case f.closed:
		return f.pathErr(op, fs.ErrClosed)
	case f.typ == api.TypeDir && op != "readdir" && op != "stat":
		return f.pathErr(op, fmt.Errorf("%w: read a directory with ReadDir", ErrIsDir))
	case write && f.flag&(os.O_WRONLY|os.O_RDWR) == 0:
		return f.pathErr(op, fmt.Errorf("%w: the file is open for reading only", fs.ErrPermission))
	case !write && op != "stat" && op != "readdir" && f.flag&os.O_WRONLY != 0:
		return f.pathErr(op, fmt.Errorf("%w: the file is open for writing only", fs.ErrPermission))
	}
	return nil
}

// Read reads up to len(p) bytes from the offset, as io.Reader does.
func (f *File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	n, err := f.readAt(p, f.off)
	f.off += int64(n)
	return n, f.pathErr("read", err)
}

// ReadAt reads len(p) bytes at off, as io.ReaderAt does.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, f.pathErr("read", fmt.Errorf("%w: negative offset", ErrInvalid))
	}
	n, err := f.readAt(p, off)
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, f.pathErr("read", err)
}

// readAt fills p from off: this File's changes over the remote version's
// base bytes, zeros past them.
func (f *File) readAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.size-off))
	p = p[:n]
	clear(p)
	if off < f.base {
		if err := f.readRemote(p[:min(int64(n), f.base-off)], off); err != nil {
			return 0, err
		}
	}
	for _, e := range f.dirty {
		lo, hi := max(e.off, off), min(e.off+int64(len(e.data)), off+int64(n))
		if lo < hi {
			copy(p[lo-off:hi-off], e.data[lo-e.off:hi-e.off])
		}
	}
	return n, nil
}

// readRemote fills p with the remote version's bytes at off, a block at
// a time, from the cache where it has them.
func (f *File) readRemote(p []byte, off int64) error {
	for len(p) > 0 {
		b := off / cacheBlock
		data, err := f.block(b)
		if err != nil {
			return err
		}
		in := off - b*cacheBlock
		if in >= int64(len(data)) {
			return fmt.Errorf("%w: block %d is %d bytes", ErrChanged, b, len(data))
		}
		k := copy(p, data[in:])
		p, off = p[k:], off+int64(k)
	}
	return nil
}

// readAhead is how many blocks a sequential reader fetches per request.
const readAhead = 4

func (f *File) block(b int64) ([]byte, error) {
	sequential := b == f.last+1
	f.last = b
	if b == 0 && f.first != nil {
		return f.first, nil
	}
	k := blockKey{f.etag, b}
	if data := f.c.cache.get(k); data != nil {
		return data, nil
	}
	if data, ok := f.ahead[b]; ok {
		delete(f.ahead, b)
		return data, nil
	}
	n := int64(1)
	if sequential {
		n = readAhead
	}
	start := b * cacheBlock
	end := min(start+n*cacheBlock, f.remote)
	h := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", start, end-1)}}
	if f.etag != "" {
		h.Set("If-Match", `"`+f.etag+`"`)
	}
	resp, err := f.c.send(f.ctx, request{method: http.MethodGet, what: f.name, url: f.c.inoURL(f.ino, "", nil), header: h, bound: boundHeaders})
	if errors.Is(err, ErrPrecondition) || errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w (%v)", ErrChanged, err)
	}
	if err != nil {
		return nil, err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusPartialContent && start > 0 {
		return nil, fmt.Errorf("the router answered a range with %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, end-start))
	if err != nil {
		return nil, shortBody{start + int64(len(data)), f.remote}
	}
	if int64(len(data)) != end-start {
		return nil, fmt.Errorf("%w: %d bytes of block %d, want %d", ErrChanged, len(data), b, end-start)
	}
	// Split what came into blocks: the first is the one asked for, the
	// rest wait in the cache (or, without one, in ahead).
	first := data[:min(cacheBlock, len(data))]
	f.c.cache.put(k, first)
	for i := int64(1); i*cacheBlock < int64(len(data)); i++ {
		blk := data[i*cacheBlock : min((i+1)*cacheBlock, int64(len(data)))]
		if f.c.cache != nil {
			f.c.cache.put(blockKey{f.etag, b + i}, blk)
			continue
		}
		if f.ahead == nil {
			f.ahead = map[int64][]byte{}
		}
		f.ahead[b+i] = blk
	}
	return first, nil
}

// Write writes p at the offset (at the end with O_APPEND).
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		f.off = f.size
	}
	if err := f.writeAt(p, f.off); err != nil {
		return 0, f.pathErr("write", err)
	}
	f.off += int64(len(p))
	return len(p), nil
}

// WriteAt writes p at off, extending the file as pwrite(2) does. Like
// os.File, it refuses a file opened with O_APPEND.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		return 0, f.pathErr("writeat", errors.New("os: invalid use of WriteAt on file opened with O_APPEND"))
	}
	if off < 0 {
		return 0, f.pathErr("writeat", fmt.Errorf("%w: negative offset", ErrInvalid))
	}
	if err := f.writeAt(p, off); err != nil {
		return 0, f.pathErr("writeat", err)
	}
	return len(p), nil
}

func (f *File) writeAt(p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	if f.dirtyBytes+int64(len(p)) > maxDirty {
		// The changes could not be written for a while: refuse this
		// one, unbuffered, rather than hold more.
		if err := f.sync(); err != nil {
			return err
		}
	}
	end := off + int64(len(p))
	// Merge with every range p overlaps or touches.
	lo, hi := off, end
	var keep []extent
	var merged []extent
	for _, e := range f.dirty {
		eEnd := e.off + int64(len(e.data))
		if eEnd < off || e.off > end {
			keep = append(keep, e)
			continue
		}
		merged = append(merged, e)
		lo, hi = min(lo, e.off), max(hi, eEnd)
	}
	data := make([]byte, hi-lo)
	for _, e := range merged {
		copy(data[e.off-lo:], e.data)
		f.dirtyBytes -= int64(len(e.data))
	}
	copy(data[off-lo:], p)
	f.dirtyBytes += int64(len(data))
	at := len(keep)
	for i, e := range keep {
		if e.off > lo {
			at = i
			break
		}
	}
	keep = append(keep[:at], append([]extent{{lo, data}}, keep[at:]...)...)
	f.dirty = keep
	f.size = max(f.size, end)
	if f.dirtyBytes > flushAt {
		// p is kept whatever happens: a failure here is reported by the
		// next Sync or Close, which try again (or by a write past
		// maxDirty).
		_ = f.sync()
	}
	return nil
}

// Seek sets the offset, as io.Seeker does.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, f.pathErr("seek", fs.ErrClosed)
	}
	switch whence {
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.size
	case io.SeekStart:
	default:
		return 0, f.pathErr("seek", fmt.Errorf("%w: whence %d", ErrInvalid, whence))
	}
	if offset < 0 {
		return 0, f.pathErr("seek", fmt.Errorf("%w: negative offset", ErrInvalid))
	}
	f.off = offset
	return offset, nil
}

// Truncate changes the size, cutting or extending with zeros.
func (f *File) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return f.pathErr("truncate", fmt.Errorf("%w: negative size", ErrInvalid))
	}
	if size < f.size {
		var keep []extent
		for _, e := range f.dirty {
			if e.off >= size {
				f.dirtyBytes -= int64(len(e.data))
				continue
			}
			if end := e.off + int64(len(e.data)); end > size {
				f.dirtyBytes -= end - size
				e.data = e.data[:size-e.off]
			}
			keep = append(keep, e)
		}
		f.dirty = keep
		f.base = min(f.base, size)
	}
	f.size, f.resized = size, true
	return nil
}

// Sync writes the File's changes to the cluster: when it returns, they
// are on a majority of disks and every client that opens the file sees
// them.
func (f *File) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.pathErr("sync", fs.ErrClosed)
	}
	return f.pathErr("sync", f.sync())
}

func (f *File) sync() error {
	if len(f.dirty) == 0 && !f.resized {
		return nil
	}
	remote := f.remote
	var st Stat
	sent := false // st holds the answer to the last request
	setSize := func(n int64) error {
		sent = true
		_, err := f.c.inoCall(f.ctx, http.MethodPost, f.ino, "", SetAttr{Size: &n}.query(), nil, &st)
		return err
	}
	if f.base < remote {
		if err := setSize(f.base); err != nil {
			return err
		}
		remote = f.base
	}
	for _, e := range f.dirty {
		for off := int64(0); off < int64(len(e.data)); off += maxPatch {
			piece := e.data[off:min(off+maxPatch, int64(len(e.data)))]
			q := url.Values{"offset": {strconv.FormatInt(e.off+off, 10)}}
			sent = true
			if _, err := f.c.inoCall(f.ctx, http.MethodPatch, f.ino, "", q, piece, &st); err != nil {
				return err
			}
			remote = max(remote, e.off+off+int64(len(piece)))
		}
	}
	if remote != f.size {
		if err := setSize(f.size); err != nil {
			return err
		}
	}
	if sent {
		f.etag, f.first, f.ahead = st.Hash, nil, nil
	}
	f.remote, f.base = f.size, f.size
	f.dirty, f.dirtyBytes, f.resized = nil, 0, false
	return nil
}

// Close writes the changes (as Sync) and closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.pathErr("close", fs.ErrClosed)
	}
	err := f.sync()
	f.closed = true
	return f.pathErr("close", err)
}

// Stat returns the file's attributes, with its size as this File sees
// it.
func (f *File) Stat() (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, f.pathErr("stat", fs.ErrClosed)
	}
	var st Stat
	if _, err := f.c.inoCall(f.ctx, http.MethodGet, f.ino, "", url.Values{"op": {"stat"}}, nil, &st); err != nil {
		return nil, f.pathErr("stat", err)
	}
	if st.Type == api.TypeFile {
		st.Size = f.size
	}
	return fileInfo{name: path.Base(f.name), a: st.Attr}, nil
}

// ReadDir reads the directory's entries in name order, as
// os.File.ReadDir does: n > 0 at most n (io.EOF at the end), else all
// that are left.
func (f *File) ReadDir(n int) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, f.pathErr("readdir", fs.ErrClosed)
	}
	if f.typ != api.TypeDir {
		return nil, f.pathErr("readdir", ErrNotDir)
	}
	var out []fs.DirEntry
	for n <= 0 || len(out) < n {
		if f.pos == len(f.entries) {
			if !f.more {
				break
			}
			var l api.Listing
			q := url.Values{"limit": {"1000"}, "after": {f.next}}
			if _, err := f.c.inoCall(f.ctx, http.MethodGet, f.ino, "", q, nil, &l); err != nil {
				return out, f.pathErr("readdir", err)
			}
			f.entries, f.pos, f.next, f.more = l.Entries, 0, l.Next, l.Next != ""
			continue
		}
		e := f.entries[f.pos]
		f.pos++
		out = append(out, dirEntry{fileInfo{name: e.Name, a: e.Attr}})
	}
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

// shortBody is an answer cut short: the router stopped sending after n
// bytes of a file of size.
type shortBody struct{ n, size int64 }

func (e shortBody) Error() string {
	return fmt.Sprintf("the router stopped sending after %d of %d bytes; retry", e.n, e.size)
}

func (e shortBody) Unwrap() error { return io.ErrUnexpectedEOF }

// fileInfo is an inode's attributes as fs.FileInfo.
type fileInfo struct {
	name string
	a    Attr
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.a.Size }
func (i fileInfo) ModTime() time.Time { return i.a.MTime }
func (i fileInfo) IsDir() bool        { return i.a.Type == api.TypeDir }
func (i fileInfo) Sys() any           { return i.a }
func (i fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.a.Mode & 0o777)
	switch i.a.Type {
	case api.TypeDir:
		m |= fs.ModeDir
	case api.TypeSymlink:
		m |= fs.ModeSymlink
	}
	if i.a.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if i.a.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if i.a.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// dirEntry is a listing's entry as fs.DirEntry.
type dirEntry struct{ i fileInfo }

func (d dirEntry) Name() string               { return d.i.name }
func (d dirEntry) IsDir() bool                { return d.i.IsDir() }
func (d dirEntry) Type() fs.FileMode          { return d.i.Mode().Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return d.i, nil }
func (d dirEntry) String() string             { return fs.FormatDirEntry(d) }

// fsError maps the client's errors to io/fs's as well: the error
// returned matches both (errors.Is(err, fs.ErrNotExist) and ErrNotFound).
func fsError(err error) error {
	var target error
	switch {
	case errors.Is(err, ErrNotFound):
		target = fs.ErrNotExist
	case errors.Is(err, ErrExists):
		target = fs.ErrExist
	case errors.Is(err, ErrPermission), errors.Is(err, ErrNotPermitted):
		target = fs.ErrPermission
	case errors.Is(err, ErrInvalid):
		target = fs.ErrInvalid
	default:
		return err
	}
	if errors.Is(err, target) {
		return err
	}
	return bothErr{err, target}
}

// bothErr is an error that matches its own chain and an io/fs sentinel.
type bothErr struct {
	err, fs error
}

func (e bothErr) Error() string   { return e.err.Error() }
func (e bothErr) Unwrap() []error { return []error{e.err, e.fs} }
