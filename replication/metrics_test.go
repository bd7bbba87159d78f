package replication

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"shoal/harness"
)

// A node's metrics count what it did: log writes on every member, reads
// answered with a confirmation round on the primary, a promotion on each
// primary and, when another member takes over, a step-down for the
// higher ballot on the one that led.
func TestMetricsCount(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	ms := map[uint64]*Metrics{1: NewMetrics(), 2: NewMetrics(), 3: NewMetrics()}
	c.cfg = func(cfg *Config) { cfg.Metrics = ms[cfg.ID] }
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	acks := newAckLog()
	for _, p := range []string{"/a", "/b", "/c"} {
		if err := acks.put(ctx, c.node(1), p, "x"); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		if _, err := read(ctx, c.node(1), "/a"); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(ms[1].reads); got != 4 {
		t.Errorf("reads answered by the primary: %v, want 4", got)
	}
	if got := testutil.ToFloat64(ms[1].confirmed); got < 1 || got > 4 {
		t.Errorf("confirmation rounds for 4 reads one after another: %v, want 1 to 4", got)
	}
	for id, m := range ms {
		// Each member wrote the three puts (and the ballot's first entry).
		if n := histogramCount(t, m.logEntries); n < 1 {
			t.Errorf("node %d: %d log writes counted, want some", id, n)
		}
	}
	if got := testutil.ToFloat64(ms[1].promotions); got != 1 {
		t.Errorf("promotions of the first primary: %v, want 1", got)
	}

	if _, err := c.promoteRetry(ctx, 2); err != nil {
		t.Fatal(err)
	}
	harness.Await(t, 10*time.Second, "the old primary to step down for the higher ballot", func() bool {
		return testutil.ToFloat64(ms[1].stepDowns.WithLabelValues(StepDownHigherBallot)) == 1
	})
	if got := testutil.ToFloat64(ms[2].promotions); got != 1 {
		t.Errorf("promotions of the new primary: %v, want 1", got)
	}
	for _, r := range []string{StepDownView, StepDownDisk, StepDownSnapshot, StepDownClosing} {
		if got := testutil.ToFloat64(ms[1].stepDowns.WithLabelValues(r)); got != 0 {
			t.Errorf("step-downs for %s: %v, want 0", r, got)
		}
	}
	if err := acks.put(ctx, c.node(2), "/d", "y"); err != nil {
		t.Fatal(err)
	}
	acks.checkPrimary(context.Background(), t, c.node(2))
}

// histogramCount is how many observations h has.
func histogramCount(t *testing.T, h interface{ Write(*dto.Metric) error }) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
