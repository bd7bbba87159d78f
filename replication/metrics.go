package replication

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a primary steps down, as Metrics count them: a bounded set, so
// that each is one series. The log line of the step-down says more.
const (
	// StepDownHigherBallot: a member or a candidate showed a higher
	// ballot; another node leads the group now.
	StepDownHigherBallot = "higher_ballot"
	// StepDownView: the node's gossip view shows another primary with a
	// higher term (Node.StepDown).
	StepDownView = "gossip_view"
	// StepDownDisk: this node's disk refused a write (the log, a chunk,
	// the namespace or the promise).
	StepDownDisk = "disk"
	// StepDownSnapshot: a snapshot it installed holds a higher promise.
	StepDownSnapshot = "snapshot"
	// StepDownClosing: the node is shutting down.
	StepDownClosing = "closing"
)

// Metrics are what a replication node counts and times as it works, for
// Prometheus. What its state says at any moment (term, indexes, members
// and their lag) is read from Status and GroupInfo when scraped instead;
// see role. A nil *Metrics counts nothing. One Metrics may serve the
// successive Nodes of one process's storage node (a standby that joins a
// group later, say).
type Metrics struct {
	logWrite     prometheus.Histogram
	logEntries   prometheus.Histogram
	applyCommit  prometheus.Histogram
	promotions   prometheus.Counter
	stepDowns    *prometheus.CounterVec
	reads        prometheus.Counter
	confirmed    prometheus.Counter
	scrubBytes   prometheus.Counter
	scrubCorrupt prometheus.Counter
}

// NewMetrics makes a node's metrics, to be registered (Collectors) and
// given to Config.Metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		logWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_replication_log_write_seconds",
			Help:    "Time to write one batch of entries to the log durably (one write and one fdatasync).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 0.1 ms to 3.3 s
		}),
		logEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_replication_log_write_entries",
			Help:    "Entries in one batch written to the log.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 to 512
		}),
		applyCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_replication_apply_seconds",
			Help:    "Time to apply committed entries to the namespace in one transaction, its commit included; a primary holds it open 20 ms for the entries that commit meanwhile.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		promotions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_replication_promotions_total",
			Help: "Times this node became its group's primary.",
		}),
		stepDowns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_replication_step_downs_total",
			Help: "Times this node stopped being its group's primary, by reason: higher_ballot, gossip_view, disk, snapshot, closing.",
		}, []string{"reason"}),
		reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_replication_reads_total",
			Help: "Linearizable reads this node answered as primary.",
		}),
		confirmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_replication_read_confirmations_total",
			Help: "Rounds in which a majority confirmed this primary's leadership for the reads waiting on it.",
		}),
		scrubBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_storage_scrubbed_bytes_total",
			Help: "Bytes of chunks at rest re-read and verified by the scrubber.",
		}),
		scrubCorrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_storage_scrub_corrupt_chunks_total",
			Help: "Corrupt chunk copies the scrubber found (each dropped and fetched again from a peer).",
		}),
	}
	for _, r := range []string{StepDownHigherBallot, StepDownView, StepDownDisk, StepDownSnapshot, StepDownClosing} {
		m.stepDowns.WithLabelValues(r) // every reason shows, at 0 until it happens
	}
	return m
}

// Collectors are the metrics to register (and unregister) with
// Prometheus.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.logWrite, m.logEntries, m.applyCommit, m.promotions, m.stepDowns, m.reads, m.confirmed, m.scrubBytes, m.scrubCorrupt}
}

func (m *Metrics) loggedBatch(entries int, took time.Duration) {
	if m == nil {
		return
	}
	m.logWrite.Observe(took.Seconds())
	m.logEntries.Observe(float64(entries))
}

func (m *Metrics) applied(took time.Duration) {
	if m != nil {
		m.applyCommit.Observe(took.Seconds())
	}
}

func (m *Metrics) promoted() {
	if m != nil {
		m.promotions.Inc()
	}
}

func (m *Metrics) steppedDown(reason string) {
	if m != nil {
		m.stepDowns.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) answeredReads(n int) {
	if m != nil && n > 0 {
		m.reads.Add(float64(n))
		m.confirmed.Inc()
	}
}

func (m *Metrics) scrubbed(bytes int64, corrupt bool) {
	if m == nil {
		return
	}
	m.scrubBytes.Add(float64(bytes))
	if corrupt {
		m.scrubCorrupt.Inc()
	}
}
