package router

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"shoal/api"
	"shoal/meta"
	"shoal/wire"
)

// Uploads that send only what changed. A client cuts its copy of a file
// at the cluster's chunk size and hashes each chunk; POST ?op=match tells
// it which chunks a file it can read already holds at the same offsets.
// It then writes only the others into a file of its own (a copy of the
// old version, or what an interrupted upload left) with PATCH, and puts
// that file's content in place with PUT ?from=, which moves no bytes. The
// comparison is only ever against a file the caller may read, so it
// reveals nothing a read would not: content is never taken on a hash
// alone, which would let anyone who learned a hash read the chunk.

// maxMatchBody bounds a match request's body: MaxMatchSums hex sums and
// the rest of the JSON.
const maxMatchBody = api.MaxMatchSums*70 + 4096

// match answers POST ?op=match (see api.MatchRequest).
func (s *Server) match(w http.ResponseWriter, r *http.Request, t target) {
	req, sums, err := readMatch(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rr, err := s.read(r.Context(), wire.ReadLookup, t, meta.MayRead)
	if err != nil {
		writeError(w, err)
		return
	}
	in := rr.Inode
	if in.Type != meta.TypeFile {
		writeError(w, fmt.Errorf("%w: %s is a %s; only files have content to compare", meta.ErrInvalid, t, in.Type))
		return
	}
	at := make(map[int64]meta.ChunkRef, len(in.Chunks))
	var off int64
	for _, c := range in.Chunks {
		at[off] = c
		off += c.Size
	}
	out := api.MatchResult{Path: t.path, Size: in.Size, Hash: in.Hash, Same: make([]bool, len(sums))}
	for i, sum := range sums {
		off := (req.First + int64(i)) * req.ChunkSize
		c, ok := at[off]
		out.Same[i] = ok && !c.Hole() && c.Size == min(req.ChunkSize, req.Size-off) && s.sameChunk(c, sum)
	}
	writeJSON(w, http.StatusOK, out)
}

// readMatch reads and checks a match request's body.
func readMatch(r *http.Request) (api.MatchRequest, []meta.Hash, error) {
	var req api.MatchRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxMatchBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("cut short or over %d bytes", maxMatchBody)
		}
		return req, nil, fmt.Errorf("%w: a match body is JSON {\"size\",\"chunk_size\",\"first\",\"sums\"}: %w", ErrBadRequest, err)
	}
	switch {
	case req.ChunkSize <= 0 || req.ChunkSize > MaxChunkSize:
		return req, nil, fmt.Errorf("%w: chunk_size %d is not in 1..%d", ErrBadRequest, req.ChunkSize, MaxChunkSize)
	case req.Size < 0 || req.First < 0:
		return req, nil, fmt.Errorf("%w: size and first cannot be negative", ErrBadRequest)
	case len(req.Sums) > api.MaxMatchSums:
		return req, nil, fmt.Errorf("%w: %d sums is over the limit of %d a request", ErrBadRequest, len(req.Sums), api.MaxMatchSums)
	}
	chunks := req.Size / req.ChunkSize
	if req.Size%req.ChunkSize != 0 {
		chunks++
	}
	if last := req.First + int64(len(req.Sums)) - 1; len(req.Sums) > 0 && (req.First >= chunks || last >= chunks) {
		return req, nil, fmt.Errorf("%w: chunks %d to %d asked of %d bytes cut at %d: past the end", ErrBadRequest,
			req.First, last, req.Size, req.ChunkSize)
	}
	sums := make([]meta.Hash, len(req.Sums))
	for i, h := range req.Sums {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != len(sums[i]) {
			return req, nil, fmt.Errorf("%w: sums[%d] %q is not a hex SHA-256", ErrBadRequest, i, h)
		}
		copy(sums[i][:], b)
	}
	return req, sums, nil
}
