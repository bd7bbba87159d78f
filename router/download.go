package router

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"shoal/api"
	"shoal/gossip"
	"shoal/meta"
	"shoal/wire"
)

func (s *Server) head(w http.ResponseWriter, r *http.Request, t target) {
	rr, err := s.read(r.Context(), wire.ReadLookup, t, 0)
	if err != nil {
		status, _ := statusOf(err)
		w.WriteHeader(status)
		return
	}
	setFileHeaders(w, t, rr.Inode)
	if rr.Inode.Type == meta.TypeFile && notModified(r, `"`+rr.Inode.Hash+`"`, utc(rr.Inode.MTime)) {
		w.Header().Del("Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// maxMediaType bounds the Content-Type an upload may store.
const maxMediaType = 256

// mediaType checks the Content-Type of an upload and returns it in its
// canonical form ("" for none): it is stored with the file and served back.
func mediaType(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if len(v) > maxMediaType {
		return "", fmt.Errorf("%w: Content-Type of %d bytes: at most %d", ErrBadRequest, len(v), maxMediaType)
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", fmt.Errorf("%w: Content-Type %q: %v (want a media type such as text/plain; charset=utf-8)", ErrBadRequest, v, err)
	}
	out := mime.FormatMediaType(mt, params)
	if out == "" {
		// A parameter FormatMediaType cannot write back (a name that is
		// no token): refused rather than stored as no type at all.
		return "", fmt.Errorf("%w: Content-Type %q cannot be kept as given (want a media type such as text/plain; charset=utf-8)", ErrBadRequest, v)
	}
	return out, nil
}

// contentType is what a file is served as: the type it was uploaded with,
// else one guessed from its name's extension, else bytes. A guess never
// names a type a browser runs (a page, an image that scripts, a script):
// whoever uploaded page.html without saying what it is gets it back as
// bytes. A type given at upload is served as given, under the sandbox
// policy setFileHeaders sets.
func contentType(t target, in meta.Inode) string {
	if in.ContentType != "" {
		return in.ContentType
	}
	if t.at == 0 {
		ct := mime.TypeByExtension(path.Ext(t.path))
		mt, _, _ := strings.Cut(ct, ";")
		switch {
		case ct == "", strings.Contains(mt, "html"), strings.Contains(mt, "xml"), strings.Contains(mt, "script"):
		default:
			return ct
		}
	}
	return "application/octet-stream"
}

// setFileHeaders describes a file's inode. Every answer carrying a
// file's bytes also tells browsers never to guess a type from them nor run
// them as a page: the console shares the router's origin, and an uploaded
// HTML or SVG file opened there must not read the token it keeps.
//
// The header is set by its canonical keys, the values in one slice:
// Header.Set would canonicalize each key and allocate each value's own,
// about 6% of a router's CPU under small reads.
func setFileHeaders(w http.ResponseWriter, t target, in meta.Inode) {
	h := w.Header()
	v := make([]string, 0, 9)
	set := func(key, value string) {
		v = append(v, value)
		h[key] = v[len(v)-1 : len(v) : len(v)]
	}
	set("X-Content-Type-Options", "nosniff")
	set("Content-Security-Policy", "sandbox")
	set("X-Shoal-Type", in.Type.String())
	set("Last-Modified", time.Unix(0, in.MTime).UTC().Format(http.TimeFormat))
	set("X-Shoal-Ino", strconv.FormatUint(in.Ino, 10))
	if in.Type == meta.TypeSymlink {
		set("X-Shoal-Target", url.PathEscape(in.Target))
	}
	if in.Type == meta.TypeFile {
		set("Content-Type", contentType(t, in))
		set("Content-Length", strconv.FormatInt(in.Size, 10))
		set("Etag", `"`+in.Hash+`"`)
		set("Accept-Ranges", "bytes")
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, t target) {
	ctx := r.Context()
	rr, err := s.read(ctx, wire.ReadLookup, t, meta.MayRead)
	if err != nil {
		writeError(w, err)
		return
	}
	switch rr.Inode.Type {
	case meta.TypeDir:
		w.Header().Set("X-Shoal-Ino", strconv.FormatUint(rr.Inode.Ino, 10))
		s.list(w, r, t)
		return
	case meta.TypeSymlink:
		// A symlink's content is where it points; the API never follows it.
		setFileHeaders(w, t, rr.Inode)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(rr.Inode.Target)))
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, rr.Inode.Target)
		return
	}
	if rr.Inode.Type.Special() {
		writeError(w, fmt.Errorf("%w: %s is a %s: it has attributes (op=stat) but no content to read", ErrBadRequest, t.path, rr.Inode.Type))
		return
	}
	in := rr.Inode
	if readMismatch(r, `"`+in.Hash+`"`) {
		writeError(w, fmt.Errorf("%s: %w: If-Match names another version than the file's now", t, meta.ErrPrecondition))
		return
	}
	if notModified(r, `"`+in.Hash+`"`, utc(in.MTime)) {
		setFileHeaders(w, t, in)
		w.Header().Del("Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if err := s.checkKeys(in); err != nil {
		writeError(w, err)
		return
	}
	start, end, partial, err := parseRange(r.Header.Get("Range"), in.Size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", in.Size))
		writeJSON(w, http.StatusRequestedRangeNotSatisfiable, api.ErrorBody{Code: api.CodeBadRange, Message: err.Error()})
		return
	}
	s.sendRange(w, r, in, start, end, partial, func() { setFileHeaders(w, t, in) }, func(err error) { writeError(w, err) })
}

// sendRange answers r with bytes [start, end) of the file in (the whole
// file unless partial): setHeaders sets the answer's headers, sent with
// the status once the first bytes are at hand; HEAD, an empty answer or
// an inode that is no file gets the headers alone. An error before the
// headers are sent (the first chunk's group is down, say) is answered by
// fail, with a status the client can retry on. After that the status
// line is gone, and the only honest signal left is to cut the
// connection, so the client sees a short body.
func (s *Server) sendRange(w http.ResponseWriter, r *http.Request, in meta.Inode, start, end int64, partial bool,
	setHeaders func(), fail func(error)) {
	started := false
	begin := func() {
		started = true
		setHeaders()
		w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
		status := http.StatusOK
		if partial {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, in.Size))
			status = http.StatusPartialContent
		}
		w.WriteHeader(status)
	}
	if r.Method == http.MethodHead || start == end || in.Type != meta.TypeFile {
		begin()
		return
	}
	if err := s.streamRange(r.Context(), w, in, start, end, begin); err != nil {
		if !started {
			fail(err)
			return
		}
		s.cfg.Logger.Warn("read aborted", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// list answers GET on a directory. The whole listing is read from the
// meta group in pages of wire.MaxDirPage entries, each a read of its own,
// and streamed as it comes, so a directory of any size is listed with
// bounded memory on every node and no long read on the primary. With
// ?limit=N (at most wire.MaxDirPage) the answer is one page, with "next"
// set when more follow: pass it as ?after= for the next page. Entries come
// in name order; a listing that spans pages is not one snapshot: a name
// added or removed meanwhile may or may not appear.
func (s *Server) list(w http.ResponseWriter, r *http.Request, t target) {
	q := r.URL.Query()
	after, limit := q.Get("after"), 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > wire.MaxDirPage {
			writeError(w, fmt.Errorf("%w: limit=%q: give 1 to %d entries", ErrBadRequest, v, wire.MaxDirPage))
			return
		}
		limit = n
	}
	page := func(after string) (*wire.ReadResp, error) {
		rr, err := s.metaRead(r.Context(), &wire.Read{Kind: wire.ReadReadDir, Dir: t.at, Path: t.path, Cred: credOf(r.Context()), AfterName: after, Limit: limit})
		if err != nil && rr != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		return rr, err
	}
	rr, err := page(after)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("X-Shoal-Type", "dir")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	path, _ := json.Marshal(t.path)
	fmt.Fprintf(bw, "{\n  \"path\": %s,\n  \"entries\": [", path)
	n := 0
	var b []byte
	for {
		for i := range rr.Entries {
			if n > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString("\n    ")
			b = appendEntryJSON(b[:0], rr.Entries[i].Name, &rr.Entries[i].Inode)
			bw.Write(b)
			n++
		}
		if len(rr.Entries) > 0 {
			after = rr.Entries[len(rr.Entries)-1].Name
		}
		if !rr.More || limit > 0 {
			break
		}
		if err := bw.Flush(); err != nil {
			return // the client went away
		}
		if rr, err = page(after); err != nil {
			// The status line is gone: cut the connection, so the
			// client sees a listing cut short, not a whole one.
			s.cfg.Logger.Warn("listing aborted", "path", t.String(), "entries_sent", n, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	if n > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteByte(']')
	if limit > 0 && rr.More {
		next, _ := json.Marshal(after)
		fmt.Fprintf(bw, ",\n  \"next\": %s", next)
	}
	bw.WriteString("\n}\n")
	bw.Flush()
}

// parseRange reads a single "bytes=" range; anything else serves the whole
// file, which RFC 9110 allows. It returns [start, end) and whether the
// answer is partial.
func parseRange(h string, size int64) (int64, int64, bool, error) {
	if h == "" || !strings.HasPrefix(h, "bytes=") || strings.Contains(h, ",") {
		return 0, size, false, nil
	}
	spec := strings.TrimSpace(strings.TrimPrefix(h, "bytes="))
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, size, false, nil
	}
	var start, end int64
	switch {
	case a == "": // suffix: the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, fmt.Errorf("range %q is not satisfiable", h)
		}
		start, end = max(0, size-n), size
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 {
			return 0, size, false, nil
		}
		start, end = s, size
		if b != "" {
			e, err := strconv.ParseInt(b, 10, 64)
			if err != nil || e < s {
				return 0, size, false, nil
			}
			// min before +1: e may be math.MaxInt64, and e+1 would wrap
			// to a negative end.
			end = min(e, size-1) + 1
		}
	}
	if start >= size {
		return 0, 0, false, fmt.Errorf("range %q starts beyond the file's %d bytes", h, size)
	}
	return start, end, true, nil
}

// readAhead is how many chunks a read fetches ahead of the one it writes:
// enough to keep several members busy, and memory bounded to a few chunks.
const readAhead = 4

// readReserve is how many of n read slots a read leaves free for others
// when it fetches ahead: a quarter, at least one. A read that holds none
// may take the last (it waits for one), so every read moves.
func readReserve(n int) int { return max(1, n/4) }

// maxRepairs bounds the read repairs in flight at once.
const maxRepairs = 16

// streamRange writes bytes [start, end) of the file, fetching up to
// readAhead chunks while the current one is written. It calls begin, if
// given, once the first bytes are in hand and before it writes them: an
// error before that has written nothing.
func (s *Server) streamRange(ctx context.Context, w io.Writer, in meta.Inode, start, end int64, begin func()) error {
	if begin == nil {
		begin = func() {}
	}
	// Writing to a client: no write may wait longer than BodyTimeout for
	// the client to take bytes (the stall bound bodies have too), so one
	// that stops reading gives back the memory of its chunks.
	var stall func()
	if rw, ok := w.(http.ResponseWriter); ok && s.cfg.BodyTimeout > 0 {
		rc := http.NewResponseController(rw)
		stall = func() { rc.SetWriteDeadline(time.Now().Add(s.cfg.BodyTimeout)) }
		defer rc.SetWriteDeadline(time.Time{}) // the connection's next request has none
	}
	if len(in.Chunks) == 0 {
		if err := s.openInline(&in); err != nil {
			return err
		}
		if int64(len(in.Data)) < end {
			return fmt.Errorf("%w: file of %d bytes has %d inline and no chunks", meta.ErrCorrupt, in.Size, len(in.Data))
		}
		begin()
		_, err := w.Write(in.Data[start:end])
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the fetches ahead when the client goes away
	type fetched struct {
		data []byte
		err  error
	}
	type part struct {
		ref      meta.ChunkRef
		from, to int64 // the bytes of the chunk to write
		ch       chan fetched
	}
	var parts []part
	var off int64
	for _, c := range in.Chunks {
		cs, ce := off, off+c.Size
		off = ce
		if ce <= start || cs >= end {
			continue
		}
		parts = append(parts, part{ref: c, from: max(start, cs) - cs, to: min(end, ce) - cs, ch: make(chan fetched, 1)})
	}
	launch := func(i int) {
		if parts[i].ref.Hole() {
			parts[i].ch <- fetched{}
			return
		}
		go func() {
			var dst []byte
			if parts[i].ref.Key != 0 {
				dst = s.bufs.get(s.cfg.ChunkSize)[:0]
			}
			b, err := s.chunkContent(ctx, parts[i].ref, dst)
			parts[i].ch <- fetched{b, err}
		}()
	}
	// Each chunk launched holds a read slot until it is written (or the
	// read ends): the chunks ahead only when a slot is free, the next one
	// to write by waiting for one when the read holds none.
	next, held := 0, 0
	defer func() {
		for range held {
			<-s.readSlots
		}
	}()
	fill := func() error {
		for next < len(parts) && held <= readAhead {
			if held == 0 {
				select {
				case s.readSlots <- struct{}{}:
				case <-ctx.Done():
					return fmt.Errorf("waiting for read memory (--read-memory) to fetch a chunk: %w", ctx.Err())
				}
			} else {
				// Ahead only while others keep room: a read whose client
				// stops taking bytes holds its slots until the write
				// stall bound cuts it, and must not hold them all.
				if cap(s.readSlots)-len(s.readSlots) <= readReserve(cap(s.readSlots)) {
					return nil
				}
				select {
				case s.readSlots <- struct{}{}:
				default:
					return nil
				}
			}
			held++
			launch(next)
			next++
		}
		return nil
	}
	// The opened copies come from the pool and go back once written; the
	// fetches ahead still running when a read fails are left to the GC.
	for i, p := range parts {
		if err := fill(); err != nil {
			return err
		}
		f := <-p.ch
		if f.err != nil {
			return f.err
		}
		if i == 0 {
			begin()
		}
		if stall != nil {
			stall()
		}
		var err error
		if p.ref.Hole() {
			err = writeZeros(w, p.to-p.from, stall)
		} else {
			_, err = w.Write(f.data[p.from:p.to])
		}
		if p.ref.Key != 0 && cap(f.data) == s.cfg.ChunkSize {
			s.bufs.put(f.data[:cap(f.data)])
		}
		<-s.readSlots
		held--
		if err != nil {
			return err
		}
	}
	if len(parts) == 0 {
		begin()
	}
	return nil
}

// zeroBlock is what a hole is read from.
var zeroBlock = make([]byte, 256<<10)

// writeZeros writes n zero bytes (part of a hole) to w, renewing the
// stall bound (if any) as they go.
func writeZeros(w io.Writer, n int64, stall func()) error {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		if _, err := w.Write(zeroBlock[:k]); err != nil {
			return err
		}
		n -= k
		if stall != nil {
			stall()
		}
	}
	return nil
}

// fetchChunk reads a chunk from the first live member of its group that
// returns it intact, trying them in a random order so reads spread over
// the group. Members that answered not-found or corrupt, or sent bytes
// that do not match their checksum or hash, get the good copy back in the
// background.
func (s *Server) fetchChunk(ctx context.Context, ref meta.ChunkRef) ([]byte, error) {
	group := ref.Group
	if group == "" { // written before chunks were spread over groups
		group = s.be.metaGroup()
	}
	srcs := gossip.LiveMembers(s.cfg.Members(), group)
	if len(srcs) == 0 {
		return nil, fmt.Errorf("read chunk %s: %w", ref.Hash, s.be.noMember(group))
	}
	s.random(func(r *rand.Rand) { r.Shuffle(len(srcs), func(i, j int) { srcs[i], srcs[j] = srcs[j], srcs[i] }) })
	var bad []gossip.Member
	var errs []string
	for _, m := range srcs {
		data, err := s.getChunk(ctx, m.Addr, ref.Hash)
		if err == nil {
			if len(bad) > 0 {
				s.repair(bad, ref.Hash, data)
			}
			return data, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read chunk %s: %w", ref.Hash, ctx.Err())
		}
		errs = append(errs, fmt.Sprintf("%s: %v", m.Name, err))
		if errors.Is(err, meta.ErrNotFound) || errors.Is(err, meta.ErrCorrupt) {
			bad = append(bad, m)
		}
	}
	return nil, fmt.Errorf("%w: read chunk %s: no live member of group %q has an intact copy (%s)",
		ErrUnavailable, ref.Hash, group, strings.Join(errs, "; "))
}

// getChunk reads a chunk from one member and verifies it: against the
// CRC-32C the member keeps with it, or, from a member that sends none,
// against its hash.
func (s *Server) getChunk(ctx context.Context, addr string, h meta.Hash) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.RPCTimeout)
	defer cancel()
	c, err := wire.Call[*wire.ChunkMsg](cctx, s.cfg.Transport, addr, &wire.GetChunk{Hash: h, CallerChecks: true})
	if err != nil {
		return nil, err
	}
	if c.HasCRC {
		if meta.ChunkCRC(c.Data) != c.CRC {
			return nil, fmt.Errorf("chunk %s from %s does not match its checksum: %w", h, addr, meta.ErrCorrupt)
		}
		return c.Data, nil
	}
	if meta.HashOf(c.Data) != h {
		return nil, fmt.Errorf("chunk %s from %s does not match its hash: %w", h, addr, meta.ErrCorrupt)
	}
	return c.Data, nil
}

// repair sends a verified chunk to the members that lacked it or held a
// bad copy. It runs in the background, each send bounded by RPCTimeout,
// so the read does not wait; a repair that cannot start (too many in
// flight) or fails is left to the group's own repair.
func (s *Server) repair(bad []gossip.Member, h meta.Hash, data []byte) {
	for _, m := range bad {
		select {
		case s.repairSlots <- struct{}{}:
		default:
			s.cfg.Logger.Debug("read repair skipped: too many in flight", "member", m.Name, "chunk", h)
			continue
		}
		s.repairs.Add(1)
		go func() {
			defer s.repairs.Done()
			defer func() { <-s.repairSlots }()
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RPCTimeout)
			defer cancel()
			if _, err := s.cfg.Transport.Call(ctx, m.Addr, &wire.StoreChunk{Hash: h, Data: data, Replace: true}); err != nil {
				s.cfg.Logger.Warn("read repair failed", "member", m.Name, "addr", m.Addr, "chunk", h, "err", err)
				return
			}
			s.cfg.Logger.Info("repaired chunk", "member", m.Name, "addr", m.Addr, "chunk", h)
		}()
	}
}
