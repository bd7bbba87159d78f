package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"shoal/api"
)

// The inode API: what a POSIX mount needs. Each call names its file by
// inode number, or by a name in a directory named by inode number, so a
// file another client moved meanwhile is still the one the call reaches.
// Calls that make or change an inode return its attributes.

// SetAttr says which attributes SetAttr changes: a nil field stays.
type SetAttr struct {
	Size  *int64 // truncate, or extend with zeros
	Mode  *uint32
	Uid   *uint32
	Gid   *uint32
	ATime *time.Time // the zero time means the cluster's now
	MTime *time.Time
}

// Statfs is the cluster's room as a mount reports it (GET /v1/statfs).
type Statfs = api.Statfs

// inoURL is the URL of name in the directory inode dir ("" names dir).
func (c *Client) inoURL(dir uint64, name string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	q.Set("at", strconv.FormatUint(dir, 10))
	return c.fsURL("/"+name, q)
}

func what(dir uint64, name string) string {
	if name == "" {
		return fmt.Sprintf("inode %d", dir)
	}
	return fmt.Sprintf("%q in inode %d", name, dir)
}

// inoCall makes a request about name in dir and decodes the attributes it
// answers with into out (when not nil). A change of names under NoteDirs
// asks for its directories too (dirs=1) and hands them over.
func (c *Client) inoCall(ctx context.Context, method string, dir uint64, name string, q url.Values, body []byte, out any) (int, error) {
	into := DirsNoted(ctx)
	if into == nil || !changesNames(method, q) {
		return c.inoSend(ctx, method, dir, name, q, body, out)
	}
	*into = nil
	q.Set("dirs", "1")
	ch := api.Changed{Stat: new(Stat)}
	if st, ok := out.(*Stat); ok {
		ch.Stat = st
	}
	status, err := c.inoSend(ctx, method, dir, name, q, body, &ch)
	if err == nil {
		*into = ch.Dirs
	}
	return status, err
}

// inoSend is inoCall's request and answer.
func (c *Client) inoSend(ctx context.Context, method string, dir uint64, name string, q url.Values, body []byte, out any) (int, error) {
	r := request{method: method, what: what(dir, name), url: c.inoURL(dir, name, q), bound: boundWhole}
	if body != nil {
		r.body, r.size = bytes.NewReader(body), int64(len(body))
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return 0, err
	}
	if out == nil || resp.StatusCode == http.StatusNoContent && q.Get("dirs") == "1" {
		// (A 204 to a change asked for its directories: a router that
		// does not give them.)
		drainClose(resp.Body)
		return resp.StatusCode, nil
	}
	return resp.StatusCode, decodeJSON(resp, r.what, out)
}

type dirsKey struct{}

// NoteDirs returns a context whose changes of names made through the
// inode calls (CreateIn, MkdirIn, MknodIn, SymlinkIn, LinkIn, UnlinkIn,
// RmdirIn, RenameIn) set *into to the directories whose entries they
// changed, as they are after the change (their new times and links),
// or to none when the router does not give them (a router of an earlier
// version, or a retry the cluster answered from its first try). A mount
// keeps them: the kernel forgets a directory's attributes after each
// change in it and asks for them again.
func NoteDirs(ctx context.Context, into *[]Attr) context.Context {
	return context.WithValue(ctx, dirsKey{}, into)
}

// DirsNoted returns where ctx asks the directories of a change to go (see
// NoteDirs), or nil: for other implementations of the inode calls, such
// as a test's.
func DirsNoted(ctx context.Context) *[]Attr {
	into, _ := ctx.Value(dirsKey{}).(*[]Attr)
	return into
}

// changesNames reports whether an inode call with method and q is one
// NoteDirs applies to.
func changesNames(method string, q url.Values) bool {
	switch method {
	case http.MethodDelete:
		return true
	case http.MethodPost:
		switch q.Get("op") {
		case "create", "mkdir", "mknod", "symlink", "link", "rename":
			return true
		}
	}
	return false
}

