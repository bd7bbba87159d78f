package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"shoal/api"
	"shoal/meta"
	"shoal/wire"
)

// The requests a POSIX mount needs beyond whole-file transfers: create,
// symlink, in-place writes (PATCH at an offset), setattr (truncate, chmod,
// chown, utimens), orphan release and statfs. Every one names its file
// by inode (?at=INO) when it comes from a mount, and answers with the
// inode's attributes, so the mount needs no second round trip.

// MaxWriteAt bounds the body of one write at an offset: the router holds
// it whole, since a write that lost a race with another change is
// computed again from the new content.
const MaxWriteAt = MaxChunkSize

// maxConflicts bounds how often a change is computed again because
// another one to the same file committed first.
const maxConflicts = 16

// parseMode reads an octal mode such as 0644 or 4755.
func parseMode(v string) (uint32, error) {
	m, err := strconv.ParseUint(v, 8, 32)
	if err != nil || m&^meta.ModeMask != 0 {
		return 0, fmt.Errorf("%w: mode %q: want octal permission bits, like 0644", ErrBadRequest, v)
	}
	return uint32(m), nil
}

func parseID(name, v string) (uint32, error) {
	id, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q: want a numeric ID", ErrBadRequest, name, v)
	}
	return uint32(id), nil
}

// owner reads mode, uid and gid into op; absent ones stay 0 (the
// defaults: mode 0644 for files, 0755 for directories). An owner given
// counts only for root (an admin, or root on a mount host); anyone else's
// new inodes are their own, with the group a setgid directory passes on.
func owner(q url.Values, op *meta.Op) (err error) {
	if v := q.Get("mode"); v != "" {
		if op.Mode, err = parseMode(v); err != nil {
			return err
		}
		op.ModeGiven = true
	}
	if v := q.Get("uid"); v != "" {
		if op.Uid, err = parseID("uid", v); err != nil {
			return err
		}
		op.Owner = true
	}
	if v := q.Get("gid"); v != "" {
		if op.Gid, err = parseID("gid", v); err != nil {
			return err
		}
		op.Owner = true
	}
	return nil
}

// create makes an empty file (op=create, like open(2) with O_CREAT, and
// with excl=1 also O_EXCL), a symlink (op=symlink&target=...) or a
// special file (op=mknod&type=fifo|socket|chardev|blockdev[&rdev=N]).
// Unlike a PUT it makes no missing parents.
func (s *Server) create(w http.ResponseWriter, r *http.Request, t target, kind string, q url.Values) {
	op := meta.Op{Kind: meta.OpCreate, Dir: t.at, Path: t.path, Mode: 0o644}
	err := owner(q, &op)
	if err == nil && kind == "symlink" {
		op.Kind, op.Target = meta.OpSymlink, q.Get("target")
		if op.Target == "" || len(op.Target) > meta.MaxSymlink {
			err = fmt.Errorf("%w: op=symlink needs target= of 1 to %d bytes", ErrBadRequest, meta.MaxSymlink)
		}
	}
	if err == nil && kind == "mknod" {
		op.Kind = meta.OpMknod
		err = parseNode(q, &op)
	}
	if err == nil {
		err = flags(q, map[string]*bool{"excl": &op.Excl})
	}
	s.make(w, r, t, op, err)
}

// parseNode reads the type and device number of op=mknod.
func parseNode(q url.Values, op *meta.Op) error {
	t, ok := meta.ParseFileType(q.Get("type"))
	if !ok || !t.Special() {
		return fmt.Errorf("%w: op=mknod needs type=fifo, socket, chardev or blockdev, not %q", ErrBadRequest, q.Get("type"))
	}
	op.Node = t
	if v := q.Get("rdev"); v != "" {
		rdev, err := strconv.ParseUint(v, 10, 64)
		if err != nil || t != meta.TypeCharDev && t != meta.TypeBlockDev {
			return fmt.Errorf("%w: rdev=%q: a device number (decimal) for type=chardev or blockdev only", ErrBadRequest, v)
		}
		op.Rdev = rdev
	}
	return nil
}

