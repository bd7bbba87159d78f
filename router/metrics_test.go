package router

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"shoal/api"
)

func TestOperationLabel(t *testing.T) {
	for _, c := range []struct{ method, target, want string }{
		{"GET", "/v1/fs/a", "read"},
		{"GET", "/v1/fs", "read"},
		{"PUT", "/v1/fs/a", "write"},
		{"PATCH", "/v1/fs/a?offset=3", "write_at"},
		{"HEAD", "/v1/fs/a", "exists"},
		{"DELETE", "/v1/fs/a?recursive=1", "delete"},
		{"GET", "/v1/fs/a?op=stat", "stat"},
		{"GET", "/v1/fs/a?op=chunks", "chunks"},
		{"POST", "/v1/fs/a?op=rename&to=/b", "rename"},
		{"POST", "/v1/fs/a?op=mkdir", "mkdir"},
		{"POST", "/v1/fs/a?op=setattr", "setattr"},
		{"GET", "/v1/fs/a?op=rename", "other"}, // not an operation: a 400
		{"POST", "/v1/fs/a?op=" + string(bytes.Repeat([]byte("x"), 300)), "other"},
		{"GET", "/v1/cluster", "other"},
		{"GET", "/v1/fsx", "other"},
		{"GET", "/healthz", "other"},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		if got := operation(r); got != c.want {
			t.Errorf("%s %s: operation %q, want %q", c.method, c.target, got, c.want)
		}
	}
}

// The router counts its requests by operation and status, times them,
// and counts the bytes of their bodies both ways.
func TestRouterMetrics(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	reg := prometheus.NewRegistry()
	s := c.router(func(cfg *Config) { cfg.Metrics = reg })
	data := content(40)
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(data)); w.Code != http.StatusCreated {
		t.Fatalf("put: %d %s", w.Code, w.Body)
	}
	w := do(s, "GET", "/v1/fs/f", nil)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Fatalf("get: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := do(s, "GET", "/v1/fs/missing?op=stat", nil); w.Code != http.StatusNotFound {
		t.Fatalf("stat of a missing file: %d", w.Code)
	}
	m := s.metrics
	for _, c := range []struct {
		op, code string
		want     float64
	}{{"write", "201", 1}, {"read", "200", 1}, {"stat", "404", 1}, {"read", "404", 0}} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.op, c.code)); got != c.want {
			t.Errorf("requests %s %s: %v, want %v", c.op, c.code, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.received); got != float64(len(data)) {
		t.Errorf("bytes received: %v, want %d", got, len(data))
	}
	if got := testutil.ToFloat64(m.sent); got < float64(len(data)) {
		t.Errorf("bytes sent: %v, want at least the %d of the file", got, len(data))
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("requests in flight after all were answered: %v", got)
	}
	if n := testutil.CollectAndCount(m.duration); n != len(operations) {
		t.Errorf("latency histograms: %d, want one per operation (%d)", n, len(operations))
	}
	// The console's traffic comes from the same counters: the three file
	// requests, not the stats request itself.
	var st api.RouterStats
	if w := do(s, "GET", "/v1/stats", nil); w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &st) != nil {
		t.Fatalf("stats: %d %s", w.Code, w.Body)
	}
	if !st.Metered || st.Requests != 3 || st.Errors != 0 || st.Received != uint64(len(data)) || st.Sent < uint64(len(data)) || st.Seconds <= 0 {
		t.Errorf("stats %+v: want 3 metered requests, no error, %d bytes received, at least as many sent, some time", st, len(data))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("after Close the registry still has %d series (%v)", n, err)
	}
}

// What metering costs a request, against the same request unmetered:
// go test ./router -run '^$' -bench Metering.
func BenchmarkMetering(b *testing.B) {
	handler := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(make([]byte, 1024))
	}
	for _, metered := range []bool{false, true} {
		name := "off"
		if metered {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			m := newMetrics()
			r := httptest.NewRequest("GET", "/v1/fs/dir/file", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				if metered {
					mw, done := m.begin(w, r)
					handler(mw, r)
					done()
				} else {
					handler(w, r)
				}
			}
		})
	}
}