// LookupIn returns the attributes of name in the directory dir.
func (c *Client) LookupIn(ctx context.Context, dir uint64, name string) (Attr, error) {
	var st Stat
	_, err := c.inoCall(ctx, http.MethodGet, dir, name, url.Values{"op": {"stat"}}, nil, &st)
	return st.Attr, err
}

// StatIno returns the attributes of the inode ino.
func (c *Client) StatIno(ctx context.Context, ino uint64) (Attr, error) {
	return c.LookupIn(ctx, ino, "")
}

// ListIno returns the entries of the directory ino, with their attributes.
func (c *Client) ListIno(ctx context.Context, ino uint64) ([]DirEntry, error) {
	var l api.Listing
	_, err := c.inoCall(ctx, http.MethodGet, ino, "", nil, nil, &l)
	return l.Entries, err
}

// ReadIno opens n bytes of the file ino from offset off; fewer come back
// at its end. The caller must close the body.
func (c *Client) ReadIno(ctx context.Context, ino uint64, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("read inode %d: bad range %d+%d", ino, off, n)
	}
	return c.getRange(ctx, what(ino, ""), c.inoURL(ino, "", nil), off, n)
}

// WriteAt writes data into the file ino at off, extending it as pwrite(2)
// does. When it returns, the data is on a majority of its group's disks.
func (c *Client) WriteAt(ctx context.Context, ino uint64, off int64, data []byte) (Attr, error) {
	var st Stat
	_, err := c.inoCall(ctx, http.MethodPatch, ino, "", url.Values{"offset": {strconv.FormatInt(off, 10)}}, data, &st)
	return st.Attr, err
}

// Extent is bytes written at an offset of a file.
type Extent struct {
	Off  int64
	Data []byte
}

// Patch is a change of a file's content made in one commit (PatchIno):
// the file is cut or extended to Truncate bytes when that is set, then
// each of Writes is written at its offset, in order, as pwrite(2) does,
// then the file is cut or extended to Size when that is set, then Attrs
// (all but their Size, which must be nil) are set as SetAttrIno sets
// them.
type Patch struct {
	Truncate *int64
	Writes   []Extent
	Size     *int64
	Attrs    SetAttr
	// EmptyAt, when set, says the caller knows the file as empty at this
	// content generation (Attr.Gen; a file it has just created): the
	// router then computes the change without reading the file first,
	// and reads it only if the file is no longer at that generation.
	EmptyAt *uint64
}

// MaxPatchWrites is the most writes one Patch may carry; together they
// carry at most MaxWriteAt bytes, each at least one.
const MaxPatchWrites = 256

// PatchIno changes the content of the file ino as p says, in one commit
// (PATCH with ranges=): a mount sends what a program wrote and truncated
// between two flushes this way. When it returns, the change is on a
// majority of the group's disks.
func (c *Client) PatchIno(ctx context.Context, ino uint64, p Patch) (Attr, error) {
	if len(p.Writes) > MaxPatchWrites {
		return Attr{}, fmt.Errorf("patch inode %d: %d writes; one patch carries at most %d", ino, len(p.Writes), MaxPatchWrites)
	}
	if p.Attrs.Size != nil {
		return Attr{}, fmt.Errorf("patch inode %d: Attrs.Size is set; a patch's size is its Size", ino)
	}
	q := p.Attrs.query()
	q.Del("op")
	var ranges []byte
	var n int
	for i, w := range p.Writes {
		if len(w.Data) == 0 || w.Off < 0 {
			return Attr{}, fmt.Errorf("patch inode %d: write %d has %d bytes at %d: each needs a byte at an offset of at least 0", ino, i, len(w.Data), w.Off)
		}
		if i > 0 {
			ranges = append(ranges, ',')
		}
		ranges = strconv.AppendInt(ranges, w.Off, 10)
		ranges = append(ranges, ':')
		ranges = strconv.AppendInt(ranges, int64(len(w.Data)), 10)
		n += len(w.Data)
	}
	q.Set("ranges", string(ranges))
	if p.Truncate != nil {
		q.Set("truncate", strconv.FormatInt(*p.Truncate, 10))
	}
	if p.Size != nil {
		q.Set("size", strconv.FormatInt(*p.Size, 10))
	}
	if p.EmptyAt != nil {
		q.Set("empty_at", strconv.FormatUint(*p.EmptyAt, 10))
	}
	body := make([]byte, 0, n)
	for _, w := range p.Writes {
		body = append(body, w.Data...)
	}
	var st Stat
	_, err := c.inoCall(ctx, http.MethodPatch, ino, "", q, body, &st)
	return st.Attr, err
}