// make proposes op (unless err, from parsing the request, is set) and
// answers 201 when it made the inode, 200 when the inode was there, with
// the inode's attributes when the op returns them.
func (s *Server) make(w http.ResponseWriter, r *http.Request, t target, op meta.Op, err error) {
	var res meta.Result
	if err == nil {
		op.WantDirs = wantDirs(r)
		res, err = s.propose(r.Context(), op)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	var st *api.Stat
	if res.Inode != nil {
		v := statOf(t.path, *res.Inode)
		st = &v
	}
	answerChange(w, op.WantDirs, status, st, res)
}

// release drops an orphan: a file unlinked while a mount had it open.
func (s *Server) release(w http.ResponseWriter, r *http.Request, t target) {
	if _, err := s.propose(r.Context(), meta.Op{Kind: meta.OpRelease, Dir: t.at, Path: t.path}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// keepOrphan renews the lease of a file unlinked while open
// (op=keep&ttl=D), which the cluster drops once the lease runs out: a
// mount holding it open sends this every third of the lease.
func (s *Server) keepOrphan(w http.ResponseWriter, r *http.Request, t target, q url.Values) {
	ttl, err := time.ParseDuration(q.Get("ttl"))
	if err != nil || ttl < meta.MinOrphanTTL || ttl > meta.MaxOrphanTTL {
		writeError(w, fmt.Errorf("%w: op=keep needs ttl= from %v to %v, like 30s", ErrBadRequest, meta.MinOrphanTTL, meta.MaxOrphanTTL))
		return
	}
	if _, err := s.propose(r.Context(), meta.Op{Kind: meta.OpKeepOrphan, Dir: t.at, Path: t.path, TTL: int64(ttl)}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseTime reads an atime or mtime: Unix nanoseconds, or "now" (the
// primary's clock).
func parseTime(name, v string, a *meta.SetAttr, bit, nowBit uint8, dst *int64) error {
	if v == "" {
		return nil
	}
	if v == "now" {
		a.Valid |= nowBit
		return nil
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s=%q: want Unix nanoseconds or now", ErrBadRequest, name, v)
	}
	a.Valid |= bit
	*dst = ns
	return nil
}

// parseSetAttr reads the attributes of op=setattr; size is -1 when the
// request leaves it alone.
func parseSetAttr(q url.Values) (a *meta.SetAttr, size int64, err error) {
	a = &meta.SetAttr{}
	size = -1
	if v := q.Get("size"); v != "" {
		if size, err = strconv.ParseInt(v, 10, 64); err != nil || size < 0 {
			return nil, 0, fmt.Errorf("%w: size=%q: want a byte count", ErrBadRequest, v)
		}
	}
	if v := q.Get("mode"); v != "" {
		if a.Mode, err = parseMode(v); err != nil {
			return nil, 0, err
		}
		a.Valid |= meta.SetMode
	}
	if v := q.Get("uid"); v != "" {
		if a.Uid, err = parseID("uid", v); err != nil {
			return nil, 0, err
		}
		a.Valid |= meta.SetUid
	}
	if v := q.Get("gid"); v != "" {
		if a.Gid, err = parseID("gid", v); err != nil {
			return nil, 0, err
		}
		a.Valid |= meta.SetGid
	}
	if err := parseTime("atime", q.Get("atime"), a, meta.SetATime, meta.SetATimeNow, &a.ATime); err != nil {
		return nil, 0, err
	}
	if err := parseTime("mtime", q.Get("mtime"), a, meta.SetMTime, meta.SetMTimeNow, &a.MTime); err != nil {
		return nil, 0, err
	}
	if a.Valid == 0 {
		a = nil
	}
	if a == nil && size < 0 {
		return nil, 0, fmt.Errorf("%w: op=setattr changes nothing: give size, mode, uid, gid, atime or mtime", ErrBadRequest)
	}
	return a, size, nil
}

// setattr changes the attributes a request names; a size cuts the file
// or extends it with zeros, in the same commit.
func (s *Server) setattr(w http.ResponseWriter, r *http.Request, t target, q url.Values) {
	a, size, err := parseSetAttr(q)
	if err != nil {
		writeError(w, err)
		return
	}
	if size > s.cfg.MaxFileSize {
		writeError(w, fmt.Errorf("%w: size %d is over the limit of %d", ErrTooLarge, size, s.cfg.MaxFileSize))
		return
	}
	var in *meta.Inode
	if size < 0 {
		var res meta.Result
		res, err = s.propose(r.Context(), meta.Op{Kind: meta.OpUpdate, Dir: t.at, Path: t.path, Attr: a})
		in = res.Inode
	} else {
		in, err = s.change(r.Context(), t, a, s.edits.get(r.Context(), t), func(ctx context.Context, old meta.Inode) (*meta.Inode, error) {
			return s.spliceIn(ctx, old, size, piece{}, size)
		})
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeStat(w, http.StatusOK, t.path, in)
}

// writeAt writes the body into the file at offset, extending it (with
// zeros up to offset, if it starts past the end) as pwrite(2) does. A
// write of whole chunks at a chunk boundary (as an upload by chunks
// sends) is stored as it arrives, like a PUT's body, and then spliced in
// by reference; any other is held whole and spliced in as bytes.
func (s *Server) writeAt(w http.ResponseWriter, r *http.Request, t target, offset string) {
	off, err := strconv.ParseInt(offset, 10, 64)
	if err != nil || off < 0 {
		writeError(w, fmt.Errorf("%w: a PATCH needs offset=N, the byte offset to write at", ErrBadRequest))
		return
	}
	n := r.ContentLength
	switch {
	case n > MaxWriteAt:
		writeError(w, fmt.Errorf("%w: a write at an offset carries at most %d bytes; send %d in several", ErrTooLarge, MaxWriteAt, n))
		return
	case n >= 0 && off > s.cfg.MaxFileSize-n:
		writeError(w, fmt.Errorf("%w: writing %d bytes at %d passes the limit of %d", ErrTooLarge, n, off, s.cfg.MaxFileSize))
		return
	}
	cond, err := writeConditions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var p piece
	cs := int64(s.cfg.ChunkSize)
	if off%cs == 0 && n >= cs && n > int64(s.cfg.InlineMax) {
		p, err = s.streamPiece(r, t, cond)
	} else {
		p, err = readPiece(r, off, s.cfg.MaxFileSize)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	// The change is computed from the file as it is and committed only if
	// the file is still that one (its Gen), so checking the conditions
	// against it checks them at the commit.
	var known *meta.Inode
	if !cond.any() {
		known = s.edits.get(r.Context(), t)
	}
	in, err := s.change(r.Context(), t, nil, known, func(ctx context.Context, old meta.Inode) (*meta.Inode, error) {
		if !cond.holds(old, true) {
			return nil, fmt.Errorf("%s: %w: If-Match or If-None-Match does not hold", t, meta.ErrPrecondition)
		}
		return s.spliceIn(ctx, old, off, p, max(old.Size, off+p.n))
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeStat(w, http.StatusOK, t.path, in)
}

// MaxRanges bounds the writes one PATCH with ranges= carries.
const MaxRanges = 256

// byteRange is one write of a PATCH with ranges=: n bytes at off.
type byteRange struct{ off, n int64 }

// parseRanges reads ranges=OFF:LEN,OFF:LEN,... and the sizes truncate=N
// and size=N around them (-1 when not given), checking each against
// the file size limit and the lengths against the body's.
func parseRanges(q url.Values, maxFile, body int64) (rs []byteRange, truncate, size int64, err error) {
	truncate, size = -1, -1
	for _, f := range []struct {
		name string
		to   *int64
	}{{"truncate", &truncate}, {"size", &size}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, 0, 0, fmt.Errorf("%w: %s=%q: want a byte count", ErrBadRequest, f.name, v)
		}
		if n > maxFile {
			return nil, 0, 0, fmt.Errorf("%w: %s=%d is over the limit of %d", ErrTooLarge, f.name, n, maxFile)
		}
		*f.to = n
	}
	list := q.Get("ranges")
	if list == "" {
		if truncate < 0 && size < 0 {
			return nil, 0, 0, fmt.Errorf("%w: ranges= is empty and neither truncate= nor size= is given: nothing to change", ErrBadRequest)
		}
		return nil, truncate, size, checkRangesBody(0, body)
	}
	parts := strings.Split(list, ",")
	if len(parts) > MaxRanges {
		return nil, 0, 0, fmt.Errorf("%w: %d ranges; a PATCH carries at most %d", ErrBadRequest, len(parts), MaxRanges)
	}
	var total int64
	for _, p := range parts {
		o, l, ok := strings.Cut(p, ":")
		off, err1 := strconv.ParseInt(o, 10, 64)
		n, err2 := strconv.ParseInt(l, 10, 64)
		if !ok || err1 != nil || err2 != nil || off < 0 || n <= 0 {
			return nil, 0, 0, fmt.Errorf("%w: range %q: want OFFSET:LENGTH, a byte offset and a length over 0", ErrBadRequest, p)
		}
		if n > MaxWriteAt || off > maxFile-n {
			return nil, 0, 0, fmt.Errorf("%w: writing %d bytes at %d passes the limit of %d", ErrTooLarge, n, off, maxFile)
		}
		total += n
		if total > MaxWriteAt {
			return nil, 0, 0, fmt.Errorf("%w: the ranges carry over %d bytes; send them in several", ErrTooLarge, MaxWriteAt)
		}
		rs = append(rs, byteRange{off, n})
	}
	return rs, truncate, size, checkRangesBody(total, body)
}

func checkRangesBody(total, body int64) error {
	if body >= 0 && body != total {
		return fmt.Errorf("%w: the ranges add up to %d bytes but Content-Length says %d", ErrBadRequest, total, body)
	}
	return nil
}

// writeRanges changes a file's content in one commit: it is cut or
// extended to truncate= bytes, if given; then each range of the body is
// written at its offset, in order, as pwrite(2) does; then it is cut or
// extended to size=, if given; then the attributes op=setattr takes
// (mode, uid, gid, atime, mtime) are set, if given. A mount sends what a
// program wrote, truncated and changed of a file between two flushes
// this way.
func (s *Server) writeRanges(w http.ResponseWriter, r *http.Request, t target, q url.Values) {
	if q.Has("offset") {
		writeError(w, fmt.Errorf("%w: a PATCH takes offset= or ranges=, not both", ErrBadRequest))
		return
	}
	rs, truncate, size, err := parseRanges(q, s.cfg.MaxFileSize, r.ContentLength)
	if err != nil {
		writeError(w, err)
		return
	}
	var a *meta.SetAttr
	if q.Has("mode") || q.Has("uid") || q.Has("gid") || q.Has("atime") || q.Has("mtime") {
		if a, _, err = parseSetAttr(q); err != nil {
			writeError(w, err)
			return
		}
	}
	cond, err := writeConditions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := readPiece(r, 0, s.cfg.MaxFileSize)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := checkRangesBody(totalOf(rs), body.n); err != nil {
		writeError(w, err)
		return
	}
	// empty_at=G: the caller knows the file as empty at generation G, so
	// the change is computed without reading it first (the commit checks
	// the generation). Conditions need the file as it is.
	var known *meta.Inode
	if v := q.Get("empty_at"); v != "" {
		g, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, fmt.Errorf("%w: empty_at=%q: want a content generation", ErrBadRequest, v))
			return
		}
		if cond == (conditions{}) {
			known = &meta.Inode{Type: meta.TypeFile, Gen: g}
		}
	} else if !cond.any() {
		known = s.edits.get(r.Context(), t)
	}
	in, err := s.change(r.Context(), t, a, known, func(ctx context.Context, old meta.Inode) (*meta.Inode, error) {
		if !cond.holds(old, true) {
			return nil, fmt.Errorf("%s: %w: If-Match or If-None-Match does not hold", t, meta.ErrPrecondition)
		}
		edits := make([]edit, 0, len(rs)+2)
		if truncate >= 0 {
			edits = append(edits, edit{off: truncate, cut: true})
		}
		at := int64(0)
		for _, br := range rs {
			edits = append(edits, edit{off: br.off, p: piece{data: body.data[at : at+br.n], n: br.n}})
			at += br.n
		}
		if size >= 0 {
			edits = append(edits, edit{off: size, cut: true})
		}
		return s.splice(ctx, old, edits)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeStat(w, http.StatusOK, t.path, in)
}

func totalOf(rs []byteRange) (n int64) {
	for _, r := range rs {
		n += r.n
	}
	return n
}

// readPiece reads a write's body whole.
func readPiece(r *http.Request, off, maxFile int64) (piece, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxWriteAt+1))
	switch {
	case err != nil:
		return piece{}, bodyError(err, int64(len(data)), r.ContentLength)
	case len(data) > MaxWriteAt:
		return piece{}, fmt.Errorf("%w: a write at an offset carries at most %d bytes", ErrTooLarge, MaxWriteAt)
	case r.ContentLength >= 0 && int64(len(data)) != r.ContentLength:
		return piece{}, bodyError(nil, int64(len(data)), r.ContentLength)
	case off > maxFile-int64(len(data)):
		return piece{}, fmt.Errorf("%w: writing %d bytes at %d passes the limit of %d", ErrTooLarge, len(data), off, maxFile)
	}
	return piece{data: data, n: int64(len(data))}, nil
}

// streamPiece stores a write's body as chunks while it arrives, after
// checking that the write could commit now (a file the caller may write,
// conditions that hold), so that a refused one stores nothing.
func (s *Server) streamPiece(r *http.Request, t target, cond conditions) (piece, error) {
	ctx := r.Context()
	rr, err := s.read(ctx, wire.ReadLookup, t, meta.MayWrite)
	if err != nil {
		return piece{}, err
	}
	switch {
	case rr.Inode.Type == meta.TypeDir:
		return piece{}, fmt.Errorf("%s: %w", t, meta.ErrIsDir)
	case rr.Inode.Type == meta.TypeSymlink:
		return piece{}, fmt.Errorf("%w: %s is a symlink: its content is its target", meta.ErrInvalid, t)
	case rr.Inode.Type.Special():
		return piece{}, fmt.Errorf("%w: %s is a %s: it has no content", meta.ErrInvalid, t, rr.Inode.Type)
	case !cond.holds(rr.Inode, true):
		return piece{}, fmt.Errorf("%s: %w: If-Match or If-None-Match does not hold", t, meta.ErrPrecondition)
	}
	f, err := s.upload(ctx, r.Body, r.ContentLength, false)
	if err != nil {
		return piece{}, err
	}
	return piece{refs: f.Chunks, n: f.Size}, nil
}

// change commits new content for the file at t, computed by content from
// the file as it is now, together with the attributes a. If another
// change commits first, the content is computed again from that one.
// Each try is a proposal of its own ID, derived from the request's, so a
// retried request replays the same sequence and is still applied once.
// known, when set, is the file as the caller says it knows it (PATCH
// with empty_at=): the first try is computed from it without a read, and
// fails at the commit unless the file is still at its Gen.
func (s *Server) change(ctx context.Context, t target, a *meta.SetAttr, known *meta.Inode,
	content func(context.Context, meta.Inode) (*meta.Inode, error)) (*meta.Inode, error) {
	base := requestID(ctx)
	for try := 0; ; try++ {
		var old meta.Inode
		// noted: the file as the caller or this router noted it, not as
		// read. Where the note is stale the commit's check fails, but so
		// may the computation first (the chunks it names may be gone):
		// either way the change is computed again from a read.
		noted := try == 0 && known != nil
		if noted {
			old = *known // checked by the commit: its Gen, type and permissions
		} else {
			rr, err := s.read(ctx, wire.ReadLookup, t, meta.MayWrite)
			if err != nil {
				return nil, err
			}
			old = rr.Inode
		}
		switch old.Type {
		case meta.TypeDir:
			return nil, fmt.Errorf("%s: %w", t, meta.ErrIsDir)
		case meta.TypeSymlink:
			return nil, fmt.Errorf("%w: %s is a symlink: its content is its target", meta.ErrInvalid, t)
		}
		if old.Type.Special() {
			return nil, fmt.Errorf("%w: %s is a %s: it has no content", meta.ErrInvalid, t, old.Type)
		}
		file, err := content(ctx, old)
		if err == nil && file.Size > s.cfg.MaxFileSize {
			err = fmt.Errorf("%w: %d bytes is over the limit of %d", ErrTooLarge, file.Size, s.cfg.MaxFileSize)
		}
		if err == nil {
			// The chunks kept from a note are as noted, not as read: a
			// note of a retried request's answer may name another group's
			// copy than the one committed. Touching them all checks they
			// are there and keeps them, as every chunk of a commit must be
			// written or touched just before it.
			touch := newChunks(old.Chunks, file.Chunks)
			if noted {
				touch = file.Chunks
			}
			err = s.touchChunks(ctx, touch)
		}
		if err != nil {
			if noted && ctx.Err() == nil {
				s.cfg.Logger.Debug("change computed from a note of the file failed; reading the file", "target", t.String(), "err", err)
				// Nothing was proposed: the try that reads is still the
				// first, under the request's own ID, so that a retry of
				// the request is answered from its record.
				known, try = nil, try-1
				continue
			}
			return nil, err
		}
		op := meta.Op{Kind: meta.OpUpdate, Dir: t.at, Path: t.path, File: file, Gen: old.Gen, Attr: a, ReqID: tryID(base, try)}
		res, err := s.propose(ctx, op)
		if errors.Is(err, meta.ErrConflict) && try+1 < maxConflicts {
			s.cfg.Logger.Debug("file changed while a change was computed; computing it again", "target", t.String(), "try", try)
			continue
		}
		if err != nil {
			return nil, err
		}
		s.edits.put(ctx, t, res.Inode.Gen, file)
		return res.Inode, nil
	}
}

// newChunks lists the chunks of now that were not in before. Only those
// need touching before the commit: the others are referenced already,
// and if another change drops them first, this one fails its
// generation check and is computed again.
func newChunks(before, now []meta.ChunkRef) []meta.ChunkRef {
	had := make(map[meta.ChunkRef]bool, len(before))
	for _, c := range before {
		had[c] = true
	}
	var out []meta.ChunkRef
	for _, c := range now {
		if !had[c] {
			out = append(out, c)
		}
	}
	return out
}

// tryID is the request ID of try number try of one request.
func tryID(base string, try int) string {
	if try == 0 || base == "" {
		return base
	}
	suffix := "#" + strconv.Itoa(try)
	if len(base)+len(suffix) > meta.MaxRequestID {
		sum := sha256.Sum256([]byte(base))
		base = "h:" + hex.EncodeToString(sum[:16])
	}
	return base + suffix
}

// serveStatfs answers GET /v1/statfs with the cluster's room, as a mount's
// statfs(2) reports it.
func (s *Server) serveStatfs(w http.ResponseWriter, r *http.Request) {
	out := api.Statfs{ChunkSize: s.cfg.ChunkSize, InlineMax: s.cfg.InlineMax, MaxWrite: MaxWriteAt, ChunkUploads: true, MaxRanges: MaxRanges, MaxFileSize: s.cfg.MaxFileSize}
	unlimited := false
	for _, g := range GroupSpaces(s.cfg.Members()) {
		out.Groups++
		out.Used += g.Used
		if g.Free == Unlimited {
			unlimited = true
		} else {
			out.Free += g.Free
		}
	}
	out.Capacity = out.Used + out.Free
	if unlimited {
		out.Capacity, out.Free = -1, -1
	}
	writeJSON(w, http.StatusOK, out)
}
