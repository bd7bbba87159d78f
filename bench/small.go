package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	smallFileSize = 1024 // bytes in each file of the small workload
	smallPerDir   = 1000 // files per directory, so no listing is huge
)

// smallRep is what one rep of the small workload measured.
type smallRep struct {
	writesPerSec, readsPerSec float64
	write, read               latency
}

// runSmall writes SmallFiles files of 1 KiB with SmallClients clients and
// reads them back, checking every byte, Reps times.
func (e *env) runSmall(ctx context.Context) (*SmallResult, error) {
	var reps []smallRep
	for rep := range e.cfg.Reps {
		r, err := e.smallRep(ctx, rep)
		if err != nil {
			return nil, err
		}
		reps = append(reps, r)
	}
	pick := func(f func(smallRep) float64) Figure {
		vals := make([]float64, len(reps))
		for i, r := range reps {
			vals[i] = f(r)
		}
		return figureOf(vals)
	}
	return &SmallResult{
		Files: e.cfg.SmallFiles, Clients: e.cfg.SmallClients, FileBytes: smallFileSize,
		WritesPerSec: pick(func(r smallRep) float64 { return r.writesPerSec }),
		ReadsPerSec:  pick(func(r smallRep) float64 { return r.readsPerSec }),
		WriteP50MS:   pick(func(r smallRep) float64 { return r.write.P50MS }),
		WriteP99MS:   pick(func(r smallRep) float64 { return r.write.P99MS }),
		ReadP50MS:    pick(func(r smallRep) float64 { return r.read.P50MS }),
		ReadP99MS:    pick(func(r smallRep) float64 { return r.read.P99MS }),
	}, nil
}

func (e *env) smallRep(ctx context.Context, rep int) (smallRep, error) {
	n := e.cfg.SmallFiles
	dir := fmt.Sprintf("%s/small/r%d", e.root, rep)
	path := func(i int) string { return fmt.Sprintf("%s/d%03d/f%06d", dir, i/smallPerDir, i) }
	seed := func(i int) uint64 { return seedOf(1, uint64(rep), uint64(i)) }
	label := fmt.Sprintf("(%d files, %d clients, %s)", n, e.cfg.SmallClients, e.repLabel(rep))

	// The directories are made first, so that the writes measure files
	// only, not also directory creation racing between clients.
	e.prog.start("small: making directories " + label)
	for d := range (n + smallPerDir - 1) / smallPerDir {
		p := fmt.Sprintf("%s/d%03d", dir, d)
		if err := e.fs.MkdirAll(ctx, p); err != nil {
			return smallRep{}, fmt.Errorf("mkdir %s: %w", p, err)
		}
	}
	e.prog.start("small: writing " + label)
	wrote, took, err := e.smallPhase(ctx, func(ctx context.Context, i int) error {
		b := content(seed(i), smallFileSize)
		err := e.fs.Put(ctx, path(i), bytes.NewReader(b), int64(len(b)))
		return err
	})
	if err != nil {
		return smallRep{}, fmt.Errorf("write: %w", err)
	}
	r := smallRep{writesPerSec: perSecond(n, took), write: summarize(wrote)}
	e.prog.start("small: reading back " + label)
	read, took, err := e.smallPhase(ctx, func(ctx context.Context, i int) error {
		got, err := e.fs.ReadFile(ctx, path(i))
		if err == nil && !bytes.Equal(got, content(seed(i), smallFileSize)) {
			err = fmt.Errorf("%s: %w", path(i), ErrMismatch)
		}
		return err
	})
	if err != nil {
		return smallRep{}, fmt.Errorf("read: %w", err)
	}
	r.readsPerSec, r.read = perSecond(n, took), summarize(read)
	return r, nil
}

// smallPhase calls do for every file index with SmallClients clients that
// take the next index as they finish one, and returns each call's
// duration and the time the whole phase took.
func (e *env) smallPhase(ctx context.Context, do func(ctx context.Context, i int) error) ([]time.Duration, time.Duration, error) {
	return e.phase(ctx, e.cfg.SmallFiles, do)
}

// phase calls do for every index below n with SmallClients clients that
// take the next index as they finish one, and returns each call's
// duration and the time the whole phase took.
func (e *env) phase(ctx context.Context, n int, do func(ctx context.Context, i int) error) ([]time.Duration, time.Duration, error) {
	durs := make([]time.Duration, n)
	var next, done atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, e.cfg.SmallClients)
	var wg sync.WaitGroup
	start := time.Now()
	for range e.cfg.SmallClients {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				if err := do(ctx, i); err != nil {
					errs <- err
					cancel()
					return
				}
				durs[i] = time.Since(t)
				e.prog.update(done.Add(1), int64(n))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return durs, took, nil
}
