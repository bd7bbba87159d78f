package harness

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/client"
)

// fakeRouter keeps files in memory and fails every third write with 503;
// forget drops files, corrupt changes them, and down makes every read
// fail with 500.
type fakeRouter struct {
	mu     sync.Mutex
	files  map[string]string
	writes int
	down   bool
}

func (f *fakeRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/v1/fs")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		f.writes++
		if f.writes%3 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"unavailable","message":"no primary"}`)
			return
		}
		f.files[p] = string(b)
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		v, ok := f.files[p]
		switch {
		case f.down:
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":"internal","message":"down"}`)
		case !ok:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not_found","message":"no such file"}`)
		default:
			io.WriteString(w, v)
		}
	}
}

func TestWriterRecordsAcknowledgedWrites(t *testing.T) {
	fr := &fakeRouter{files: map[string]string{}}
	srv := httptest.NewServer(fr)
	defer srv.Close()
	cl, err := client.New(client.Config{Router: srv.URL, Timeout: 5 * time.Second, Retry503: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	w := StartWriter(ctx, cl, "/w", nil)
	Await(t, 10*time.Second, "ten acknowledged writes", func() bool { n, _ := w.Counts(); return n >= 10 })
	mark := time.Now()
	var first time.Time
	Await(t, 10*time.Second, "a write begun after the mark", func() bool {
		var ok bool
		first, ok = w.FirstAckAfter(mark)
		return ok
	})
	acks := w.Halt()
	if again := w.Halt(); len(again) != len(acks) {
		t.Fatalf("a second Halt returned %d writes, the first %d", len(again), len(acks))
	}
	acked, failed := w.Counts()
	if acked != len(acks) || failed == 0 || failed > acked {
		t.Fatalf("counts %d acknowledged, %d failed; Halt returned %d; want every third write failed", acked, failed, len(acks))
	}
	if first.Before(mark) {
		t.Fatalf("first acknowledgement after the mark at %v, before it", first)
	}
	for i, a := range acks {
		if i > 0 && a.Path <= acks[i-1].Path || !a.Start.Before(a.End) {
			t.Fatalf("acknowledgement %d: %+v after %+v", i, a, acks[i-1])
		}
	}

	if lost, err := Lost(ctx, cl, acks); err != nil || len(lost) != 0 {
		t.Fatalf("Lost with every write kept: %v, %v", lost, err)
	}
	fr.mu.Lock()
	delete(fr.files, acks[1].Path)
	fr.files[acks[4].Path] = "other content"
	fr.mu.Unlock()
	lost, err := Lost(ctx, cl, acks)
	if err != nil || len(lost) != 2 || lost[0].Path != acks[1].Path || lost[1].Path != acks[4].Path {
		t.Fatalf("Lost with one write gone and one changed: %v, %v", lost, err)
	}
	fr.mu.Lock()
	fr.down = true
	fr.mu.Unlock()
	if _, err := Lost(ctx, cl, acks); err == nil || errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Lost with every read failing: %v, want the read error", err)
	}
}

func TestWriterBody(t *testing.T) {
	fr := &fakeRouter{files: map[string]string{}}
	srv := httptest.NewServer(fr)
	defer srv.Close()
	cl, err := client.New(client.Config{Router: srv.URL, Timeout: 5 * time.Second, Retry503: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := StartWriter(context.Background(), cl, "/b", func(i int) []byte { return []byte(strings.Repeat("x", i)) })
	Await(t, 10*time.Second, "two acknowledged writes", func() bool { n, _ := w.Counts(); return n >= 2 })
	acks := w.Halt()
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if got := fr.files["/b/000001"]; got != "x" || acks[0].Path != "/b/000000" {
		t.Fatalf("file 1 holds %q; first acknowledged %s", got, acks[0].Path)
	}
}
