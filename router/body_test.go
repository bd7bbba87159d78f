package router

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"shoal/api"
	"shoal/wire"
)

// stallServer serves a router with a short BodyTimeout on a real socket:
// only a real connection has a read deadline.
func stallServer(t *testing.T, timeout time.Duration) (string, *testNode) {
	c := newTestCluster(t)
	g1 := c.group("g1", 1, 1<<20)
	putFileOn(t, g1[0], "/f", content(40), "g1", g1)
	s := c.router(func(cfg *Config) { cfg.BodyTimeout = timeout })
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
