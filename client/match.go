package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"shoal/api"
)

// MatchRequest asks which chunks of a local copy a file already holds
// (POST ?op=match); MatchResult answers it. See Client.Match.
type (
	MatchRequest = api.MatchRequest
	MatchResult  = api.MatchResult
)

// MaxMatchSums is the most chunks one Match may ask about.
const MaxMatchSums = api.MaxMatchSums

// Match tells, for chunks First, First+1, ... of a copy of Size bytes cut
// at ChunkSize (the cluster's, from Statfs), whether the file at path
// holds the same bytes at the same offset. Sums are each chunk's hex
// SHA-256; at most MaxMatchSums a call. Only a file the caller may read
// can be compared.
func (c *Client) Match(ctx context.Context, path string, req MatchRequest) (MatchResult, error) {
	var out MatchResult
	body, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	resp, err := c.send(ctx, request{
		method: http.MethodPost, what: path, url: c.fsURL(path, url.Values{"op": {"match"}}),
		header: http.Header{"Content-Type": {"application/json"}},
		body:   bytes.NewReader(body), size: int64(len(body)), bound: boundWhole,
	})
	if err != nil {
		return out, err
	}
	return out, decodeJSON(resp, path, &out)
}

// WriteAtPath writes data at byte off of the file at path, extending it
// like pwrite(2), only while the file's entity tag is ifMatch (unless
// ifMatch is ""); otherwise it fails with an error matching
// ErrPrecondition and changes nothing. data is at most Statfs.MaxWrite
// bytes. It returns the file's stat after the write.
func (c *Client) WriteAtPath(ctx context.Context, path string, off int64, data []byte, ifMatch string) (Stat, error) {
	return c.writeAt(ctx, path, off, bytes.NewReader(data), int64(len(data)), ifMatch)
}

// writeAt is WriteAtPath of size bytes read from body (a seeker, so that
// a retried request sends it again).
func (c *Client) writeAt(ctx context.Context, path string, off int64, body io.Reader, size int64, ifMatch string) (Stat, error) {
	h := http.Header{}
	if ifMatch != "" {
		h.Set("If-Match", quoteETag(ifMatch))
	}
	var st Stat
	resp, err := c.send(ctx, request{
		method: http.MethodPatch, what: path, url: c.fsURL(path, url.Values{"offset": {strconv.FormatInt(off, 10)}}),
		header: h, body: body, size: size, bound: boundAfterUpload,
	})
	if err != nil {
		return st, err
	}
	return st, decodeJSON(resp, path, &st)
}
