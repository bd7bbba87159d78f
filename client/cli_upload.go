package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
)

// Uploads that send only what the cluster lacks. A file of more than one
// chunk is cut at the cluster's chunk size and each chunk hashed here;
// the cluster says which of them the file already there holds at the
// same offset (POST ?op=match), and only the others travel. They are
// written into a partial file beside the destination, .NAME.shoal-part,
// which starts as a copy of the old version (sharing its chunks: no byte
// moves) and takes the new chunks a few at a time; the last step puts
// its content in place of the destination's in one commit (PUT ?from=),
// so a reader sees the old file or the new one, never a mix. If the
// upload stops half way (Ctrl-C, a lost connection, a killed client) the
// partial file keeps what was sent, and the same put run again compares
// with it and sends only the rest. So a re-upload of an unchanged file
// sends no chunk, a sync of a changed one sends the changed chunks, and
// an interrupted put resumes.

// partSuffix ends the name of an upload's partial file.
const partSuffix = ".shoal-part"

// partName is the partial file of an upload to remote, or "" when its
// name would be too long.
func partName(remote string) string {
	dir, name := path.Split(remote)
	if len(name)+len(partSuffix)+1 > maxNameBytes {
		return ""
	}
	return dir + "." + name + partSuffix
}

// isPartName reports whether name is that of an upload's partial file.
func isPartName(name string) bool {
	return len(name) > len(partSuffix)+1 && name[0] == '.' && strings.HasSuffix(name, partSuffix)
}

// maxNameBytes is the longest name the cluster takes.
const maxNameBytes = 255

// geometry is how the cluster cuts files, asked once per client.
type geometry struct {
	once sync.Once
	fs   Statfs
	err  error
}

func (c *Client) chunking(ctx context.Context) (Statfs, error) {
	c.geom.once.Do(func() { c.geom.fs, c.geom.err = c.Statfs(ctx) })
	return c.geom.fs, c.geom.err
}

// errUploadRace: the partial file changed under an upload.
var errUploadRace = errors.New("another upload to the same file is under way (its partial file changed meanwhile)")

// chunkedUpload sends the regular file f (of info before) to remote by
// chunks, sending only those the cluster lacks. ok is false, with
// nothing done, when the file is better sent whole: one chunk or less,
// a name too long for its partial file, a router that cannot compare
// (Statfs.ChunkUploads unset).
// changed reports that f changed meanwhile; nothing is committed then,
// and the partial file stays for the next try.
func chunkedUpload(ctx context.Context, c *Client, f *os.File, before os.FileInfo, remote string, o PutOptions, p *progress) (st Stat, ok, changed bool, err error) {
	size := before.Size()
	g, err := c.chunking(ctx)
	part := partName(remote)
	if err != nil || !g.ChunkUploads || g.ChunkSize <= 0 || g.MaxWrite < g.ChunkSize || size <= int64(g.ChunkSize) || part == "" {
		return st, false, false, nil
	}
	u := &upload{c: c, f: f, size: size, cs: int64(g.ChunkSize), piece: int64(g.MaxWrite / g.ChunkSize * g.ChunkSize), part: part, p: p}
	if err := u.prepare(ctx, remote, o); err != nil {
		if errors.Is(err, errForeignPart) || errors.Is(err, ErrPermission) || errors.Is(err, ErrNotPermitted) {
			// An upload by chunks needs more than a whole PUT (to read
			// the destination, to make the partial file beside it) or
			// a partial file that is the caller's own: without them,
			// the file goes whole, as it may.
			return st, false, false, nil
		}
		return st, true, false, err
	}
	if u.unchanged {
		// The file there is this one already: put its own content back,
		// a replace (mode, time, conditions as asked) that moves no byte,
		// provided it is still the content compared.
		p.moved(size)
		o.From, o.FromIfMatch = remote, u.etag
		st, _, err = c.PutWith(ctx, remote, nil, 0, o)
		return st, true, false, err
	}
	if err := u.send(ctx); err != nil {
		return st, true, false, fmt.Errorf("%w (what was sent is kept in %s: the same put again sends only the rest)", err, part)
	}
	after, err := f.Stat()
	if err != nil {
		return st, true, false, err
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return st, true, true, nil
	}
	// Only the content this upload wrote is committed: another upload
	// to the same destination may have written to the partial file
	// meanwhile, and then this commit is refused rather than mixing the
	// two.
	o.From, o.FromIfMatch = part, u.etag
	st, _, err = c.PutWith(ctx, remote, nil, 0, o)
	if err != nil {
		if errors.Is(err, ErrPrecondition) || errors.Is(err, ErrPermission) || errors.Is(err, ErrNotPermitted) || errors.Is(err, ErrIsDir) {
			// Refused for good: what was sent is of no further use.
			c.DeleteIfMatch(context.WithoutCancel(ctx), part, u.etag)
		}
		return st, true, false, err
	}
	if err := c.DeleteIfMatch(ctx, part, u.etag); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrPrecondition) {
		return st, true, false, fmt.Errorf("%s is put, but its partial file %s could not be removed: %w", remote, part, err)
	}
	return st, true, false, nil
}

