package bench

import (
	"context"
	"fmt"
	"time"

	"shoal/harness"
	"shoal/wait"
)

const (
	failoverBefore = time.Second     // writing before the kill
	failoverAfter  = 2 * time.Second // writing after the first write that got through
	failoverLimit  = time.Minute     // longest wait for that first write
	resyncLimit    = 2 * time.Minute // longest wait for the restarted node to be in sync
)

// failoverRun is what one kill measured.
type failoverRun struct {
	took                time.Duration
	acked, lost, failed int
}

// runFailover kills the meta group's primary FailoverRuns times under a
// continuous writer.
func (e *env) runFailover(ctx context.Context) (*FailoverResult, error) {
	res := &FailoverResult{Runs: e.cfg.FailoverRuns, Load: e.cfg.FailoverLoad}
	var ms []float64
	for run := range e.cfg.FailoverRuns {
		r, err := e.failoverRun(ctx, run)
		if err != nil {
			return nil, err
		}
		ms = append(ms, millis(r.took))
		res.AckedWrites += r.acked
		res.LostWrites += r.lost
		res.FailedWrites += r.failed
	}
	res.UnavailableMS = figureOf(ms)
	return res, nil
}

// failoverRun writes for a second (with FailoverLoad more writers), kills
// the primary with SIGKILL, times
// the first write that started after the kill, writes two more seconds,
// reads every acknowledged write back, and restarts the killed node with
// its own arguments and data, waiting until it is in sync again.
func (e *env) failoverRun(ctx context.Context, run int) (failoverRun, error) {
	of := fmt.Sprintf("(run %d/%d)", run+1, e.cfg.FailoverRuns)
	e.prog.start("failover: writing before the kill " + of)
	// No 503 retries: a write that fails is counted, and the next one is a
	// new attempt, so the time measured is that of a fresh request.
	wcl, err := e.client(15*time.Second, -1)
	if err != nil {
		return failoverRun{}, err
	}
	w := harness.StartWriter(ctx, wcl, fmt.Sprintf("%s/failover/run%d", e.root, run), nil)
	defer w.Halt()
	// The load: more writers of 1 KiB files, whose writes are read back
	// too; only w's first write after the kill is timed.
	var load []*harness.Writer
	for c := range e.cfg.FailoverLoad {
		prefix := fmt.Sprintf("%s/failover/run%d-load%d", e.root, run, c)
		body := func(i int) []byte {
			b := make([]byte, 1024)
			copy(b, fmt.Sprintf("%s/%06d", prefix, i))
			return b
		}
		l := harness.StartWriter(ctx, wcl, prefix, body)
		defer l.Halt()
		load = append(load, l)
	}
	if err := wait.Sleep(ctx, failoverBefore); err != nil {
		return failoverRun{}, err
	}
	before, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := harness.WaitFor(before, "a write acknowledged before the kill", func() bool {
		n, _ := w.Counts()
		return n > 0
	}); err != nil {
		return failoverRun{}, err
	}
	victim, err := e.local.Primary(ctx, localGroup)
	if err != nil {
		return failoverRun{}, err
	}

	e.prog.start(fmt.Sprintf("failover: killed primary %s, waiting for writes %s", victim.Name, of))
	killed := time.Now()
	victim.Kill()
	var first time.Time
	after, cancel := context.WithTimeout(ctx, failoverLimit)
	defer cancel()
	err = harness.WaitFor(after, "a write acknowledged after killing primary "+victim.Name, func() bool {
		var ok bool
		first, ok = w.FirstAckAfter(killed)
		return ok
	})
	if err != nil {
		return failoverRun{}, fmt.Errorf("%w (see the logs in %s)", err, e.local.Dir)
	}
	r := failoverRun{took: first.Sub(killed)}
	if err := wait.Sleep(ctx, failoverAfter); err != nil {
		return failoverRun{}, err
	}
	acked := w.Halt()
	_, r.failed = w.Counts()
	for _, l := range load {
		acked = append(acked, l.Halt()...)
		_, failed := l.Counts()
		r.failed += failed
	}
	r.acked = len(acked)

	e.prog.start(fmt.Sprintf("failover: reading back %d acknowledged writes %s", len(acked), of))
	lost, err := harness.Lost(ctx, e.cl, acked)
	if err != nil {
		return failoverRun{}, err
	}
	for _, a := range lost {
		e.log.Error("acknowledged write lost: missing or with other content", "path", a.Path)
	}
	r.lost = len(lost)
	e.prog.start(fmt.Sprintf("failover: restarting %s, waiting until it is in sync %s", victim.Name, of))
	if err := victim.Start(); err != nil {
		return failoverRun{}, err
	}
	if err := e.local.waitReady(ctx, resyncLimit); err != nil {
		return failoverRun{}, fmt.Errorf("after restarting %s: %w", victim.Name, err)
	}
	return r, nil
}
