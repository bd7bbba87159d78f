package router

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"shoal/api"
)

// metrics counts a router's requests for Prometheus. A nil *metrics
// counts nothing (Config.Metrics unset).
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	received    prometheus.Counter
	sent        prometheus.Counter
	retries     *prometheus.CounterVec
	waitingRoom prometheus.Gauge
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	cacheBytes  prometheus.Gauge
	metaReads   prometheus.Counter
	readCalls   prometheus.Counter
	metaOps     prometheus.Counter
	opCalls     prometheus.Counter

	// own gathers the collectors above for GET /v1/stats.
	own *prometheus.Registry
}

// operations are the values of the operation label: the file API's
// operations by method and op, and "other" for the rest of the API.
var operations = []string{"read", "write", "write_at", "exists", "delete", "stat", "chunks", "copy", "rename", "link",
	"mkdir", "create", "symlink", "mknod", "setattr", "release", "keep", "match", "other"}

func newMetrics() *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_router_requests_total",
			Help: "HTTP requests answered, by operation and status code.",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shoal_router_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 17), // 0.2 ms to 13 s
		}, []string{"operation"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_router_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_router_received_bytes_total",
			Help: "Bytes of request bodies read.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_router_sent_bytes_total",
			Help: "Bytes of response bodies written.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_router_retries_total",
			Help: "Calls to storage nodes tried again (a primary busy, changing or not answering), by group.",
		}, []string{"group"}),
		waitingRoom: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_router_waiting_for_room",
			Help: "Chunks waiting for a group with room (every group full) or with a primary.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_router_chunk_cache_hits_total",
			Help: "Chunk reads served from the router's chunk cache (--cache-size).",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_router_chunk_cache_misses_total",
			Help: "Chunk reads the router's chunk cache did not hold, fetched from the chunk's group (hit ratio: hits / (hits + misses)).",
		}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_router_chunk_cache_bytes",
			Help: "Bytes of chunks the router's chunk cache holds.",
		}),
		metaReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_router_meta_reads_total",
			Help: "Quick namespace reads (lookups, put checks, users, locks) sent to the meta group's primary, alone or in batches.",
		}),
		readCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_router_meta_read_calls_total",
			Help: "Calls that carried the quick namespace reads to the meta group's primary, one per read sent alone and one per batch (reads per call: shoal_router_meta_reads_total / this).",
		}),
		metaOps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_router_meta_ops_total",
			Help: "Namespace changes sent to the meta group's primary to commit, alone or in batches (an op sent again alone after its batch failed for it counts again).",
		}),
		opCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_router_meta_op_calls_total",
			Help: "Calls that carried namespace changes to the meta group's primary, one per op sent alone and one per batch (ops per call: shoal_router_meta_ops_total / this).",
		}),
	}
	for _, op := range operations {
		m.duration.WithLabelValues(op)
	}
	m.own = prometheus.NewRegistry()
	m.own.MustRegister(m.all()...)
	return m
}

// stats sums the file API's counters for GET /v1/stats.
func (m *metrics) stats(now time.Time) api.RouterStats {
	st := api.RouterStats{Time: now.UTC(), Metered: m != nil}
	if m == nil {
		return st
	}
	families, _ := m.own.Gather() // only our own collectors: they cannot fail
	for _, f := range families {
		for _, s := range f.GetMetric() {
			var op, code string
			for _, l := range s.GetLabel() {
				switch l.GetName() {
				case "operation":
					op = l.GetValue()
				case "code":
					code = l.GetValue()
				}
			}
			if op == "other" {
				continue
			}
			switch f.GetName() {
			case "shoal_router_requests_total":
				n := uint64(s.GetCounter().GetValue())
				st.Requests += n
				if strings.HasPrefix(code, "5") {
					st.Errors += n
				}
			case "shoal_router_request_duration_seconds":
				st.Seconds += s.GetHistogram().GetSampleSum()
			case "shoal_router_received_bytes_total":
				st.Received = uint64(s.GetCounter().GetValue())
			case "shoal_router_sent_bytes_total":
				st.Sent = uint64(s.GetCounter().GetValue())
			case "shoal_router_requests_in_flight":
				st.InFlight = int64(s.GetGauge().GetValue())
			}
		}
	}
	return st
}

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.inFlight, m.received, m.sent, m.retries, m.waitingRoom,
		m.cacheHits, m.cacheMisses, m.cacheBytes, m.metaReads, m.readCalls, m.metaOps, m.opCalls}
}

// readCall counts a call to the meta group's primary carrying n quick
// reads.
func (m *metrics) readCall(n int) {
	if m != nil {
		m.metaReads.Add(float64(n))
		m.readCalls.Inc()
	}
}

// opCall counts a call to the meta group's primary carrying n ops.
func (m *metrics) opCall(n int) {
	if m != nil {
		m.metaOps.Add(float64(n))
		m.opCalls.Inc()
	}
}

// chunkCache counts a chunk read that hit or missed the chunk cache.
func (m *metrics) chunkCache(hit bool) {
	switch {
	case m == nil:
	case hit:
		m.cacheHits.Inc()
	default:
		m.cacheMisses.Inc()
	}
}

// chunkCacheBytes sets the bytes the chunk cache holds.
func (m *metrics) chunkCacheBytes(n int64) {
	if m != nil {
		m.cacheBytes.Set(float64(n))
	}
}

// operation names what r asks for, one of operations.
func operation(r *http.Request) string {
	p := r.URL.Path
	if p != "/v1/fs" && !strings.HasPrefix(p, "/v1/fs/") {
		return "other"
	}
	op := ""
	if r.URL.RawQuery != "" {
		op = r.URL.Query().Get("op")
	}
	switch {
	case op == "" && r.Method == http.MethodGet:
		return "read"
	case op == "" && r.Method == http.MethodPut:
		return "write"
	case op == "" && r.Method == http.MethodPatch:
		return "write_at"
	case op == "" && r.Method == http.MethodHead:
		return "exists"
	case op == "" && r.Method == http.MethodDelete:
		return "delete"
	case r.Method == http.MethodGet && (op == "stat" || op == "chunks"),
		r.Method == http.MethodPost && (op == "copy" || op == "rename" || op == "link" || op == "mkdir" ||
			op == "create" || op == "symlink" || op == "mknod" || op == "setattr" || op == "release" || op == "keep" || op == "match"):
		return op
	}
	return "other"
}

// begin starts metering a request: the returned writer and body count
// what goes through them, and done records the request once answered.
func (m *metrics) begin(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	start := time.Now()
	op := operation(r)
	mw := &statusRecorder{ResponseWriter: w}
	var body *meteredBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &meteredBody{ReadCloser: r.Body}
		r.Body = body
	}
	m.inFlight.Inc()
	return mw, func() {
		m.inFlight.Dec()
		code := mw.status
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(op, strconv.Itoa(code)).Inc()
		m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		m.sent.Add(float64(mw.written))
		if body != nil {
			m.received.Add(float64(body.n))
		}
	}
}

func (m *metrics) retried(group string) {
	if m != nil {
		m.retries.WithLabelValues(group).Inc()
	}
}

// waiting counts a chunk waiting for room until the returned function
// is called.
func (m *metrics) waiting() func() {
	if m == nil {
		return func() {}
	}
	m.waitingRoom.Inc()
	return m.waitingRoom.Dec
}

// meteredBody counts the bytes read of a request body.
type meteredBody struct {
	io.ReadCloser
	n int64
}

func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