// errForeignPart: a partial file is there that the caller may not trust
// as its own (another owner, other links, open to others).
var errForeignPart = errors.New("the partial file is not the caller's own")

// upload is one chunked upload under way.
type upload struct {
	c         *Client
	f         *os.File
	size, cs  int64
	piece     int64 // the most one write carries: whole chunks
	part      string
	p         *progress
	sums      []string
	same      []bool // by chunk: the partial file holds it already
	etag      string // the partial file's, after the last write
	partSize  int64
	unchanged bool // the destination holds every chunk: nothing to send
}

// prepare finds what the upload can start from: a partial file an
// earlier try left, else the file at remote (copied to the partial file,
// sharing its content), else nothing (an empty partial file).
func (u *upload) prepare(ctx context.Context, remote string, o PutOptions) error {
	pst, err := u.c.Stat(ctx, u.part)
	switch {
	case err == nil && pst.Type != TypeFile:
		return fmt.Errorf("%s is in the way of the upload's partial file: move it away", u.part)
	case err == nil:
		// Resume only into a partial file that is the caller's alone:
		// one another user made (and may read, or keep through a hard
		// link) must not receive this file's bytes.
		me, err := u.c.WhoAmI(ctx)
		if err != nil {
			return err
		}
		if pst.Uid != me.Uid || pst.Nlink != 1 || pst.Mode&0o077 != 0 {
			return errForeignPart
		}
		return u.compare(ctx, u.part) // resume
	case !errors.Is(err, ErrNotFound):
		return err
	}
	dst, err := u.c.Stat(ctx, remote)
	switch {
	case err == nil && o.IfAbsent:
		// Refused now rather than after sending everything: the put
		// would fail at its commit.
		return fmt.Errorf("%s: %w: something is there already (--no-clobber)", remote, ErrPrecondition)
	case err == nil && o.IfMatch != "" && o.IfMatch != "*" && quoteETag(o.IfMatch) != quoteETag(dst.Hash),
		errors.Is(err, ErrNotFound) && o.IfMatch != "":
		return fmt.Errorf("%s: %w: it is not the version --if-match names", remote, ErrPrecondition)
	case err == nil && dst.Type == TypeFile && dst.Size > 0:
		if err := u.compare(ctx, remote); err != nil {
			return err
		}
		if u.partSize == u.size && allTrue(u.same) {
			u.unchanged, u.etag = true, dst.Hash
			return nil
		}
		if anyTrue(u.same) {
			if err := u.c.Copy(ctx, remote, u.part); err != nil {
				return err
			}
			// The copy keeps the old file's mode: make it writable.
			mode := uint32(0o600)
			if _, err := u.c.SetAttrPath(ctx, u.part, SetAttr{Mode: &mode}); err != nil {
				return err
			}
			st, err := u.c.Stat(ctx, u.part)
			u.etag = st.Hash
			return err
		}
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	}
	// Nothing to start from: an empty partial file (and the destination's
	// directories, as a put makes them).
	mode := uint32(0o600)
	st, _, err := u.c.PutWith(ctx, u.part, nil, 0, PutOptions{IfAbsent: true, Mode: &mode})
	if errors.Is(err, ErrPrecondition) {
		return errUploadRace
	}
	u.same, u.etag, u.partSize = nil, st.Hash, 0
	return err
}

