package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"shoal/api"
	"shoal/wait"
)

// Config says which router a Client talks to and how patiently.
type Config struct {
	// Router is the base URL of any router of the cluster, such as
	// http://127.0.0.1:8080. A path prefix is kept (a router behind a
	// proxy at https://host/shoal). Several URLs separated by commas
	// name several routers: requests go to one, and move to the next
	// when it cannot be reached (see RetryUnreachable).
	Router string
	// HTTPClient sends the requests; nil means a client of its own that
	// verifies the router with TLS. Leave its own Timeout zero: it would
	// cut off long uploads and downloads. TLS is ignored when it is set.
	HTTPClient *http.Client
	// TLS verifies the router of an https:// URL (the cluster's CA, see
	// secure.ClientConfig) and may present a mount host's certificate.
	// Nil trusts the system's roots.
	TLS *tls.Config
	// Token proves who the caller is: it is sent as a bearer token with
	// every request. Empty sends none (a cluster run with --insecure).
	Token string
	// Timeout bounds each request. Calls with small answers are bounded
	// whole; Get and GetRange only until the answer starts, and Put only
	// from the last byte sent until the answer starts, so that bodies
	// stream for as long as they take. Zero means 30s; negative, no bound.
	Timeout time.Duration
	// Retry503 is how long a request answered 503 (typically while a group
	// elects a new primary) keeps being retried, waiting as the router's
	// Retry-After says but at most a second between tries. Only requests
	// whose body can be replayed are retried: no body, an io.ReadSeeker,
	// or a body of a known size up to 64 KiB (read whole before sending).
	// Zero means 10s; negative, no retries.
	Retry503 time.Duration
	// RetryUnreachable is how long a request that reached no router
	// keeps being tried, round the routers of Router with waits of 100
	// ms growing to a second: a router restarting, or gone while others
	// serve. A request that failed on its way (the connection refused,
	// reset or closed before an answer) moves to the next router at
	// once; a change is applied once however many tries reach the
	// cluster (each carries one Idempotency-Key). Only requests whose
	// body can be replayed are tried again. Zero tries each router once.
	RetryUnreachable time.Duration
	// CacheSize bounds the cache of file content a File reads through
	// (see File): zero means DefaultCacheSize, negative no cache. A
	// cached block is named by the version of the file it holds, and
	// every open checks which version the file is, so the cache is never
	// stale.
	CacheSize int64
}

// DefaultConfig returns the configuration of a client of a local cluster
// started with 'shoal dev'.
func DefaultConfig() Config {
	return Config{
		Router:   "https://127.0.0.1:8080",
		Timeout:  30 * time.Second,
		Retry503: 10 * time.Second,
	}
}

// Validate reports whether c can be used, saying what to fix if not.
func (c Config) Validate() error {
	_, err := parseRouters(c.Router)
	return err
}

// parseRouters reads a router URL, or several separated by commas.
func parseRouters(raw string) ([]string, error) {
	var out []string
	for _, one := range strings.Split(raw, ",") {
		base, err := parseRouter(strings.TrimSpace(one))
		if err != nil {
			return nil, err
		}
		out = append(out, base)
	}
	return out, nil
}

