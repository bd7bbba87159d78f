package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/client"
)

const (
	failoverBefore = time.Second     // writing before the kill
	failoverAfter  = 2 * time.Second // writing after the first write that got through
	failoverLimit  = time.Minute     // longest wait for that first write
	resyncLimit    = 2 * time.Minute // longest wait for the restarted node to be in sync
)

// ackedWrite is a write the cluster acknowledged, with when it was sent
// and answered.
type ackedWrite struct {
	path, body string
	start, end time.Time
}

// failoverWriter writes small files one after the other, as fast as the
// cluster acknowledges them, and records every acknowledged one.
type failoverWriter struct {
	cl     *client.Client
	dir    string
	failed atomic.Int64 // writes answered with an error

	mu    sync.Mutex
	acked []ackedWrite // in order of completion

	stop     chan struct{}
	done     chan struct{}
	haltOnce sync.Once
}

// startWriter starts writing files into dir until halted or ctx ends.
func startWriter(ctx context.Context, cl *client.Client, dir string) *failoverWriter {
	w := &failoverWriter{cl: cl, dir: dir, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run(ctx)
	return w
}

func (w *failoverWriter) run(ctx context.Context) {
	defer close(w.done)
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		p := fmt.Sprintf("%s/f%06d", w.dir, i)
		body := fmt.Sprintf("failover write %d of %s", i, w.dir)
		start := time.Now()
		_, err := w.cl.Put(ctx, p, strings.NewReader(body), int64(len(body)))
		if err != nil {
			w.failed.Add(1)
			continue
		}
		w.mu.Lock()
		w.acked = append(w.acked, ackedWrite{path: p, body: body, start: start, end: time.Now()})
		w.mu.Unlock()
	}
}

func (w *failoverWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// firstAckAfter returns when the first acknowledged write that started
// after t was answered. A write already in flight at t does not count: it
// may have been committed by the old primary before it died.
func (w *failoverWriter) firstAckAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.acked {
		if a.start.After(t) {
			return a.end, true
		}
	}
	return time.Time{}, false
}

// halt stops the writer, waits for its last write and returns every
// acknowledged write. It may be called more than once.
func (w *failoverWriter) halt() []ackedWrite {
	w.haltOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.acked
}

// failoverRun is what one kill measured.
type failoverRun struct {
	took                time.Duration
	acked, lost, failed int
}

// runFailover kills the meta group's primary FailoverRuns times under a
// continuous writer.
func (e *env) runFailover(ctx context.Context) (*FailoverResult, error) {
	res := &FailoverResult{Runs: e.cfg.FailoverRuns}
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

// failoverRun writes for a second, kills the primary with SIGKILL, times
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
	w := startWriter(ctx, wcl, fmt.Sprintf("%s/failover/run%d", e.root, run))
	defer w.halt()
	if err := sleep(ctx, failoverBefore); err != nil {
		return failoverRun{}, err
	}
	if err := poll(ctx, 30*time.Second, func() bool { return w.count() > 0 }); err != nil {
		return failoverRun{}, fmt.Errorf("no write acknowledged before the kill: %w", err)
	}
	view, err := e.cl.Cluster(ctx)
	if err != nil {
		return failoverRun{}, fmt.Errorf("find the primary: %w", err)
	}
	primary := ""
	for _, g := range view.Groups {
		if g.Name == localGroup {
			primary = g.Primary
		}
	}
	if primary == "" {
		return failoverRun{}, fmt.Errorf("the router shows no primary of group %s to kill", localGroup)
	}
	victim, err := e.local.node(primary)
	if err != nil {
		return failoverRun{}, err
	}

	e.prog.start(fmt.Sprintf("failover: killed primary %s, waiting for writes %s", primary, of))
	killed := time.Now()
	e.local.kill(victim)
	var first time.Time
	err = poll(ctx, failoverLimit, func() bool {
		var ok bool
		first, ok = w.firstAckAfter(killed)
		return ok
	})
	if err != nil {
		return failoverRun{}, fmt.Errorf("no write acknowledged after killing primary %s: %w (see the logs in %s)", primary, err, e.local.dir)
	}
	r := failoverRun{took: first.Sub(killed)}
	if err := sleep(ctx, failoverAfter); err != nil {
		return failoverRun{}, err
	}
	acked := w.halt()
	r.acked, r.failed = len(acked), int(w.failed.Load())

	e.prog.start(fmt.Sprintf("failover: reading back %d acknowledged writes %s", len(acked), of))
	if r.lost, err = e.countLost(ctx, acked); err != nil {
		return failoverRun{}, err
	}
	e.prog.start(fmt.Sprintf("failover: restarting %s, waiting until it is in sync %s", primary, of))
	if err := e.local.start(victim); err != nil {
		return failoverRun{}, err
	}
	if err := e.local.waitReady(ctx, e.cl, "", resyncLimit); err != nil {
		return failoverRun{}, fmt.Errorf("after restarting %s: %w", primary, err)
	}
	return r, nil
}

// countLost reads every acknowledged write back and counts those missing
// or with other content. Any other failure to read is an error: it says
// nothing about whether the write was kept.
func (e *env) countLost(ctx context.Context, acked []ackedWrite) (int, error) {
	var lost atomic.Int64
	var next atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(acked) {
					return
				}
				a := acked[i]
				got, err := e.cl.ReadFile(ctx, a.path)
				switch {
				case errors.Is(err, client.ErrNotFound), err == nil && string(got) != a.body:
					e.log.Error("acknowledged write lost", "path", a.path, "got", string(got), "want", a.body, "err", err)
					lost.Add(1)
				case err != nil:
					errs <- fmt.Errorf("read back %s: %w", a.path, err)
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return int(lost.Load()), ctx.Err()
}

// poll checks cond every 10ms until it holds, ctx ends or limit passes.
func poll(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v", limit)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
