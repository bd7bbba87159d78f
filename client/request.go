package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"shoal/api"
)

// Waits between retries of a 503 answer. The router names the wait in
// Retry-After; the cap keeps a client from sleeping through a failover that
// finishes in well under a second, the floor keeps "Retry-After: 0" from
// turning into a busy loop.
const (
	minRetryWait   = 50 * time.Millisecond
	firstRetryWait = 100 * time.Millisecond
	maxRetryWait   = time.Second
)

// maxErrorBody bounds how much of an error answer is read: a JSON error is
// tiny, and a proxy's error page is not worth more.
const maxErrorBody = 64 << 10

// timeoutBound says which part of an exchange Config.Timeout bounds.
type timeoutBound int

const (
	// boundWhole bounds the request and the whole answer body: small JSON
	// answers, where a silent router should not hang the caller.
	boundWhole timeoutBound = iota
	// boundHeaders bounds the wait for the answer's headers only, so that a
	// download streams for as long as it takes.
	boundHeaders
	// boundAfterUpload bounds the wait from the last byte of the request
	// body to the answer's headers, so that an upload streams for as long
	// as it takes but a router that then goes silent is noticed. A body
	// sent from memory (request.inMemory) is bounded from the start.
	boundAfterUpload
)

// request is one API call, which send may make several times.
type request struct {
	method string
	what   string // the file-system path or endpoint, for error messages
	url    string
	header http.Header
	body   io.Reader // nil for none
	size   int64     // bytes in body; -1 unknown (sent chunked)
	// data is body read whole, when it is small (see inMemory): each
	// try sends it from its own reader.
	data  []byte
	bound timeoutBound
	// notModified: a 304 answer is an answer, not an error.
	notModified bool
	// extra lengthens the timeout of a call the router may hold on
	// purpose (a lock acquire that waits in the queue).
	extra time.Duration
	// secret: the answer carries a secret made for this try (see
	// secretCall), so a try that may have reached a router is not
	// repeated.
	secret bool
}

// send makes r, retrying 503 answers for up to Config.Retry503 and, round
// the routers, tries that reached none for up to Config.RetryUnreachable,
// when the body can be replayed. It returns an answer with a status below
// 300, whose body the caller must close; any other answer becomes an
// *Error.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	if r.method != http.MethodGet && r.method != http.MethodHead {
		// Every try of this call carries one key, so the cluster applies
		// the change once however many tries reach it.
		r.header = r.header.Clone()
		if r.header == nil {
			r.header = http.Header{}
		}
		if r.header.Get(IdempotencyHeader) == "" {
			r.header.Set(IdempotencyHeader, newIdempotencyKey())
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.what, err)
	}
	if err := r.inMemory(); err != nil {
		return nil, err
	}
	rewind, replayable := rewinder(r.body)
	deadline := c.now().Add(c.retry503)
	offDeadline := c.now().Add(c.retryOff)
	backoff, offBackoff := firstRetryWait, firstRetryWait
	failed := 0 // routers in a row that the request did not reach
	for {
		resp, upload, router, err := c.attempt(ctx, &r)
		if err != nil {
			if !replayable || !reachedNone(err) || r.secret && !errors.Is(err, ErrUnreachable) {
				return nil, err
			}
			// Next time the next router: at once while some router of
			// the list is still untried, then after a wait.
			c.cur.CompareAndSwap(int32(router), int32((router+1)%len(c.bases)))
			if failed++; failed >= len(c.bases) {
				if c.now().Add(offBackoff).After(offDeadline) {
					return nil, err
				}
				if err := c.sleep(ctx, offBackoff); err != nil {
					return nil, fmt.Errorf("%s %s: %w", r.method, r.what, err)
				}
				offBackoff, failed = min(2*offBackoff, maxRetryWait), 0
			}
		} else {
			failed = 0
			if resp.StatusCode < 300 || r.notModified && resp.StatusCode == http.StatusNotModified {
				return resp, nil
			}
			apiErr := readError(resp)
			if resp.StatusCode != http.StatusServiceUnavailable || !replayable {
				return nil, apiErr
			}
			wait := retryWait(resp.Header.Get("Retry-After"), backoff, c.now())
			backoff = min(2*backoff, maxRetryWait)
			if c.now().Add(wait).After(deadline) {
				return nil, apiErr
			}
			if err := c.sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("%s %s: %w", r.method, r.what, err)
			}
		}
		// The transport may still be reading the body after the answer
		// arrived; seeking under it would send a corrupt body next time.
		if upload != nil {
			select {
			case <-upload.closed:
			case <-ctx.Done():
				return nil, fmt.Errorf("%s %s: %w", r.method, r.what, ctx.Err())
			}
		}
		if err := rewind(); err != nil {
			return nil, fmt.Errorf("%s %s: rewind body for retry: %w", r.method, r.what, err)
		}
	}
}