// parseRouter checks a router base URL and returns it without a trailing
// slash. An address without a scheme (localhost:8080) is taken as
// https://, which a cluster serves unless it runs with --insecure.
func parseRouter(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("router URL is empty; give one like http://127.0.0.1:8080")
	}
	if schemeless(raw) {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("router URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("router URL %q: want an http:// or https:// URL, like http://127.0.0.1:8080", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("router URL %q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("router URL %q: must not have a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// schemeless reports whether a router address was given without a
// scheme, as host:port.
func schemeless(raw string) bool { return raw != "" && !strings.Contains(raw, "://") }

// Client calls the HTTP API of a Shoal router. It is safe for concurrent
// use; routers are stateless, so any router of the cluster will do.
type Client struct {
	base string // the first router's URL without a trailing slash: requests are built on it
	// bases are the routers' URLs, bases[cur] the one requests go to
	// (see attempt).
	bases    []string
	cur      atomic.Int32
	retryOff time.Duration // Config.RetryUnreachable
	http     *http.Client
	token    string
	timeout  time.Duration
	retry503 time.Duration
	// now and sleep are the clock of the 503 retry loop, replaced in tests
	// so that retries run without waiting.
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
	geom  geometry // how the cluster cuts files, for uploads by chunk
	cache *contentCache
}

// New returns a client of the router cfg names. It sends nothing.
func New(cfg Config) (*Client, error) {
	bases, err := parseRouters(cfg.Router)
	if err != nil {
		return nil, err
	}
	def := DefaultConfig()
	c := &Client{
		base:     bases[0],
		bases:    bases,
		retryOff: cfg.RetryUnreachable,
		http:     cfg.HTTPClient,
		token:    cfg.Token,
		timeout:  cfg.Timeout,
		retry503: cfg.Retry503,
		now:      time.Now,
		sleep:    wait.Sleep,
	}
	if c.http == nil {
		c.http = &http.Client{Transport: NewTransport(cfg.TLS)}
	}
	if c.timeout == 0 {
		c.timeout = def.Timeout
	}
	if c.retry503 == 0 {
		c.retry503 = def.Retry503
	}
	switch {
	case cfg.CacheSize == 0:
		c.cache = newContentCache(DefaultCacheSize)
	case cfg.CacheSize > 0:
		c.cache = newContentCache(cfg.CacheSize)
	}
	return c, nil
}

// Router returns the base URL of the router c talks to (the first of
// several).
func (c *Client) Router() string { return c.base }

// Put writes the whole file at path from body, creating it or replacing
// it, and reports whether it was created. size is the number of bytes in
// body, or -1 when unknown (the body is then sent chunked). A nil body
// writes an empty file. The body is streamed, not buffered; Put does not
// close it.
func (c *Client) Put(ctx context.Context, path string, body io.Reader, size int64) (created bool, err error) {
	_, created, err = c.PutWith(ctx, path, body, size, PutOptions{})
	return created, err
}

// PutOptions is what a put may ask besides the content.
type PutOptions struct {
	// Mode is the file's permission bits (with setuid, setgid and
	// sticky); nil leaves an existing file's as they are and gives a new
	// one 0644. Changing an existing file's takes being its owner, and 0
	// cannot be set this way (use SetAttrPath).
	Mode *uint32
	// MTime is the file's modification time; nil: the time of the write.
	// Setting it on an existing file takes being its owner.
	MTime *time.Time
	// ContentType is the media type the file is served back as ("": one
	// the router guesses from the name, else bytes).
	ContentType string
	// IfAbsent writes only if nothing is at path (If-None-Match: *), and
	// IfMatch only if the file there has this entity tag (ContentInfo.ETag,
	// or a Stat's Hash; If-Match), "*" for any file. Otherwise the put
	// fails with an error matching ErrPrecondition and changes nothing.
	// The check and the write are one step on the cluster.
	IfAbsent bool
	IfMatch  string
	// From puts the content of the file at this path instead of a body
	// (pass a nil body): no byte is sent or copied, the two files share
	// it. The caller must be able to read From.
	From string
	// FromIfMatch makes a put From apply only while From's content is
	// still the one with this ETag: what was checked is what is put.
	FromIfMatch string
}

// PutWith is Put with options; it returns what the router says of the
// file written.
func (c *Client) PutWith(ctx context.Context, path string, body io.Reader, size int64, o PutOptions) (Stat, bool, error) {
	if body == nil {
		body, size = bytes.NewReader(nil), 0
	}
	q, h := url.Values{}, http.Header{}
	if o.Mode != nil {
		q.Set("mode", fmt.Sprintf("%04o", *o.Mode))
	}
	if o.MTime != nil {
		q.Set("mtime", strconv.FormatInt(o.MTime.UnixNano(), 10))
	}
	if o.ContentType != "" {
		h.Set("Content-Type", o.ContentType)
	}
	if o.IfAbsent {
		h.Set("If-None-Match", "*")
	}
	if o.IfMatch != "" {
		h.Set("If-Match", quoteETag(o.IfMatch))
	}
	if o.From != "" {
		q.Set("from", o.From)
		if o.FromIfMatch != "" {
			q.Set("from_if_match", strings.Trim(o.FromIfMatch, `"`))
		}
	}
	resp, err := c.send(ctx, request{
		method: http.MethodPut, what: path, url: c.fsURL(path, q), header: h,
		body: body, size: size, bound: boundAfterUpload,
	})
	if err != nil {
		return Stat{}, false, err
	}
	created := resp.StatusCode == http.StatusCreated
	var st Stat
	if resp.StatusCode == http.StatusNoContent || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		drainClose(resp.Body) // a router that answered without the file
		return st, created, nil
	}
	return st, created, decodeJSON(resp, path, &st)
}

// quoteETag makes an entity tag of a Stat's Hash; one already quoted (as
// ETag headers are) or "*" is left as it is.
func quoteETag(t string) string {
	if t == "*" || strings.HasPrefix(t, `"`) || strings.HasPrefix(t, `W/"`) {
		return t
	}
	return `"` + t + `"`
}

// Get opens the file at path for reading. The caller must close the
// returned body. A directory is an error matching ErrIsDir.
func (c *Client) Get(ctx context.Context, path string) (io.ReadCloser, ContentInfo, error) {
	resp, err := c.send(ctx, request{
		method: http.MethodGet, what: path, url: c.fsURL(path, nil), bound: boundHeaders,
	})
	if err != nil {
		return nil, ContentInfo{}, err
	}
	if err := wantFile(resp); err != nil {
		return nil, ContentInfo{}, err
	}
	info := ContentInfo{Size: resp.ContentLength, ETag: resp.Header.Get("ETag")}
	return resp.Body, info, nil
}

// GetRange opens n bytes of the file at path from offset off; n < 0 reads
// to the end. Fewer bytes come back when the file is shorter, none when off
// is at or past its end. n == 0 returns an empty body without asking the
// router. The caller must close the returned body.
func (c *Client) GetRange(ctx context.Context, path string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("read %s: negative offset %d", path, off)
	}
	if n == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return c.getRange(ctx, path, c.fsURL(path, nil), off, n)
}

