package router

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/api"
	"shoal/wire"
)

// stallServer serves a router with a short BodyTimeout on a real socket:
// only a real connection has a read deadline. tune, if given, changes the
// router's config further.
func stallServer(t *testing.T, timeout time.Duration, tune ...func(*Config)) (string, *testNode) {
	c := newTestCluster(t)
	g1 := c.group("g1", 1, 1<<20)
	putFileOn(t, g1[0], "/f", content(40), "g1", g1)
	s := c.router(func(cfg *Config) {
		cfg.BodyTimeout = timeout
		for _, f := range tune {
			f(cfg)
		}
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), g1[0]
}

// send writes head and then each part of the body, pausing between parts,
// then with hangUp closes its sending side, and returns the answer and
// how long it took from the end of the head.
func send(t *testing.T, addr, head string, pause time.Duration, hangUp bool, parts ...string) (*http.Response, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // the router must answer well before
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i, p := range parts {
		if i > 0 {
			time.Sleep(pause)
		}
		if _, err := io.WriteString(conn, p); err != nil {
			t.Fatal(err)
		}
	}
	if hangUp {
		conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", head, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), time.Since(start)
}

func TestBodyTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr, meta := stallServer(t, timeout)
	tests := []struct {
		name, head string
		status     int
		code       string
	}{
		// The upload stalls after 10 of 100 bytes: 408, not a hang.
		{"stalled upload", "PUT /v1/fs/new HTTP/1.1\r\nHost: r\r\nContent-Length: 100\r\n\r\n0123456789", http.StatusRequestTimeout, "timeout"},
		// Refused before the body is read: net/http reads what is left
		// of it before answering, which the deadline bounds too.
		{"stalled body of a bad path", "PUT /v1/fs/a/../b HTTP/1.1\r\nHost: r\r\nContent-Length: 100\r\n\r\n0123", http.StatusBadRequest, "invalid_path"},
		{"stalled body of a read", "GET /v1/fs/f?op=stat HTTP/1.1\r\nHost: r\r\nContent-Length: 100\r\n\r\n", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, took := send(t, addr, tt.head, 0, false)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.status)
			}
			if tt.code != "" {
				var e api.ErrorBody
				if err := json.Unmarshal([]byte(body), &e); err != nil || string(e.Code) != tt.code || e.Message == "" {
					t.Fatalf("body %q, want error %q with a message", body, tt.code)
				}
			}
			if took > timeout+2*time.Second {
				t.Fatalf("answered after %v, with a body timeout of %v", took, timeout)
			}
		})
	}
	if _, ok := meta.file("/new"); ok {
		t.Fatal("the stalled upload was committed")
	}
}

// The timeout is on stalls, not on the whole body: a slow upload whose
// bytes keep coming succeeds however long it takes.
func TestBodyTimeoutSlowUpload(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr, meta := stallServer(t, timeout)
	parts := []string{"0123456789", "0123456789", "0123456789", "0123456789", "0123456789"}
	resp, body, took := send(t, addr, "PUT /v1/fs/slow HTTP/1.1\r\nHost: r\r\nContent-Length: 50\r\n\r\n", timeout/3, false, parts...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("slow upload = %d %s", resp.StatusCode, body)
	}
	if took < timeout {
		t.Fatalf("the upload took %v, not longer than the %v timeout: the test proves nothing", took, timeout)
	}
	if in, ok := meta.file("/slow"); !ok || in.Size != 50 {
		t.Fatalf("slow upload committed %+v, %v", in, ok)
	}
}

// trickle sends head, then step (a byte of the body, framed as the head
// says) n times, a pause before each, for as long as the router reads,
// and returns the answer and how long it took from the end of the head.
// The router may answer and hang up mid-body: writes failing then are
// expected.
func trickle(t *testing.T, addr, head, step string, n int, pause time.Duration) (*http.Response, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second)) // the router must answer well before
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range n {
			select {
			case <-stop:
				return
			case <-time.After(pause):
			}
			if _, err := io.WriteString(conn, step); err != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", head, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), time.Since(start)
}

// A body that keeps coming, a byte every 200ms, never stalls, but it is
// far below the rate floor: the router answers 408 once the first window
// is over, and commits nothing.
func TestBodyMinRate(t *testing.T) {
	const window = time.Second
	addr, meta := stallServer(t, 5*time.Second, func(cfg *Config) {
		cfg.BodyMinRate, cfg.BodyRateWindow = 1024, window
	})
	for _, tt := range []struct{ name, head, step string }{
		{"with a length", "PUT /v1/fs/trickled HTTP/1.1\r\nHost: r\r\nContent-Length: 200\r\n\r\n", "x"},
		// A chunked body's every byte is a chunk of its own.
		{"chunked", "PUT /v1/fs/trickled HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nx\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, took := trickle(t, addr, tt.head, tt.step, 200, 200*time.Millisecond)
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("status %d (%s), want 408", resp.StatusCode, body)
			}
			var e api.ErrorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != api.CodeTimeout || !strings.Contains(e.Message, "bytes/s") {
				t.Fatalf("body %q, want error %q saying the body was too slow", body, api.CodeTimeout)
			}
			if took > window+2*time.Second {
				t.Fatalf("answered after %v, with a rate window of %v", took, window)
			}
			if resp.Header.Get("Connection") != "close" && !resp.Close {
				t.Errorf("the connection stays open after a body cut off for its rate")
			}
		})
	}
	if _, ok := meta.file("/trickled"); ok {
		t.Fatal("the trickled upload was committed")
	}
}

