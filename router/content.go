package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"shoal/replication"
	"shoal/store"
)

// putFile streams the body into chunks: each chunk is stored on a majority
// of the group before the file's metadata is committed, in one atomic
// replace, so a reader never sees a file whose content is not durable.
// Memory use is one chunk, whatever the file's size.
func (s *Server) putFile(w http.ResponseWriter, r *http.Request, p string) {
	if p == "/" {
		writeError(w, fmt.Errorf("/: %w", store.ErrIsDir))
		return
	}
	if r.ContentLength > s.cfg.MaxFileSize {
		writeError(w, fmt.Errorf("%w: %d bytes is over the limit of %d", ErrTooLarge, r.ContentLength, s.cfg.MaxFileSize))
		return
	}
	ctx := r.Context()
	// Refuse early what would fail at commit, before uploading content.
	if rr, err := s.read(ctx, replication.ReadLookup, p); err == nil && rr.Inode.Type == store.TypeDir {
		writeError(w, fmt.Errorf("%s: %w", p, store.ErrIsDir))
		return
	}
	file, err := s.upload(ctx, r.Body, r.ContentLength)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.propose(ctx, store.Op{Kind: store.OpPut, Path: p, File: file, Time: time.Now().UnixNano()}, true)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("ETag", `"`+file.Hash+`"`)
	if res.Created {
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
}

// upload cuts body into chunks and stores each through the primary.
func (s *Server) upload(ctx context.Context, body io.Reader, declared int64) (*store.Inode, error) {
	buf := make([]byte, s.cfg.ChunkSize)
	whole := sha256.New()
	file := &store.Inode{Type: store.TypeFile}
	for {
		n, err := io.ReadFull(body, buf)
		if n > 0 {
			file.Size += int64(n)
			if file.Size > s.cfg.MaxFileSize {
				return nil, fmt.Errorf("%w: more than the limit of %d bytes", ErrTooLarge, s.cfg.MaxFileSize)
			}
			data := buf[:n]
			whole.Write(data)
			h := store.HashOf(data)
			_, cerr := s.be.call(ctx, func(g string) replication.Message {
				return &replication.WriteChunk{Group: g, Hash: h, Data: data}
			}, true)
			if cerr != nil {
				return nil, fmt.Errorf("store chunk %d: %w", len(file.Chunks), cerr)
			}
			file.Chunks = append(file.Chunks, store.ChunkRef{Hash: h, Size: int64(n)})
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading the request body: %v", ErrBadRequest, err)
		}
	}
	if declared >= 0 && file.Size != declared {
		return nil, fmt.Errorf("%w: body has %d bytes but Content-Length said %d", ErrBadRequest, file.Size, declared)
	}
	file.Hash = hex.EncodeToString(whole.Sum(nil))
	return file, nil
}

func (s *Server) head(w http.ResponseWriter, r *http.Request, p string) {
	rr, err := s.read(r.Context(), replication.ReadLookup, p)
	if err != nil {
		status, _ := statusOf(err)
		w.WriteHeader(status)
		return
	}
	setFileHeaders(w, rr.Inode)
	w.WriteHeader(http.StatusOK)
}

func setFileHeaders(w http.ResponseWriter, in store.Inode) {
	h := w.Header()
	h.Set("X-Shoal-Type", in.Type.String())
	h.Set("Last-Modified", time.Unix(0, in.MTime).UTC().Format(http.TimeFormat))
	if in.Type == store.TypeFile {
		h.Set("Content-Length", strconv.FormatInt(in.Size, 10))
		h.Set("ETag", `"`+in.Hash+`"`)
		h.Set("Accept-Ranges", "bytes")
	}
}

// listingJSON is the answer of GET on a directory.
type listingJSON struct {
	Path    string      `json:"path"`
	Entries []entryJSON `json:"entries"`
}

type entryJSON struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Size  int64  `json:"size"`
	MTime string `json:"mtime"`
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, p string) {
	ctx := r.Context()
	rr, err := s.read(ctx, replication.ReadLookup, p)
	if err != nil {
		writeError(w, err)
		return
	}
	if rr.Inode.Type == store.TypeDir {
		s.list(w, r, p)
		return
	}
	in := rr.Inode
	etag := `"` + in.Hash + `"`
	if match := r.Header.Get("If-None-Match"); match != "" && (match == etag || match == "*") {
		w.Header().Set("ETag", etag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	start, end, partial, err := parseRange(r.Header.Get("Range"), in.Size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", in.Size))
		writeJSON(w, http.StatusRequestedRangeNotSatisfiable, apiError{Error: "bad_range", Message: err.Error()})
		return
	}
	setFileHeaders(w, in)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
	status := http.StatusOK
	if partial {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, in.Size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	if err := s.streamRange(ctx, w, in, start, end); err != nil {
		// The status line is gone: the only honest signal left is to cut
		// the connection, so the client sees a short body.
		s.cfg.Logger.Warn("read aborted", "path", p, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, p string) {
	rr, err := s.read(r.Context(), replication.ReadReadDir, p)
	if err != nil {
		writeError(w, err)
		return
	}
	out := listingJSON{Path: p, Entries: make([]entryJSON, 0, len(rr.Entries))}
	for _, e := range rr.Entries {
		out.Entries = append(out.Entries, entryJSON{Name: e.Name, Type: e.Type.String(), Size: e.Size, MTime: rfc3339(e.MTime)})
	}
	w.Header().Set("X-Shoal-Type", "dir")
	writeJSON(w, http.StatusOK, out)
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
			end = min(e+1, size)
		}
	}
	if start >= size {
		return 0, 0, false, fmt.Errorf("range %q starts beyond the file's %d bytes", h, size)
	}
	return start, end, true, nil
}

// streamRange writes bytes [start, end) of the file, fetching the next
// chunk while the current one is written.
func (s *Server) streamRange(ctx context.Context, w io.Writer, in store.Inode, start, end int64) error {
	type fetched struct {
		data []byte
		err  error
	}
	var off int64
	var pending []chan fetched
	var spans [][2]int64
	for _, c := range in.Chunks {
		cs, ce := off, off+c.Size
		off = ce
		if ce <= start || cs >= end {
			continue
		}
		pending = append(pending, make(chan fetched, 1))
		spans = append(spans, [2]int64{max(start, cs) - cs, min(end, ce) - cs})
	}
	// One chunk ahead: enough to overlap network and writes, bounded memory.
	const ahead = 2
	hashes := chunksIn(in.Chunks, start, end)
	launch := func(i int) {
		go func() {
			b, err := s.fetchChunk(ctx, hashes[i])
			pending[i] <- fetched{b, err}
		}()
	}
	for i := 0; i < len(pending) && i < ahead; i++ {
		launch(i)
	}
	for i := range pending {
		f := <-pending[i]
		if i+ahead < len(pending) {
			launch(i + ahead)
		}
		if f.err != nil {
			return f.err
		}
		if _, err := w.Write(f.data[spans[i][0]:spans[i][1]]); err != nil {
			return err
		}
	}
	return nil
}

func chunksIn(cs []store.ChunkRef, start, end int64) []store.Hash {
	var out []store.Hash
	var off int64
	for _, c := range cs {
		if off+c.Size > start && off < end {
			out = append(out, c.Hash)
		}
		off += c.Size
	}
	return out
}

// fetchChunk reads a chunk from the first member that returns it intact:
// the primary, then the other live members.
func (s *Server) fetchChunk(ctx context.Context, h store.Hash) ([]byte, error) {
	ms := s.cfg.Members()
	group, err := s.be.metaGroup(ms)
	if err != nil {
		return nil, err
	}
	var last error = fmt.Errorf("%w: no live member of group %q", ErrUnavailable, group)
	for _, addr := range chunkSources(ms, group) {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.RPCTimeout)
		resp, err := s.cfg.Transport.Call(cctx, addr, &replication.GetChunk{Hash: h})
		cancel()
		if err != nil {
			last = err
			continue
		}
		c, ok := resp.(*replication.ChunkMsg)
		if !ok || store.HashOf(c.Data) != h {
			last = fmt.Errorf("chunk %s from %s: %w", h, addr, store.ErrCorrupt)
			continue
		}
		return c.Data, nil
	}
	return nil, fmt.Errorf("read chunk %s: %w", h, last)
}