// SetAttrIno changes the attributes a names.
func (c *Client) SetAttrIno(ctx context.Context, ino uint64, a SetAttr) (Attr, error) {
	var st Stat
	_, err := c.inoCall(ctx, http.MethodPost, ino, "", a.query(), nil, &st)
	return st.Attr, err
}

// SetAttrPath changes what a sets of the file, directory or symlink at
// path (a symlink itself, not what it points at).
func (c *Client) SetAttrPath(ctx context.Context, path string, a SetAttr) (Attr, error) {
	var st Stat
	err := c.call(ctx, http.MethodPost, path, a.query(), &st)
	return st.Attr, err
}

// Symlink makes the symlink path, pointing at target, owned by the
// caller. Its parent must exist.
func (c *Client) Symlink(ctx context.Context, path, target string) (Attr, error) {
	var st Stat
	err := c.call(ctx, http.MethodPost, path, url.Values{"op": {"symlink"}, "target": {target}}, &st)
	return st.Attr, err
}

// query is a as the query of op=setattr.
func (a SetAttr) query() url.Values {
	q := url.Values{"op": {"setattr"}}
	if a.Size != nil {
		q.Set("size", strconv.FormatInt(*a.Size, 10))
	}
	if a.Mode != nil {
		q.Set("mode", strconv.FormatUint(uint64(*a.Mode), 8))
	}
	if a.Uid != nil {
		q.Set("uid", strconv.FormatUint(uint64(*a.Uid), 10))
	}
	if a.Gid != nil {
		q.Set("gid", strconv.FormatUint(uint64(*a.Gid), 10))
	}
	for name, t := range map[string]*time.Time{"atime": a.ATime, "mtime": a.MTime} {
		switch {
		case t == nil:
		case t.IsZero():
			q.Set(name, "now")
		default:
			q.Set(name, strconv.FormatInt(t.UnixNano(), 10))
		}
	}
	return q
}

func ownerQuery(op string, mode, uid, gid uint32) url.Values {
	return url.Values{"op": {op}, "mode": {strconv.FormatUint(uint64(mode), 8)},
		"uid": {strconv.FormatUint(uint64(uid), 10)}, "gid": {strconv.FormatUint(uint64(gid), 10)}}
}

// MknodIn makes the special file name in dir: typ is TypeFIFO,
// TypeSocket, TypeCharDev or TypeBlockDev, rdev a device node's number
// (as stat(2)'s st_rdev; 0 for the others). Device nodes take root.
func (c *Client) MknodIn(ctx context.Context, dir uint64, name, typ string, mode uint32, rdev uint64, uid, gid uint32) (Attr, error) {
	q := ownerQuery("mknod", mode, uid, gid)
	q.Set("type", typ)
	if rdev != 0 {
		q.Set("rdev", strconv.FormatUint(rdev, 10))
	}
	var st Stat
	_, err := c.inoCall(ctx, http.MethodPost, dir, name, q, nil, &st)
	return st.Attr, err
}

// CreateIn makes an empty file name in dir, or with excl unset returns the
// file already there; created says which.
func (c *Client) CreateIn(ctx context.Context, dir uint64, name string, mode, uid, gid uint32, excl bool) (a Attr, created bool, err error) {
	q := ownerQuery("create", mode, uid, gid)
	if excl {
		q.Set("excl", "1")
	}
	var st Stat
	status, err := c.inoCall(ctx, http.MethodPost, dir, name, q, nil, &st)
	return st.Attr, status == http.StatusCreated, err
}