// An upload slower than the link could carry but above the floor, over
// several windows, succeeds.
func TestBodyMinRateSlowUpload(t *testing.T) {
	const window = 300 * time.Millisecond
	addr, meta := stallServer(t, 5*time.Second, func(cfg *Config) {
		cfg.BodyMinRate, cfg.BodyRateWindow = 1024, window
	})
	part := strings.Repeat("y", 300) // every 100ms: 3000 bytes/s
	parts := slices.Repeat([]string{part}, 10)
	resp, body, took := send(t, addr, "PUT /v1/fs/steady HTTP/1.1\r\nHost: r\r\nContent-Length: 3000\r\n\r\n", 100*time.Millisecond, false, parts...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("steady upload = %d %s", resp.StatusCode, body)
	}
	if took < 2*window {
		t.Fatalf("the upload took %v, under two windows of %v: the test proves nothing", took, window)
	}
	if in, ok := meta.file("/steady"); !ok || in.Size != 3000 {
		t.Fatalf("steady upload committed %+v, %v", in, ok)
	}
}

// The rate is measured over the time spent waiting for the body: a pause
// of the router's own between reads (storing a chunk through a failover)
// does not count against the client.
func TestBodyRateAccount(t *testing.T) {
	const w = time.Second
	type read struct {
		waited time.Duration
		n      int
	}
	for _, tt := range []struct {
		name  string
		reads []read
		slow  bool
	}{
		{"quota within the window", []read{{400 * time.Millisecond, 60}, {400 * time.Millisecond, 50}, {400 * time.Millisecond, 0}}, false},
		{"window ends short", []read{{400 * time.Millisecond, 60}, {400 * time.Millisecond, 30}, {400 * time.Millisecond, 0}}, true},
		// Reads return at once, however long the router paused between
		// them: no window ever fills with waiting.
		{"router pauses", []read{{time.Millisecond, 10}, {time.Millisecond, 10}, {time.Millisecond, 10}}, false},
		{"one read waits through two windows", []read{{100 * time.Millisecond, 200}, {2100 * time.Millisecond, 500}}, true},
		{"bytes at the end of a long read count in the window they came in", []read{{100 * time.Millisecond, 200}, {1500 * time.Millisecond, 200}, {100 * time.Millisecond, 0}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := &bodyGuard{rate: 100, window: w, stall: time.Minute}
			for _, r := range tt.reads {
				g.account(r.waited, r.n)
			}
			if g.slow != tt.slow {
				t.Errorf("slow = %v, want %v (spent %v, got %d)", g.slow, tt.slow, g.spent, g.got)
			}
		})
	}
}

// A body that ends before its Content-Length, or a chunked body cut off
// before its last chunk (the client died mid-upload), fails with 400: no
// file is committed and no chunk stored for the part that did arrive.
func TestTruncatedBody(t *testing.T) {
	for _, inline := range []int{0, 64} {
		c := newTestCluster(t)
		g1 := c.group("g1", 1, 1<<20)
		s := c.router(func(cfg *Config) { cfg.InlineMax = inline })
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		addr := strings.TrimPrefix(srv.URL, "http://")
		for _, tt := range []struct{ name, head, body string }{
			{"short", "PUT /v1/fs/short HTTP/1.1\r\nHost: r\r\nContent-Length: 100\r\n\r\n", "0123456789"},
			{"short over a chunk", "PUT /v1/fs/short HTTP/1.1\r\nHost: r\r\nContent-Length: 100\r\n\r\n", strings.Repeat("x", 20)},
			{"cut chunked", "PUT /v1/fs/cut HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n"},
			{"cut chunked mid-chunk", "PUT /v1/fs/cut HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n", "a\r\nhello"},
		} {
			resp, body, _ := send(t, addr, tt.head, 0, true, tt.body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("inline %d, %s: status %d %s, want 400", inline, tt.name, resp.StatusCode, body)
			}
		}
		for _, p := range []string{"/short", "/cut"} {
			if in, ok := g1[0].file(p); ok {
				t.Errorf("inline %d: truncated upload committed as %s: %+v", inline, p, in)
			}
		}
		// "short over a chunk" may store its first, whole chunk: the body
		// is streamed, and it was not known to be short yet. No piece
		// after that is stored.
		for _, wc := range received[*wire.WriteChunk](g1[0]) {
			if len(wc.Data) != 16 {
				t.Errorf("inline %d: a chunk of %d bytes was written from a truncated body", inline, len(wc.Data))
			}
		}
	}
}