// getRange asks url (the file what) for n bytes from off, n < 0 to the end.
func (c *Client) getRange(ctx context.Context, what, url string, off, n int64) (io.ReadCloser, error) {
	spec := fmt.Sprintf("bytes=%d-", off)
	if n > 0 {
		spec = fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	}
	resp, err := c.send(ctx, request{
		method: http.MethodGet, what: what, url: url,
		header: http.Header{"Range": {spec}}, bound: boundHeaders,
	})
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusRequestedRangeNotSatisfiable {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if err != nil {
		return nil, err
	}
	if err := wantFile(resp); err != nil {
		return nil, err
	}
	body := resp.Body
	if resp.StatusCode != http.StatusPartialContent {
		// The router sent the whole file: skip to the range ourselves.
		if _, err := io.CopyN(io.Discard, body, off); err != nil && err != io.EOF {
			body.Close()
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
	}
	if n < 0 {
		return body, nil
	}
	return limitedBody{io.LimitReader(body, n), body}, nil
}

// limitedBody reads at most the requested range, whatever the router sent.
type limitedBody struct {
	io.Reader
	io.Closer
}

// wantFile closes resp and returns an ErrIsDir error when it is a
// directory listing rather than file content.
func wantFile(resp *http.Response) error {
	if resp.Header.Get("X-Shoal-Type") != TypeDir {
		return nil
	}
	drainClose(resp.Body)
	return &Error{Status: resp.StatusCode, Code: string(api.CodeIsDir),
		Message: "is a directory; list it instead of reading it"}
}

// ReadFile returns the whole content of the file at path.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	body, info, err := c.Get(ctx, path)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var buf bytes.Buffer
	if info.Size > 0 && info.Size < 1<<30 {
		buf.Grow(int(info.Size))
	}
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

// List returns the entries of the directory at path, in the router's
// order. A file is an error matching ErrNotDir.
func (c *Client) List(ctx context.Context, path string) ([]DirEntry, error) {
	resp, err := c.send(ctx, request{
		method: http.MethodGet, what: path, url: c.fsURL(path, nil), bound: boundWhole,
	})
	if err != nil {
		return nil, err
	}
	if resp.Header.Get("X-Shoal-Type") != TypeDir {
		drainClose(resp.Body)
		return nil, &Error{Status: resp.StatusCode, Code: string(api.CodeNotDir), Message: "not a directory"}
	}
	var l api.Listing
	if err := decodeJSON(resp, path, &l); err != nil {
		return nil, err
	}
	return l.Entries, nil
}

// Stat describes the file or directory at path.
func (c *Client) Stat(ctx context.Context, path string) (Stat, error) {
	var st Stat
	err := c.call(ctx, http.MethodGet, path, url.Values{"op": {"stat"}}, &st)
	return st, err
}

// Exists reports whether a file or directory exists at path.
func (c *Client) Exists(ctx context.Context, path string) (bool, error) {
	err := c.call(ctx, http.MethodHead, path, nil, nil)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes the file or directory at path. A directory with entries
// is an error matching ErrNotEmpty unless recursive is set.
func (c *Client) Delete(ctx context.Context, path string, recursive bool) error {
	var q url.Values
	if recursive {
		q = url.Values{"recursive": {"1"}}
	}
	return c.call(ctx, http.MethodDelete, path, q, nil)
}

// DeleteIfMatch deletes the file at path only while its entity tag is
// etag (a Stat's Hash); otherwise it fails with an error matching
// ErrPrecondition and deletes nothing.
func (c *Client) DeleteIfMatch(ctx context.Context, path, etag string) error {
	resp, err := c.send(ctx, request{method: http.MethodDelete, what: path, url: c.fsURL(path, nil),
		header: http.Header{"If-Match": {quoteETag(etag)}}, bound: boundWhole})
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	return nil
}

// Copy copies the file src to dst. Only metadata moves: the copy shares
// src's chunks.
func (c *Client) Copy(ctx context.Context, src, dst string) error {
	return c.call(ctx, http.MethodPost, src, url.Values{"op": {"copy"}, "to": {absPath(dst)}}, nil)
}

// Rename moves the file or directory src to dst.
func (c *Client) Rename(ctx context.Context, src, dst string) error {
	return c.call(ctx, http.MethodPost, src, url.Values{"op": {"rename"}, "to": {absPath(dst)}}, nil)
}

// Mkdir creates the directory at path. With parents, missing parents are
// created too and an existing directory is not an error.
func (c *Client) Mkdir(ctx context.Context, path string, parents bool) error {
	q := url.Values{"op": {"mkdir"}}
	if parents {
		q.Set("parents", "1")
	}
	return c.call(ctx, http.MethodPost, path, q, nil)
}

// Cluster returns the router's view of the cluster's nodes and groups.
func (c *Client) Cluster(ctx context.Context) (Cluster, error) {
	var cl Cluster
	resp, err := c.send(ctx, request{
		method: http.MethodGet, what: "/v1/cluster", url: c.base + "/v1/cluster", bound: boundWhole,
	})
	if err != nil {
		return cl, err
	}
	err = decodeJSON(resp, "cluster", &cl)
	return cl, err
}

// Healthy returns nil when the router answers its health check.
func (c *Client) Healthy(ctx context.Context) error {
	resp, err := c.send(ctx, request{
		method: http.MethodGet, what: "/healthz", url: c.base + "/healthz", bound: boundWhole,
	})
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	return nil
}

// call makes a file-system request with a small answer, decoding its JSON
// body into out when out is not nil.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, out any) error {
	return c.callURL(ctx, method, path, c.fsURL(path, q), out)
}

// callURL makes a request with a small answer, decoding its JSON body
// into out when out is not nil; what names it in errors.
func (c *Client) callURL(ctx context.Context, method, what, u string, out any) error {
	resp, err := c.send(ctx, request{method: method, what: what, url: u, bound: boundWhole})
	if err != nil {
		return err
	}
	if out == nil {
		drainClose(resp.Body)
		return nil
	}
	return decodeJSON(resp, what, out)
}

// fsURL returns the URL of the file-system path p with query q.
func (c *Client) fsURL(p string, q url.Values) string {
	u := c.base + "/v1/fs" + escapePath(p)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// escapePath percent-encodes each component of p, so that names with
// spaces, '?', '#' or '%' arrive intact, and adds the leading slash. "."
// and ".." are encoded too: left bare, a proxy or server mux would resolve
// them before the router could reject them, and the request would quietly
// land on another path.
func escapePath(p string) string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "/"
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if s == "." || s == ".." {
			parts[i] = strings.Repeat("%2E", len(s))
		} else {
			parts[i] = url.PathEscape(s)
		}
	}
	return "/" + strings.Join(parts, "/")
}

// absPath adds the leading slash the API expects of a destination path.
func absPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

// NewTransport returns the HTTP transport the client uses by default: TLS
// with tlsConf, HTTP/1.1, and as many idle connections per router as a
// busy program uses (each new one costs a TLS handshake, and net/http
// keeps only two by default). HTTP/1.1 rather than HTTP/2: concurrent
// requests go over connections of their own, which the router serves on
// every core, and a large upload is not held to one stream's flow-control
// window.
func NewTransport(tlsConf *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConf
	t.ForceAttemptHTTP2 = false
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	t.MaxIdleConnsPerHost = 64
	return t
}
