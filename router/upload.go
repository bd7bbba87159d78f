package router

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"shoal/clock"
	"shoal/meta"
	"shoal/wire"
)

// spaceRecheck is how often a write waiting for room re-reads the gossip
// view for a group that has some (a new one formed from standbys, or one
// whose garbage collection freed space).
const spaceRecheck = 200 * time.Millisecond

// putFile streams the body into chunks: each chunk is stored on a majority
// of its group before the file's metadata is committed, in one atomic
// replace, so a reader never sees a file whose content is not durable.
// The query may set the file's mode (mode=0640) and mtime (mtime=Unix
// nanoseconds), If-Match and If-None-Match: * make it conditional, and
// Content-Type is kept to be served back. It answers with the file's stat.
func (s *Server) putFile(w http.ResponseWriter, r *http.Request, t target) {
	if t.path == "/" {
		writeError(w, fmt.Errorf("%s: %w: a PUT names a file in a directory", t, meta.ErrIsDir))
		return
	}
	if r.ContentLength > s.cfg.MaxFileSize {
		writeError(w, fmt.Errorf("%w: %d bytes is over the limit of %d", ErrTooLarge, r.ContentLength, s.cfg.MaxFileSize))
		return
	}
	op, cond, err := putOp(r, t)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	var file *meta.Inode
	if from := r.URL.Query().Get("from"); from != "" {
		file, err = s.contentOf(ctx, r, from)
	} else if r.ContentLength >= 0 && r.ContentLength <= int64(s.cfg.InlineMax) {
		// Small: no chunks to waste if the commit fails, so no check first.
		var data []byte
		if data, err = inlineBody(r.Body, r.ContentLength); err == nil {
			file = s.newInline(data)
		}
	} else {
		// Refuse early what would fail at commit (a directory there, a
		// caller who may not write, a condition that does not hold),
		// before storing any content.
		if err := s.checkPut(ctx, t, cond); err != nil {
			writeError(w, err)
			return
		}
		body, hashed := takeBody(r)
		file, err = s.upload(ctx, body, r.ContentLength, true)
		if err == nil {
			sum, _ := hex.DecodeString(file.Hash) // the content's SHA-256
			hashed(sum)
			err = s.touchChunks(ctx, file.Chunks)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if op.File.ContentType != "" || r.URL.Query().Get("from") == "" {
		file.ContentType = op.File.ContentType
	}
	op.File, op.Time = file, clock.Now().UnixNano()
	res, err := s.propose(ctx, op)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("ETag", `"`+file.Hash+`"`)
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	if res.Inode == nil {
		// Answered from the record of a request applied before answers
		// carried the file.
		w.WriteHeader(status)
		return
	}
	writeStat(w, status, t.path, res.Inode)
}

// contentOf is the content for a PUT ?from=SRC: SRC's, shared (no byte
// is copied), for a caller who may read SRC. Its chunks are marked fresh,
// as an upload's are, so that collection cannot take them before the
// commit even if SRC goes meanwhile.
func (s *Server) contentOf(ctx context.Context, r *http.Request, from string) (*meta.Inode, error) {
	if r.ContentLength != 0 {
		return nil, fmt.Errorf("%w: a PUT with from= takes its content from that file and carries no body", ErrBadRequest)
	}
	src, err := parseTarget(from, "")
	if err != nil {
		return nil, fmt.Errorf("from=: %w", err)
	}
	rr, err := s.read(ctx, wire.ReadLookup, src, meta.MayRead)
	if err != nil {
		return nil, err
	}
	in := rr.Inode
	if in.Type != meta.TypeFile {
		return nil, fmt.Errorf("%w: from=%s is a %s; only a file's content can be put", meta.ErrInvalid, src, in.Type)
	}
	if want := strings.Trim(r.URL.Query().Get("from_if_match"), `"`); want != "" && want != in.Hash {
		// The source changed since the caller checked it (another
		// upload wrote to the same partial file, say): putting it
		// would commit content the caller never meant.
		return nil, fmt.Errorf("%s: %w: from_if_match: its content is no longer %s", src, meta.ErrPrecondition, want)
	}
	if err := s.touchChunks(ctx, in.Chunks); err != nil {
		return nil, err
	}
	return &meta.Inode{Type: meta.TypeFile, Size: in.Size, Hash: in.Hash, Chunks: in.Chunks, Data: in.Data,
		DataKey: in.DataKey, ContentType: in.ContentType}, nil
}

// putOp reads what a PUT asks besides its content: the file's mode and
// mtime, its media type and the request's conditions. op.File carries
// only the media type.
func putOp(r *http.Request, t target) (meta.Op, conditions, error) {
	op := meta.Op{Kind: meta.OpPut, Dir: t.at, Path: t.path, File: &meta.Inode{}}
	q := r.URL.Query()
	var err error
	if v := q.Get("mode"); v != "" {
		if op.Mode, err = parseMode(v); err != nil {
			return op, conditions{}, err
		}
		op.ModeGiven = true
	}
	if v := q.Get("mtime"); v != "" {
		a := &meta.SetAttr{}
		if err := parseTime("mtime", v, a, meta.SetMTime, meta.SetMTimeNow, &a.MTime); err != nil {
			return op, conditions{}, err
		}
		op.Attr = a
	}
	if op.File.ContentType, err = mediaType(r.Header.Get("Content-Type")); err != nil {
		return op, conditions{}, err
	}
	cond, err := writeConditions(r)
	if err == nil {
		err = cond.apply(&op)
	}
	return op, cond, err
}

// checkPut refuses a large PUT that would fail at commit, before its body
// is stored: a directory at the path, a caller who may not write there, a
// condition that does not hold now.
func (s *Server) checkPut(ctx context.Context, t target, cond conditions) error {
	if _, err := s.read(ctx, wire.ReadCheckPut, t, 0); err != nil && !errors.Is(err, meta.ErrNotFound) {
		return err
	}
	if !cond.any() {
		return nil
	}
	rr, err := s.read(ctx, wire.ReadLookup, t, 0)
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		return err
	}
	var in meta.Inode
	if err == nil {
		in = rr.Inode
	}
	if !cond.holds(in, err == nil) {
		return fmt.Errorf("%s: %w: If-Match or If-None-Match does not hold", t, meta.ErrPrecondition)
	}
	return nil
}

// inlineBody reads a small body of the declared size whole: its content
// is kept in the file's metadata.
func inlineBody(body io.Reader, size int64) ([]byte, error) {
	buf := make([]byte, size+1)
	n, err := io.ReadFull(body, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: reading the request body: %w", ErrBadRequest, err)
	}
	if int64(n) != size || err == nil {
		return nil, fmt.Errorf("%w: body has %d bytes but Content-Length said %d", ErrBadRequest, n, size)
	}
	return buf[:n], nil
}

// chunkPool recycles the chunk buffers of downloads and of writes at an
// offset (uploads keep theirs with their share of the upload memory):
// clearing a fresh 4 MiB buffer for every request costs more CPU than the
// rest of a small one.
type chunkPool struct{ p sync.Pool }

func (c *chunkPool) get(size int) []byte {
	if b, ok := c.p.Get().(*[]byte); ok && len(*b) == size {
		return *b
	}
	return make([]byte, size)
}

func (c *chunkPool) put(b []byte) { c.p.Put(&b) }

// chunkDone is the outcome of storing one chunk.
type chunkDone struct {
	ref meta.ChunkRef // the chunk as stored, with its group
	err error
}

// firstFailure keeps the first error of stores that run at once: the
// failure that happened first is the cause the client is told, not a
// later one it brought about (a primary whose disk refused one chunk
// steps down, and the chunks sent to it next meet "not the primary").
type firstFailure struct {
	mu  sync.Mutex
	err error
}

// set keeps err if it is the first, or if the one kept is a member's
// "not the primary" and err is not: a primary that steps down for a
// failure (its disk refused a write) answers the chunks that come after
// with that, and the failure that made it step down is the one that says
// why.
func (f *firstFailure) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil || errors.Is(f.err, wire.ErrNotPrimary) && !errors.Is(err, wire.ErrNotPrimary) && !errors.Is(err, context.Canceled) {
		f.err = err
	}
}