// reachedNone says a try failed on its way, before any answer: the
// router refused the connection, reset it or closed it (a router
// restarting, or gone). A kept-alive connection the router closed just
// as a request was handed to it fails with net.ErrClosed: the transport
// saw the close and shut its end under the write. Another try, at the
// same router or another, is safe: a change carries its Idempotency-Key.
// A timeout is not one of these: the router may be working on it still.
func reachedNone(err error) bool {
	return errors.Is(err, ErrUnreachable) || errors.Is(err, errNoHTTPAnswer) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// attempt makes r once, at the router in use, whose index it returns.
// The returned upload, when not nil, is the request body as handed to
// the transport.
func (c *Client) attempt(ctx context.Context, r *request) (*http.Response, *uploadBody, int, error) {
	router := int(c.cur.Load())
	base := c.bases[router]
	url := r.url
	if router != 0 && strings.HasPrefix(url, c.base) {
		url = base + url[len(c.base):]
	}
	actx, cancel := context.WithCancelCause(ctx)
	d := c.timeout
	if d > 0 {
		d += r.extra
	}
	wd := &watchdog{d: d, fire: func() {
		cancel(fmt.Errorf("%s %s: %w after %v", r.method, r.what, ErrTimeout, d))
	}}
	release := func() { wd.stop(); cancel(nil) }

	var upload *uploadBody
	var body io.Reader
	if r.data != nil {
		// net/http writes the headers and a body it knows to be in
		// memory together (and takes its length from it): one write,
		// one packet, where any other body has the headers flushed
		// first.
		body = bytes.NewReader(r.data)
	} else if r.body != nil && r.size != 0 {
		upload = &uploadBody{r: r.body, closed: make(chan struct{})}
		if r.bound == boundAfterUpload {
			upload.done = wd.arm
		}
		body = upload
	}
	// net/http sends a request with an Idempotency-Key again, on a new
	// connection, when the router closed the first one after reading it;
	// if that second try cannot connect, the first may still have been
	// carried out, so "unreachable" would be a lie. Note any write.
	var sent atomic.Bool
	tctx := httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(true) },
	})
	req, err := http.NewRequestWithContext(tctx, r.method, url, body)
	if err != nil {
		release()
		return nil, nil, router, fmt.Errorf("%s %s: %w", r.method, r.what, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if id, ok := ActingAs(ctx); ok {
		req.Header.Set(ActAsHeader, id.String())
	}
	if f := fenceOf(ctx); f != 0 && r.method != http.MethodGet && r.method != http.MethodHead && !isLockURL(c, r.url) {
		req.Header.Set(api.FenceHeader, strconv.FormatUint(f, 10))
	}
	switch {
	case r.body != nil && r.size == 0:
		// An empty body is sent with Content-Length: 0, not chunked.
		req.Body, req.ContentLength = http.NoBody, 0
	case r.body != nil:
		req.ContentLength = r.size
	}
	if upload == nil || r.bound != boundAfterUpload {
		wd.arm()
	}

	resp, err := c.http.Do(req)
	if r.bound != boundWhole {
		wd.stop()
	}
	if err != nil {
		err = c.transportError(ctx, actx, r, base, err, sent.Load())
		release()
		return nil, upload, router, err
	}
	resp.Body = &answerBody{rc: resp.Body, ctx: actx, release: release}
	return resp, upload, router, nil
}

// transportError turns a failed exchange into an error that says why: the
// caller's context, the timeout, or a router that cannot be reached.
func (c *Client) transportError(ctx, actx context.Context, r *request, base string, err error, sent bool) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.what, ctx.Err())
	}
	if cause := context.Cause(actx); errors.Is(cause, ErrTimeout) {
		return cause
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && !sent {
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, base, op)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "malformed HTTP") {
		// The connection closed, or garbage came, before any answer.
		return fmt.Errorf("%s %s: %w: %w", r.method, r.what, errNoHTTPAnswer, err)
	}
	return fmt.Errorf("%s %s: %w", r.method, r.what, err)
}

// errNoHTTPAnswer: the connection closed, or bytes that are not HTTP came,
// before the answer's headers (what a port that is not a router's does).
var errNoHTTPAnswer = errors.New("no HTTP answer")

// maxInMemoryBody is the largest request body read whole before it is
// sent (see request.inMemory).
const maxInMemoryBody = 64 << 10

// inMemory reads a body of at most maxInMemoryBody bytes whole, once,
// into r.data, and leaves r.body nil: every try then sends the same
// bytes from a reader of its own (nothing to rewind, and a try the
// transport still reads after its answer disturbs no other), and sends
// them with the headers. A body shorter or longer than r.size, or one
// that fails to read to its end, is an error before anything is sent.
// The body is read before the call's timeout starts, as the caller
// hands it over: a reader that stalls holds up the call.
func (r *request) inMemory() error {
	if r.body == nil || r.size <= 0 || r.size > maxInMemoryBody {
		return nil
	}
	data := make([]byte, r.size)
	if n, err := io.ReadFull(r.body, data); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%s %s: the body ended after %d of the %d bytes it was said to hold", r.method, r.what, n, r.size)
		}
		return fmt.Errorf("%s %s: read the body: %w", r.method, r.what, err)
	}
	var extra [1]byte
	switch n, err := io.ReadFull(r.body, extra[:]); {
	case n > 0:
		return fmt.Errorf("%s %s: the body holds more than the %d bytes it was said to hold", r.method, r.what, r.size)
	case err != io.EOF:
		return fmt.Errorf("%s %s: read the body: %w", r.method, r.what, err)
	}
	r.body, r.data = nil, data
	return nil
}