// compare hashes the local file (once) and asks which of its chunks the
// file at p holds.
func (u *upload) compare(ctx context.Context, p string) error {
	if u.sums == nil {
		sums, err := chunkSums(ctx, u.f, u.size, u.cs)
		if err != nil {
			return err
		}
		u.sums = sums
	}
	u.same = make([]bool, 0, len(u.sums))
	for first := 0; first < len(u.sums); first += MaxMatchSums {
		batch := u.sums[first:min(first+MaxMatchSums, len(u.sums))]
		r, err := u.c.Match(ctx, p, MatchRequest{Size: u.size, ChunkSize: u.cs, First: int64(first), Sums: batch})
		if err != nil {
			return err
		}
		if len(r.Same) != len(batch) {
			return fmt.Errorf("%s: the router compared %d chunks of the %d asked", p, len(r.Same), len(batch))
		}
		u.same = append(u.same, r.Same...)
		u.etag, u.partSize = r.Hash, r.Size
	}
	return nil
}

// send writes every chunk the partial file lacks, runs of them at a
// time, each write only while the partial file is as the last one left
// it; then cuts the partial file to size. The next run is read from the
// local file while one is being sent.
func (u *upload) send(ctx context.Context) error {
	type run struct{ off, end int64 }
	var runs []run
	n := (u.size + u.cs - 1) / u.cs
	for i := int64(0); i < n; {
		if i < int64(len(u.same)) && u.same[i] {
			u.p.moved(min(u.cs, u.size-i*u.cs))
			i++
			continue
		}
		j := i + 1
		for j < n && (j-i+1)*u.cs <= u.piece && !(j < int64(len(u.same)) && u.same[j]) {
			j++
		}
		runs = append(runs, run{i * u.cs, min(j*u.cs, u.size)})
		i = j
	}
	type read struct {
		buf []byte
		err error
	}
	bufs := [2][]byte{}
	load := func(k int) <-chan read {
		ch := make(chan read, 1)
		go func() {
			r := runs[k]
			b := bufs[k%2]
			if int64(cap(b)) < r.end-r.off {
				b = make([]byte, r.end-r.off)
			}
			b = b[:r.end-r.off]
			bufs[k%2] = b
			_, err := u.f.ReadAt(b, r.off)
			if errors.Is(err, io.EOF) && r.end == u.size {
				err = nil
			}
			ch <- read{b, err}
		}()
		return ch
	}
	var next <-chan read
	if len(runs) > 0 {
		next = load(0)
	}
	for k, r := range runs {
		got := <-next
		if got.err != nil {
			return fmt.Errorf("read %s: %w", u.f.Name(), got.err)
		}
		if k+1 < len(runs) {
			next = load(k + 1)
		}
		st, err := u.c.writeAt(ctx, u.part, r.off, u.p.reader(bytes.NewReader(got.buf)), int64(len(got.buf)), u.etag)
		if errors.Is(err, ErrPrecondition) {
			err = fmt.Errorf("%s: %w", u.part, errUploadRace)
		}
		if err != nil {
			if k+1 < len(runs) {
				<-next // the read under way is done with its buffer
			}
			return err
		}
		u.etag, u.partSize = st.Hash, st.Size
	}
	if u.partSize > u.size {
		size := u.size
		if _, err := u.c.SetAttrPath(ctx, u.part, SetAttr{Size: &size}); err != nil {
			return err
		}
		st, err := u.c.Stat(ctx, u.part)
		u.etag, u.partSize = st.Hash, st.Size
		return err
	}
	return nil
}

// chunkSums reads f and returns the hex SHA-256 of each chunk of cs bytes.
func chunkSums(ctx context.Context, f *os.File, size, cs int64) ([]string, error) {
	sums := make([]string, 0, (size+cs-1)/cs)
	r := io.NewSectionReader(f, 0, size)
	h := sha256.New()
	for off := int64(0); off < size; off += cs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h.Reset()
		if _, err := io.CopyN(h, r, min(cs, size-off)); err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		sums = append(sums, hex.EncodeToString(h.Sum(nil)))
	}
	return sums, nil
}

func allTrue(b []bool) bool {
	for _, v := range b {
		if !v {
			return false
		}
	}
	return true
}

func anyTrue(b []bool) bool {
	for _, v := range b {
		if v {
			return true
		}
	}
	return false
}
