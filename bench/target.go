package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"shoal/client"
)

// fileSystem is what the ops, small, large and meta workloads measure:
// a Shoal cluster through its client, or a SeaweedFS filer through its
// HTTP API, so that both are measured by the same code on the same
// machine. Paths are absolute; a missing file is client.ErrNotFound.
type fileSystem interface {
	Healthy(ctx context.Context) error
	// MkdirAll makes path and its missing parents.
	MkdirAll(ctx context.Context, path string) error
	Put(ctx context.Context, path string, body io.Reader, size int64) error
	Get(ctx context.Context, path string) (io.ReadCloser, error)
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Stat returns the size of the file at path.
	Stat(ctx context.Context, path string) (int64, error)
	Exists(ctx context.Context, path string) (bool, error)
	Copy(ctx context.Context, src, dst string) error
	Rename(ctx context.Context, src, dst string) error
	Delete(ctx context.Context, path string, recursive bool) error
	// Count lists the directory at path and returns how many entries it
	// holds.
	Count(ctx context.Context, path string) (int, error)
}

// shoalFS is a Shoal cluster, through the client.
type shoalFS struct{ cl *client.Client }

func (s shoalFS) Healthy(ctx context.Context) error { return s.cl.Healthy(ctx) }
func (s shoalFS) MkdirAll(ctx context.Context, p string) error {
	return s.cl.Mkdir(ctx, p, true)
}
func (s shoalFS) Put(ctx context.Context, p string, body io.Reader, size int64) error {
	_, err := s.cl.Put(ctx, p, body, size)
	return err
}
func (s shoalFS) Get(ctx context.Context, p string) (io.ReadCloser, error) {
	rc, _, err := s.cl.Get(ctx, p)
	return rc, err
}
func (s shoalFS) ReadFile(ctx context.Context, p string) ([]byte, error) {
	return s.cl.ReadFile(ctx, p)
}
func (s shoalFS) Stat(ctx context.Context, p string) (int64, error) {
	st, err := s.cl.Stat(ctx, p)
	return st.Size, err
}
func (s shoalFS) Exists(ctx context.Context, p string) (bool, error) { return s.cl.Exists(ctx, p) }
func (s shoalFS) Copy(ctx context.Context, src, dst string) error    { return s.cl.Copy(ctx, src, dst) }
func (s shoalFS) Rename(ctx context.Context, src, dst string) error {
	return s.cl.Rename(ctx, src, dst)
}
func (s shoalFS) Delete(ctx context.Context, p string, recursive bool) error {
	return s.cl.Delete(ctx, p, recursive)
}
func (s shoalFS) Count(ctx context.Context, p string) (int, error) {
	es, err := s.cl.List(ctx, p)
	return len(es), err
}

// filerFS is a SeaweedFS filer, through its HTTP API: PUT writes a file
// (its body as the content), POST of "dir/" makes a directory, POST with
// mv.from or cp.from renames or copies, HEAD stats, DELETE removes, and a
// GET of a directory with Accept: application/json lists it a page at a
// time. With fsync, every write asks the volume servers to fsync it.
type filerFS struct {
	base  *url.URL
	hc    *http.Client
	fsync bool
}

func newFilerFS(raw string, fsync bool, hc *http.Client) (*filerFS, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: --filer %q is not an http(s) URL of a SeaweedFS filer (for instance http://127.0.0.1:8888)", ErrConfig, raw)
	}
	return &filerFS{base: u, hc: hc, fsync: fsync}, nil
}

// errFiler is an answer of the filer that says the operation failed.
type errFiler struct {
	op, path string
	status   int
	body     string
}

func (e *errFiler) Error() string {
	return fmt.Sprintf("filer %s %s: %d %s: %s", e.op, e.path, e.status, http.StatusText(e.status), e.body)
}