func (f *firstFailure) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// uploadDepth is how many chunks of one upload are being stored at once:
// enough to keep the disks of several members busy while the next chunk
// is read, and memory bounded to uploadDepth+1 chunks per upload (and
// over all uploads by Config.UploadMemory).
const uploadDepth = 4

// refusals records, for one upload, the smallest chunk each group refused
// for lack of space: such a group is passed over for chunks as large,
// since its gossip tags may not show it full yet.
type refusals struct {
	mu   sync.Mutex
	full map[string]int64
}

func (r *refusals) excluded(need int64) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for g, refused := range r.full {
		out[g] = need >= refused
	}
	return out
}

func (r *refusals) refused(g string, need int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.full[g]; !ok || need < v {
		r.full[g] = need
	}
}

// upload cuts body into chunks and stores each in a group chosen by free
// space, several at a time while the next ones are read. A whole file
// (wholeFile) gets the SHA-256 of its content as its Hash, and is kept
// inline when small; a piece of a file (a write at an offset, a part of
// an S3 upload) is always chunks, and has no Hash.
func (s *Server) upload(ctx context.Context, body io.Reader, declared int64, wholeFile bool) (*meta.Inode, error) {
	type pending struct {
		idx  int
		done chan chunkDone
	}
	var queue []pending
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		// On failure, stop the writes in flight and wait for them.
		cancel()
		for _, p := range queue {
			<-p.done
		}
	}()
	// The whole content's SHA-256 names a file written whole (its ETag);
	// a piece of a file (a write at an offset) needs none.
	var whole hash.Hash = discardHash{}
	if wholeFile {
		whole = sha256.New()
	}
	file := &meta.Inode{Type: meta.TypeFile}
	refused := &refusals{full: map[string]int64{}}
	var failure firstFailure
	finish := func() error {
		p := queue[0]
		queue = queue[1:]
		d := <-p.done
		if d.err != nil {
			// The stores still in flight finish first (each is bounded by
			// its deadline): the one that says why may be among them.
			for _, q := range queue {
				<-q.done
			}
			queue = nil
			return failure.get()
		}
		file.Chunks[p.idx] = d.ref
		return nil
	}
	for i := 0; ; i++ {
		if len(queue) == uploadDepth {
			if err := finish(); err != nil {
				return nil, err
			}
		}
		// The next chunk is read only once there is memory for it: while
		// there is none, the client waits (backpressure).
		slot, err := s.takeChunkSlot(ctx)
		if err != nil {
			return nil, err
		}
		n, end, err := fill(body, slot.plain)
		if err != nil || end && declared >= 0 && file.Size+int64(n) != declared {
			// Checked before the piece is stored: a body cut short (a
			// client gone mid-upload) leaves no chunk of its last piece.
			s.putChunkSlot(slot)
			return nil, bodyError(err, file.Size+int64(n), declared)
		}
		if i == 0 && end && n <= s.cfg.InlineMax && wholeFile {
			in := s.newInline(bytes.Clone(slot.plain[:n]))
			s.putChunkSlot(slot)
			return in, nil
		}
		if n == 0 {
			s.putChunkSlot(slot)
		} else {
			file.Size += int64(n)
			if file.Size > s.cfg.MaxFileSize {
				s.putChunkSlot(slot)
				return nil, fmt.Errorf("%w: more than the limit of %d bytes", ErrTooLarge, s.cfg.MaxFileSize)
			}
			data := slot.plain[:n]
			whole.Write(data)
			idx := len(file.Chunks)
			file.Chunks = append(file.Chunks, meta.ChunkRef{})
			done := make(chan chunkDone, 1)
			go func() {
				// Sealing and hashing the chunk happen here, beside the
				// reading of the next one, not in the way of it.
				stored, ref := s.storedFormIn(slot.sealed, data)
				if s.cfg.Sealer != nil {
					slot.sealed = stored[:0]
				}
				g, err := s.storeChunk(ctx, refused, idx, ref.Hash, stored)
				// The slot goes back as soon as the chunk is stored, not
				// when the upload looks at the outcome: an upload waiting
				// for memory for its next chunk must not hold the memory
				// of the chunks it is done with.
				s.putChunkSlot(slot)
				if err != nil {
					failure.set(err)
				}
				ref.Group = g
				done <- chunkDone{ref: ref, err: err}
			}()
			queue = append(queue, pending{idx, done})
		}
		if end {
			break
		}
	}
	for len(queue) > 0 {
		if err := finish(); err != nil {
			return nil, err
		}
	}
	file.Hash = hex.EncodeToString(whole.Sum(nil))
	return file, nil
}