// rewinder returns a function that puts body back where it started, and
// whether body can be replayed at all: nil, or an io.ReadSeeker that can
// actually seek (os.Stdin is one by type, but not on a pipe).
func rewinder(body io.Reader) (func() error, bool) {
	if body == nil {
		return func() error { return nil }, true
	}
	rs, ok := body.(io.ReadSeeker)
	if !ok {
		return nil, false
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, false
	}
	return func() error {
		_, err := rs.Seek(start, io.SeekStart)
		return err
	}, true
}

// retryWait is how long to wait before retrying a 503 answer: Retry-After
// (seconds or an HTTP date) when present, else the backoff, within
// [minRetryWait, maxRetryWait].
func retryWait(retryAfter string, backoff time.Duration, now time.Time) time.Duration {
	wait := backoff
	retryAfter = strings.TrimSpace(retryAfter)
	if secs, err := strconv.Atoi(retryAfter); err == nil && secs >= 0 {
		wait = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(retryAfter); err == nil {
		wait = t.Sub(now)
	}
	return max(minRetryWait, min(wait, maxRetryWait))
}

// readError decodes an error answer and closes its body.
func readError(resp *http.Response) *Error {
	defer resp.Body.Close()
	e := &Error{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body api.ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Code != "" {
		e.Code, e.Message = string(body.Code), body.Message
		return e
	}
	// Not a router's answer (a proxy's page, say): keep a short plain-text
	// explanation, and leave HTML to the status text.
	text := strings.TrimSpace(string(b))
	if line, _, _ := strings.Cut(text, "\n"); line != "" && !strings.HasPrefix(line, "<") {
		if len(line) > 200 {
			line = line[:200] + "..."
		}
		e.Message = line
	}
	return e
}

// decodeJSON decodes the answer body into v and closes it.
func decodeJSON(resp *http.Response, what string, v any) error {
	defer drainClose(resp.Body)
	var err error
	if l, ok := v.(*api.Listing); ok {
		err = readListing(resp.Body, l)
	} else {
		err = json.NewDecoder(resp.Body).Decode(v)
	}
	if err != nil {
		return fmt.Errorf("%s: decode answer from router: %w", what, err)
	}
	return nil
}

// readListing reads a listing whole and decodes it with its own
// UnmarshalJSON, which checks what it reads: a listing can hold tens of
// thousands of entries, and json.Decoder's scan of every byte before
// decoding took as long as the decoding.
func readListing(r io.Reader, l *api.Listing) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return l.UnmarshalJSON(b)
}

// drainClose reads what is left of a small body before closing it, so the
// connection goes back to the pool instead of being torn down.
func drainClose(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, maxErrorBody))
	_ = rc.Close()
}

// watchdog cancels an exchange that takes longer than d once armed. It is
// armed and stopped from different goroutines: the transport arms it when
// it finishes sending an upload, while send stops it when headers arrive.
type watchdog struct {
	d    time.Duration // zero or negative: never fires
	fire func()

	mu      sync.Mutex
	t       *time.Timer // nil until armed
	stopped bool        // once stopped, arming does nothing
}

func (w *watchdog) arm() {
	if w.d <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.t != nil {
		return
	}
	w.t = time.AfterFunc(w.d, w.fire)
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.t != nil {
		w.t.Stop()
	}
}

// uploadBody is a request body as handed to the transport. It keeps the
// transport from closing the caller's reader (an *os.File the caller still
// owns, or one to rewind for a retry), reports when the last byte has been
// read, and signals when the transport is done with it.
type uploadBody struct {
	r      io.Reader
	done   func() // called when the body is used up or closed; may be nil
	closed chan struct{}
	once   sync.Once
}

func (u *uploadBody) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err == io.EOF && u.done != nil {
		u.done()
	}
	return n, err
}

func (u *uploadBody) Close() error {
	u.once.Do(func() {
		if u.done != nil {
			u.done()
		}
		close(u.closed)
	})
	return nil
}

// answerBody is an answer body that releases the exchange's watchdog and
// context on Close, and reports a timeout as ErrTimeout rather than as the
// bare "context canceled" the transport sees.
type answerBody struct {
	rc      io.ReadCloser
	ctx     context.Context
	release func()
	once    sync.Once
}

func (b *answerBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); errors.Is(cause, ErrTimeout) {
			err = cause
		}
	}
	return n, err
}

func (b *answerBody) Close() error {
	err := b.rc.Close()
	b.once.Do(b.release)
	return err
}

// IdempotencyHeader carries a key that makes the router apply a change once
// however often it is sent: retries of one call share it.
const IdempotencyHeader = "Idempotency-Key"

// newIdempotencyKey returns 32 hex digits: the time in nanoseconds, then
// 64 random bits. Keys made one after another sort in that order, which
// lets the members keep their records of requests in order, at the end
// of a B-tree (see the router's requestid.go).
func newIdempotencyKey() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}
