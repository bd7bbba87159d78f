package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"shoal/harness"
)

// The operations of the meta workload, in the order they run on one
// directory of MetaFiles files: each file created empty, stated, checked
// for existence, the directory listed whole (once per client), each file
// copied, each copy renamed, and both deleted.
var metaOps = []string{"create", "stat", "exists", "list", "copy", "rename", "delete"}

// metaRep is one rep: per operation, its rate and its latency.
type metaRep map[string]metaFigures

type metaFigures struct {
	perSec float64
	lat    latency
	// diskKB is the KiB every process of a local cluster wrote to disk
	// during the operation, per file; hasDisk is false elsewhere.
	diskKB  float64
	hasDisk bool
	// cpuMS is the CPU time every process of a local cluster used during
	// the operation, in ms per file; hasCPU is false elsewhere.
	cpuMS  float64
	hasCPU bool
}

// runMeta measures metadata operations on many files at SmallClients
// clients, Reps times.
func (e *env) runMeta(ctx context.Context) (*MetaResult, error) {
	var reps []metaRep
	for rep := range e.cfg.Reps {
		r, err := e.metaRep(ctx, rep)
		if err != nil {
			return nil, err
		}
		reps = append(reps, r)
	}
	res := &MetaResult{Files: e.cfg.MetaFiles, Clients: e.cfg.SmallClients}
	for _, op := range metaOps {
		var rate, p50, p99, disk, cpu []float64
		for _, r := range reps {
			rate, p50, p99 = append(rate, r[op].perSec), append(p50, r[op].lat.P50MS), append(p99, r[op].lat.P99MS)
			if r[op].hasDisk {
				disk = append(disk, r[op].diskKB)
			}
			if r[op].hasCPU {
				cpu = append(cpu, r[op].cpuMS)
			}
		}
		row := MetaRow{Op: op, PerSec: figureOf(rate), P50MS: figureOf(p50), P99MS: figureOf(p99)}
		if len(disk) == len(reps) {
			f := figureOf(disk)
			row.DiskKB = &f
		}
		if len(cpu) == len(reps) {
			f := figureOf(cpu)
			row.CPUMS = &f
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

func (e *env) metaRep(ctx context.Context, rep int) (metaRep, error) {
	n, clients := e.cfg.MetaFiles, e.cfg.SmallClients
	dir := fmt.Sprintf("%s/meta/r%d", e.root, rep)
	file := func(i int) string { return fmt.Sprintf("%s/f%06d", dir, i) }
	copied := func(i int) string { return fmt.Sprintf("%s/c%06d", dir, i) }
	moved := func(i int) string { return fmt.Sprintf("%s/m%06d", dir, i) }
	if err := e.fs.MkdirAll(ctx, dir); err != nil {
		return nil, fmt.Errorf("mkdir %s: %w", dir, err)
	}
	out := metaRep{}
	run := func(op string, count, per int, do func(ctx context.Context, i int) error) error {
		e.prog.start(fmt.Sprintf("meta: %s (%d files, %d clients, rep %d/%d)", op, n, clients, rep+1, e.cfg.Reps))
		before, known := e.writeBytes()
		cpuBefore, cpuKnown := e.cpuTime()
		durs, took, err := e.phase(ctx, count, do)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		f := metaFigures{perSec: perSecond(count*per, took), lat: summarize(durs)}
		if after, ok := e.writeBytes(); known && ok && after >= before {
			f.diskKB, f.hasDisk = float64(after-before)/1024/float64(count*per), true
		}
		if after, ok := e.cpuTime(); cpuKnown && ok && after >= cpuBefore {
			f.cpuMS, f.hasCPU = float64(after-cpuBefore)/float64(time.Millisecond)/float64(count*per), true
		}
		out[op] = f
		return nil
	}
	steps := []struct {
		op         string
		count, per int // calls, and files each call covers
		do         func(ctx context.Context, i int) error
	}{
		{"create", n, 1, func(ctx context.Context, i int) error { return e.fs.Put(ctx, file(i), bytes.NewReader(nil), 0) }},
		{"stat", n, 1, func(ctx context.Context, i int) error {
			size, err := e.fs.Stat(ctx, file(i))
			if err == nil && size != 0 {
				err = fmt.Errorf("%s: %w (size %d, created empty)", file(i), ErrMismatch, size)
			}
			return err
		}},
		{"exists", n, 1, func(ctx context.Context, i int) error {
			ok, err := e.fs.Exists(ctx, file(i))
			if err == nil && !ok {
				err = fmt.Errorf("%s was created but does not exist", file(i))
			}
			return err
		}},
		{"list", clients, n, func(ctx context.Context, i int) error {
			got, err := e.fs.Count(ctx, dir)
			if err == nil && got != n {
				err = fmt.Errorf("%s: %w (listed %d entries, created %d)", dir, ErrMismatch, got, n)
			}
			return err
		}},
		{"copy", n, 1, func(ctx context.Context, i int) error { return e.fs.Copy(ctx, file(i), copied(i)) }},
		{"rename", n, 1, func(ctx context.Context, i int) error { return e.fs.Rename(ctx, copied(i), moved(i)) }},
		{"delete", 2 * n, 1, func(ctx context.Context, i int) error {
			if i < n {
				return e.fs.Delete(ctx, file(i), false)
			}
			return e.fs.Delete(ctx, moved(i-n), false)
		}},
	}
	for _, s := range steps {
		if err := run(s.op, s.count, s.per, s.do); err != nil {
			return nil, err
		}
	}
	left, err := e.fs.Count(ctx, dir)
	if err == nil && left != 0 {
		err = fmt.Errorf("%s: %w (%d entries left after deleting every file)", dir, ErrMismatch, left)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// cpuTime is the CPU time every process of the cluster has used since it
// started (harness.PidCPUTime); false when the benchmark knows none of
// its processes (see countedPids) or one cannot tell.
func (e *env) cpuTime() (time.Duration, bool) { return sumOver(e.countedPids(), harness.PidCPUTime) }

// writeBytes is what every process of the cluster has written to disk
// since it started (harness.PidWriteBytes); false as for cpuTime.
func (e *env) writeBytes() (int64, bool) { return sumOver(e.countedPids(), harness.PidWriteBytes) }

// sumOver adds up read of every process in pids; false when there is
// none or one cannot be read.
func sumOver[T int64 | time.Duration](pids []int, read func(pid int) (T, error)) (T, bool) {
	var sum T
	for _, pid := range pids {
		v, err := read(pid)
		if err != nil {
			return 0, false
		}
		sum += v
	}
	return sum, len(pids) > 0
}

// countedPids are the processes whose CPU time and disk writes the meta
// workload counts: a local cluster's, or those given as Config.Pids for
// a cluster the benchmark did not start (a SeaweedFS cluster measured
// beside it, for instance).
func (e *env) countedPids() []int {
	pids := slices.Clone(e.cfg.Pids)
	for _, p := range e.procs() {
		pid := p.Pid()
		if pid <= 0 {
			return nil // stopped: its figures are gone
		}
		pids = append(pids, pid)
	}
	return pids
}
