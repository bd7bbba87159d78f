package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The file operations the ops workload times, in the order of a client's
// iteration: write a file, read it, stat it, check it exists, copy it,
// rename the copy, delete both (two timed deletes).
var opNames = []string{"write", "read", "stat", "exists", "copy", "rename", "delete"}

const (
	opsIterations = 10      // iterations per client and client count
	opsFileSize   = 70      // bytes written by each "write"
	opsBodyText   = "shoal" // repeated to make the content
)

// opsClientCounts are the concurrent clients of each ops measurement.
var opsClientCounts = []int{1, 5, 10}

// opsSamples collects one rep's durations per operation.
type opsSamples struct {
	mu sync.Mutex
	d  map[string][]time.Duration
}

func (s *opsSamples) add(op string, d time.Duration) {
	s.mu.Lock()
	s.d[op] = append(s.d[op], d)
	s.mu.Unlock()
}

// runOps measures every operation at every client count, Reps times.
func (e *env) runOps(ctx context.Context) (*OpsResult, error) {
	// perRep[op][clients] holds one latency summary per rep.
	perRep := map[string]map[int][]latency{}
	for _, op := range opNames {
		perRep[op] = map[int][]latency{}
	}
	for rep := range e.cfg.Reps {
		for _, n := range opsClientCounts {
			e.prog.start(fmt.Sprintf("ops: %d %s x %d iterations (rep %d/%d)", n, plural(n, "client", "clients"), opsIterations, rep+1, e.cfg.Reps))
			s, err := e.opsRound(ctx, rep, n)
			if err != nil {
				return nil, err
			}
			for _, op := range opNames {
				perRep[op][n] = append(perRep[op][n], summarize(s.d[op]))
			}
		}
	}
	res := &OpsResult{Iterations: opsIterations, FileBytes: opsFileSize}
	for _, op := range opNames {
		for _, n := range opsClientCounts {
			ls := perRep[op][n]
			var mean, p50, p99 []float64
			for _, l := range ls {
				mean, p50, p99 = append(mean, l.MeanMS), append(p50, l.P50MS), append(p99, l.P99MS)
			}
			res.Rows = append(res.Rows, OpsRow{Op: op, Clients: n,
				MeanMS: figureOf(mean), P50MS: figureOf(p50), P99MS: figureOf(p99)})
		}
	}
	return res, nil
}

// opsRound runs n clients through their iterations at once.
func (e *env) opsRound(ctx context.Context, rep, n int) (*opsSamples, error) {
	s := &opsSamples{d: map[string][]time.Duration{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done atomic.Int64
	total := int64(n * opsIterations)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for c := range n {
		dir := fmt.Sprintf("%s/ops/r%d/c%d/client%02d", e.root, rep, n, c)
		wg.Go(func() {
			err := e.opsClient(ctx, dir, s, func() { e.prog.update(done.Add(1), total) })
			if err != nil {
				errs <- err
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	return s, <-errs
}

// opsClient runs one client's iterations in its own directory, made
// beforehand so that the first write does not also create it.
func (e *env) opsClient(ctx context.Context, dir string, s *opsSamples, tick func()) error {
	if err := e.fs.MkdirAll(ctx, dir); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	body := bytes.Repeat([]byte(opsBodyText), opsFileSize/len(opsBodyText)+1)[:opsFileSize]
	timed := func(op string, f func() error) error {
		start := time.Now()
		err := f()
		s.add(op, time.Since(start))
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return nil
	}
	for i := range opsIterations {
		file, cp, moved := fmt.Sprintf("%s/f%02d", dir, i), fmt.Sprintf("%s/c%02d", dir, i), fmt.Sprintf("%s/m%02d", dir, i)
		steps := []struct {
			op string
			f  func() error
		}{
			{"write", func() error {
				err := e.fs.Put(ctx, file, bytes.NewReader(body), int64(len(body)))
				return err
			}},
			{"read", func() error {
				got, err := e.fs.ReadFile(ctx, file)
				if err == nil && !bytes.Equal(got, body) {
					err = fmt.Errorf("%s: %w (%d bytes, want %d)", file, ErrMismatch, len(got), len(body))
				}
				return err
			}},
			{"stat", func() error {
				size, err := e.fs.Stat(ctx, file)
				if err == nil && size != int64(len(body)) {
					err = fmt.Errorf("%s: %w (size %d, wrote %d)", file, ErrMismatch, size, len(body))
				}
				return err
			}},
			{"exists", func() error {
				ok, err := e.fs.Exists(ctx, file)
				if err == nil && !ok {
					err = fmt.Errorf("%s was written but does not exist", file)
				}
				return err
			}},
			{"copy", func() error { return e.fs.Copy(ctx, file, cp) }},
			{"rename", func() error { return e.fs.Rename(ctx, cp, moved) }},
			{"delete", func() error { return e.fs.Delete(ctx, file, false) }},
			{"delete", func() error { return e.fs.Delete(ctx, moved, false) }},
		}
		for _, st := range steps {
			if err := timed(st.op, st.f); err != nil {
				return err
			}
		}
		tick()
	}
	return nil
}