func (f *filerFS) url(p string, q url.Values) string {
	u := *f.base
	u.Path = strings.TrimSuffix(f.base.Path, "/") + p
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends a request and fails on any status but a 2xx; a 404 is
// client.ErrNotFound. The caller closes the body of a success.
func (f *filerFS) do(ctx context.Context, method, p string, q url.Values, body io.Reader, size int64, hdr http.Header) (*http.Response, error) {
	req, err := newRequest(ctx, method, f.url(p, q), body, size, hdr)
	if err != nil {
		return nil, err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("filer %s %s: %w", method, p, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("filer %s %s: %w", method, p, client.ErrNotFound)
	}
	return nil, &errFiler{op: method, path: p, status: resp.StatusCode, body: strings.TrimSpace(string(msg))}
}

// newRequest is a request of method to u with body (size bytes, when
// there is one) and the headers hdr.
func newRequest(ctx context.Context, method, u string, body io.Reader, size int64, hdr http.Header) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return req, nil
}

// done drains and closes the body of a request whose answer is its status.
func done(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func (f *filerFS) writeQuery() url.Values {
	q := url.Values{}
	if f.fsync {
		q.Set("fsync", "true")
	}
	return q
}

func (f *filerFS) Healthy(ctx context.Context) error {
	return done(f.do(ctx, http.MethodGet, "/", url.Values{"limit": {"1"}}, nil, 0, http.Header{"Accept": {"application/json"}}))
}

func (f *filerFS) MkdirAll(ctx context.Context, p string) error {
	// The filer makes missing parents itself.
	return done(f.do(ctx, http.MethodPost, strings.TrimSuffix(p, "/")+"/", nil, nil, 0, nil))
}

func (f *filerFS) Put(ctx context.Context, p string, body io.Reader, size int64) error {
	return done(f.do(ctx, http.MethodPut, p, f.writeQuery(), body, size,
		http.Header{"Content-Type": {"application/octet-stream"}}))
}

func (f *filerFS) Get(ctx context.Context, p string) (io.ReadCloser, error) {
	resp, err := f.do(ctx, http.MethodGet, p, nil, nil, 0, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (f *filerFS) ReadFile(ctx context.Context, p string) ([]byte, error) {
	rc, err := f.Get(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (f *filerFS) Stat(ctx context.Context, p string) (int64, error) {
	resp, err := f.do(ctx, http.MethodHead, p, nil, nil, 0, nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

func (f *filerFS) Exists(ctx context.Context, p string) (bool, error) {
	_, err := f.Stat(ctx, p)
	if errors.Is(err, client.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (f *filerFS) Copy(ctx context.Context, src, dst string) error {
	q := f.writeQuery()
	q.Set("cp.from", src)
	return done(f.do(ctx, http.MethodPost, dst, q, nil, 0, nil))
}

func (f *filerFS) Rename(ctx context.Context, src, dst string) error {
	return done(f.do(ctx, http.MethodPost, dst, url.Values{"mv.from": {src}}, nil, 0, nil))
}

func (f *filerFS) Delete(ctx context.Context, p string, recursive bool) error {
	q := url.Values{}
	if recursive {
		q.Set("recursive", "true")
		q.Set("ignoreRecursiveError", "true")
	}
	return done(f.do(ctx, http.MethodDelete, p, q, nil, 0, nil))
}

// filerPageSize is how many entries one listing request asks the filer for.
const filerPageSize = 1000

func (f *filerFS) Count(ctx context.Context, p string) (int, error) {
	n, last := 0, ""
	dir := strings.TrimSuffix(p, "/") + "/"
	for {
		q := url.Values{"limit": {fmt.Sprint(filerPageSize)}}
		if last != "" {
			q.Set("lastFileName", last)
		}
		resp, err := f.do(ctx, http.MethodGet, dir, q, nil, 0, http.Header{"Accept": {"application/json"}})
		if err != nil {
			return 0, err
		}
		var page struct {
			Entries []struct {
				FullPath string `json:"FullPath"`
			} `json:"Entries"`
			LastFileName          string `json:"LastFileName"`
			ShouldDisplayLoadMore bool   `json:"ShouldDisplayLoadMore"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("filer list %s: %w", p, err)
		}
		n += len(page.Entries)
		if !page.ShouldDisplayLoadMore || len(page.Entries) == 0 || page.LastFileName == last {
			return n, nil
		}
		last = page.LastFileName
	}
}