// discardHash is a hash.Hash that hashes nothing.
type discardHash struct{}

func (discardHash) Write(p []byte) (int, error) { return len(p), nil }
func (discardHash) Sum(b []byte) []byte         { return b }
func (discardHash) Reset()                      {}
func (discardHash) Size() int                   { return 0 }
func (discardHash) BlockSize() int              { return 1 }

// fill reads body into buf until buf is full or the body ends. Unlike
// io.ReadFull it tells a body's clean end (end, nil) from a body cut off
// (net/http's io.ErrUnexpectedEOF: shorter than its Content-Length, or a
// chunked body without its last chunk), which is an error.
func fill(body io.Reader, buf []byte) (n int, end bool, err error) {
	for n < len(buf) {
		m, err := body.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}

// bodyError describes a request body that failed after got bytes, or
// (err nil) ended at a length other than the declared one.
func bodyError(err error, got, declared int64) error {
	if declared >= 0 && (err == nil || errors.Is(err, io.ErrUnexpectedEOF)) {
		return fmt.Errorf("%w: body has %d bytes but Content-Length said %d", ErrBadRequest, got, declared)
	}
	return fmt.Errorf("%w: reading the request body after %d bytes: %w", ErrBadRequest, got, err)
}

// avoidFor is how long a group that failed to store a chunk (no majority
// answered, say) is passed over while another group can take chunks.
const avoidFor = 30 * time.Second

// groupAvoidance remembers the groups that failed to store a chunk, so
// that every upload does not wait for the same stalled group in turn.
type groupAvoidance struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (a *groupAvoidance) add(g string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.until == nil {
		a.until = map[string]time.Time{}
	}
	a.until[g] = now.Add(avoidFor)
}

// avoided reports whether g is avoided at now.
func (a *groupAvoidance) avoided(g string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return now.Before(a.until[g])
}

// addTo marks in exclude the groups avoided at now.
func (a *groupAvoidance) addTo(exclude map[string]bool, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for g, t := range a.until {
		if now.Before(t) {
			exclude[g] = true
		} else {
			delete(a.until, g)
		}
	}
}

// storeChunk places chunk idx and stores it through its group's primary,
// returning the group; groups that refused a chunk as large are passed
// over. A group that fails to store it (it has a primary but no majority
// answers, say) is passed over too, for this chunk and, for a while, for
// every upload, as long as another group can take it: the tries there are
// bounded by twice the RPC timeout and a second per MiB of the chunk
// (wire.ChunkTimeout). When no group has room, it waits up to SpaceWait
// for one.
func (s *Server) storeChunk(ctx context.Context, refused *refusals, idx int, h meta.Hash, data []byte) (string, error) {
	need := int64(len(data))
	if g := s.locate(ctx, h); g != "" && !refused.excluded(need)[g] {
		// Content some file already has goes where it is: writing an
		// existing chunk only refreshes it, and the cluster keeps one copy.
		err := s.writeChunk(ctx, g, h, data, 0)
		if err == nil {
			return g, nil
		}
		s.cfg.Logger.Debug("storing a known chunk in its group failed; placing it afresh", "group", g, "chunk", h, "err", err)
	}
	var waitFrom time.Time
	failed := map[string]bool{}
	for {
		groups := GroupSpaces(s.cfg.Members())
		exclude := refused.excluded(need)
		full := maps.Clone(exclude)
		for g := range failed {
			exclude[g] = true
		}
		s.avoid.addTo(exclude, time.Now())
		var g string
		var ok bool
		s.random(func(r *rand.Rand) { g, ok = Place(groups, need, exclude, r) })
		if !ok && len(exclude) > len(full) {
			// Only groups that failed lately are left: try them again.
			s.random(func(r *rand.Rand) { g, ok = Place(groups, need, full, r) })
		}
		if ok {
			exclude[g] = true
			var another bool
			s.random(func(r *rand.Rand) { _, another = Place(groups, need, exclude, r) })
			var bound time.Duration
			if another {
				bound = wire.ChunkTimeout(2*s.cfg.RPCTimeout, len(data))
			}
			err := s.writeChunk(ctx, g, h, data, bound)
			if err == nil {
				return g, nil
			}
			if errors.Is(err, errPassedOver) {
				continue
			}
			if another && !errors.Is(err, meta.ErrNoSpace) && ctx.Err() == nil {
				s.cfg.Logger.Warn("a group failed to store a chunk; placing it, and for a while new chunks, elsewhere",
					"group", g, "chunk", h, "avoid_for", avoidFor, "err", err)
				failed[g] = true
				s.avoid.add(g, time.Now())
				continue
			}
			if !errors.Is(err, meta.ErrNoSpace) {
				return "", fmt.Errorf("store chunk %d in group %q: %w", idx, g, err)
			}
			s.cfg.Logger.Info("group has no room for a chunk; placing it elsewhere", "group", g, "chunk", h, "bytes", need)
			refused.refused(g, need)
			continue
		}
		if waitFrom.IsZero() {
			waitFrom = time.Now()
		}
		if err := s.waitForRoom(ctx, groups, time.Since(waitFrom), idx, need); err != nil {
			return "", err
		}
	}
}

// errPassedOver: while a chunk waited for a send to its group, the group
// failed to store another chunk; it is placed again, elsewhere.
var errPassedOver = errors.New("group passed over while the chunk waited")

// writeChunk sends chunk h to group g's primary once one of this
// router's sends to g is free, so that time spent queueing behind other
// uploads is not taken from the write's deadline. Each try is bounded by
// wire.ChunkTimeout from when it is sent; tries go on while the outcome
// is unknown (a timeout) or the primary busy or changing, for
// RequestTimeout and one try more, or for bound when it is set. With a
// bound (another group could take the chunk), a group that failed to
// store another chunk while this one waited is not tried: errPassedOver.
func (s *Server) writeChunk(ctx context.Context, g string, h meta.Hash, data []byte, bound time.Duration) error {
	release, err := s.sends.take(ctx, g)
	if err != nil {
		return err
	}
	defer release()
	if bound > 0 && s.avoid.avoided(g, time.Now()) {
		return errPassedOver
	}
	attempt := wire.ChunkTimeout(s.cfg.RPCTimeout, len(data))
	total := s.cfg.RequestTimeout + attempt
	if bound > 0 {
		total = min(total, bound)
	}
	_, err = s.be.callWithin(ctx, g, func() wire.Message {
		return &wire.WriteChunk{Group: g, Hash: h, Data: data}
	}, true, attempt, total)
	return err
}

// waitForRoom sleeps until the next look at the gossip view, or fails
// once the wait is over: after SpaceWait when the groups are full (507),
// after RequestTimeout when no group has a primary, which is a failover
// rather than a full cluster (503).
func (s *Server) waitForRoom(ctx context.Context, groups []GroupSpace, waited time.Duration, idx int, need int64) error {
	limit := s.cfg.SpaceWait
	if !anyPrimary(groups) {
		limit = s.cfg.RequestTimeout
		if waited >= limit {
			return fmt.Errorf("%w: %w: no group has a live primary to store chunk %d (waited %v): an election may be in progress",
				ErrUnavailable, ErrNoPrimary, idx, limit)
		}
	}
	if waited >= limit {
		return fmt.Errorf("%w: every group is full: waited %v for room for chunk %d (%d bytes); delete files, add standbys so a new group can form, or give the storage nodes more room (disk space, --capacity)",
			meta.ErrNoSpace, limit, idx, need)
	}
	defer s.metrics.waiting()()
	t := time.NewTimer(min(spaceRecheck, limit-waited))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("store chunk %d: %w", idx, ctx.Err())
	case <-t.C:
		return nil
	}
}