// MkdirIn makes the directory name in dir.
func (c *Client) MkdirIn(ctx context.Context, dir uint64, name string, mode, uid, gid uint32) (Attr, error) {
	var st Stat
	_, err := c.inoCall(ctx, http.MethodPost, dir, name, ownerQuery("mkdir", mode, uid, gid), nil, &st)
	return st.Attr, err
}

// SymlinkIn makes the symlink name in dir, pointing at target.
func (c *Client) SymlinkIn(ctx context.Context, dir uint64, name, target string, uid, gid uint32) (Attr, error) {
	q := ownerQuery("symlink", 0o777, uid, gid)
	q.Set("target", target)
	var st Stat
	_, err := c.inoCall(ctx, http.MethodPost, dir, name, q, nil, &st)
	return st.Attr, err
}

// LinkIn gives the file ino the new name name in dir (a hard link).
func (c *Client) LinkIn(ctx context.Context, ino, dir uint64, name string) (Attr, error) {
	q := url.Values{"op": {"link"}, "to": {"/" + name}, "to_at": {strconv.FormatUint(dir, 10)}}
	var st Stat
	_, err := c.inoCall(ctx, http.MethodPost, ino, "", q, nil, &st)
	return st.Attr, err
}

// UnlinkIn removes the name of a file or symlink (never a directory).
// With orphan, a file losing its last name is kept until ReleaseIno:
// the caller still has it open.
func (c *Client) UnlinkIn(ctx context.Context, dir uint64, name string, orphan bool) error {
	q := url.Values{"only": {"file"}}
	if orphan {
		q.Set("orphan", "1")
	}
	_, err := c.inoCall(ctx, http.MethodDelete, dir, name, q, nil, nil)
	return err
}

// RmdirIn removes the empty directory name in dir.
func (c *Client) RmdirIn(ctx context.Context, dir uint64, name string) error {
	_, err := c.inoCall(ctx, http.MethodDelete, dir, name, url.Values{"only": {"dir"}}, nil, nil)
	return err
}

// RenameIn moves name in dir to newName in newDir, replacing what is there
// as rename(2) does, or failing with ErrExists when noReplace is set.
// orphan keeps a replaced file the caller has open (see UnlinkIn).
func (c *Client) RenameIn(ctx context.Context, dir uint64, name string, newDir uint64, newName string, noReplace, orphan bool) error {
	q := url.Values{"op": {"rename"}, "to": {"/" + newName}, "to_at": {strconv.FormatUint(newDir, 10)}}
	if noReplace {
		q.Set("noreplace", "1")
	}
	if orphan {
		q.Set("orphan", "1")
	}
	_, err := c.inoCall(ctx, http.MethodPost, dir, name, q, nil, nil)
	return err
}

// ReleaseIno drops the file ino if it is an orphan (see UnlinkIn).
func (c *Client) ReleaseIno(ctx context.Context, ino uint64) error {
	_, err := c.inoCall(ctx, http.MethodPost, ino, "", url.Values{"op": {"release"}}, nil, nil)
	return err
}

// KeepOrphanIno renews for ttl the lease of the file ino, unlinked while
// this client (a mount) has it open: the cluster drops such a file once
// its lease runs out (a minute from its unlink, unless renewed), so a
// mount that dies leaves nothing behind. ErrNotFound: it is not an
// orphan (any more).
func (c *Client) KeepOrphanIno(ctx context.Context, ino uint64, ttl time.Duration) error {
	_, err := c.inoCall(ctx, http.MethodPost, ino, "", url.Values{"op": {"keep"}, "ttl": {ttl.String()}}, nil, nil)
	return err
}

// Statfs returns the cluster's capacity and the router's chunking.
func (c *Client) Statfs(ctx context.Context) (Statfs, error) {
	var out Statfs
	resp, err := c.send(ctx, request{method: http.MethodGet, what: "/v1/statfs", url: c.base + "/v1/statfs", bound: boundWhole})
	if err != nil {
		return out, err
	}
	return out, decodeJSON(resp, "statfs", &out)
}