// locate returns the group where some file already references chunk h,
// or "" if none does or the meta group cannot say quickly (it is a hint).
func (s *Server) locate(ctx context.Context, h meta.Hash) string {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RPCTimeout)
	defer cancel()
	rr, err := wire.As[*wire.ReadResp](s.be.metaCall(ctx, func(g string) wire.Message {
		return &wire.Read{Group: g, Kind: wire.ReadChunkGroups, Hashes: []meta.Hash{h}}
	}, true))
	if err != nil || len(rr.Located) != 1 {
		return ""
	}
	return rr.Located[0]
}

func anyPrimary(groups []GroupSpace) bool {
	for _, g := range groups {
		if g.Primary != "" {
			return true
		}
	}
	return false
}

// touchChunks asks each group holding some of the chunks to mark them
// fresh, so garbage collection cannot remove them between now and the
// commit that makes them referenced. A chunk already gone fails the upload:
// committing would make a file that cannot be read.
func (s *Server) touchChunks(ctx context.Context, chunks []meta.ChunkRef) error {
	byGroup := map[string][]meta.Hash{}
	seen := map[meta.ChunkRef]bool{}
	for _, c := range chunks {
		key := meta.ChunkRef{Hash: c.Hash, Group: c.Group}
		if c.Hole() || seen[key] {
			continue
		}
		seen[key] = true
		g := c.Group
		if g == "" {
			g = s.be.metaGroup()
		}
		byGroup[g] = append(byGroup[g], c.Hash)
	}
	names := make([]string, 0, len(byGroup))
	for g := range byGroup {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		tr, err := wire.As[*wire.TouchResp](s.be.call(ctx, g, func() wire.Message {
			return &wire.TouchChunks{Group: g, Hashes: byGroup[g]}
		}, true))
		if err != nil {
			return fmt.Errorf("keep the uploaded chunks in group %q: %w", g, err)
		}
		if len(tr.Missing) > 0 {
			return fmt.Errorf("%w: %d of the file's chunks (first %s) are gone from group %q, collected during a slow upload or lost: upload the file again",
				wire.ErrChunksMissing, len(tr.Missing), tr.Missing[0], g)
		}
	}
	return nil
}
