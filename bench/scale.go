package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// The scale workload measures what a second data group adds: chunk write
// throughput (ScaleStreams uploads of ScaleSize at once through the
// router) on the local cluster of one group and on a local cluster of
// two groups started beside it, rep by rep (see sideBySide). Every group
// has three members, each storing every chunk placed in its group. The
// disk's fsynced write rate is measured in the same reps: all the
// processes share this machine's disk, which bounds both clusters at the
// disk's rate divided by the three copies of each chunk.

// ScaleResult is the scale workload's report.
type ScaleResult struct {
	Streams int   `json:"streams"`
	Size    int64 `json:"size"`
	// OneGroup and TwoGroups are MB/s of all streams together.
	OneGroup  Figure `json:"one_group_mb_per_s"`
	TwoGroups Figure `json:"two_groups_mb_per_s"`
	// Ratio is two groups ÷ one group per rep.
	Ratio Figure `json:"ratio"`
	// DiskMBps is the disk's fsynced write rate (as dd conv=fsync
	// measures it) and CeilingMBps a third of it: the most any number of
	// groups on this one disk can store, each chunk being written three
	// times.
	DiskMBps    Figure `json:"disk_write_mb_per_s"`
	CeilingMBps Figure `json:"ceiling_mb_per_s"`
	// SecondGroupShare is the share of the two-group cluster's chunks its
	// second group holds after each rep: near a half when the router
	// spreads them (deleted files' chunks count until they are collected).
	SecondGroupShare Figure `json:"second_group_share"`
}

func (e *env) runScale(ctx context.Context) (res *ScaleResult, err error) {
	e.prog.start("scale: starting a local cluster of two groups beside the one of one group")
	two, stop, err := e.beside(ctx, e.cfg, 2)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := stop(err != nil && ctx.Err() == nil); err == nil {
			err = cerr
		}
	}()
	var one, both, ratio, disk, ceiling, share []float64
	name := func(x *env) string {
		if x == two {
			return "cluster of two groups"
		}
		return "cluster of one group"
	}
	for rep := range e.cfg.Reps {
		var a, b float64
		err := sideBySide(ctx, rep, e, two, name, func(x *env) error {
			e.prog.start(fmt.Sprintf("scale: %d uploads of %s at once, %s (rep %d/%d)", e.cfg.ScaleStreams, sizeLabel(e.cfg.ScaleSize), name(x), rep+1, e.cfg.Reps))
			r, err := x.scaleRep(ctx, rep)
			if x == two {
				b = r
			} else {
				a = r
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		s, err := two.secondGroupShare(ctx)
		if err != nil {
			return nil, err
		}
		share = append(share, s)
		e.prog.start(fmt.Sprintf("scale: the disk's fsynced write rate (rep %d/%d)", rep+1, e.cfg.Reps))
		d, err := diskRate(e.local.Dir)
		if err != nil {
			return nil, err
		}
		one, both, ratio = append(one, a), append(both, b), append(ratio, b/a)
		disk, ceiling = append(disk, d), append(ceiling, d/localNodes)
	}
	return &ScaleResult{Streams: e.cfg.ScaleStreams, Size: e.cfg.ScaleSize, OneGroup: figureOf(one), TwoGroups: figureOf(both),
		Ratio: figureOf(ratio), DiskMBps: figureOf(disk), CeilingMBps: figureOf(ceiling), SecondGroupShare: figureOf(share)}, nil
}

// secondGroupShare returns the share of the local cluster's chunks held
// by its second group, as the groups' primaries report them.
func (e *env) secondGroupShare(ctx context.Context) (float64, error) {
	e.local.resume()
	defer e.local.pause()
	if err := e.local.waitReady(ctx, 30*time.Second); err != nil {
		return 0, err
	}
	view, err := e.local.View(ctx)
	if err != nil {
		return 0, err
	}
	var second, all int
	for _, g := range view.Groups {
		if g.Error != "" {
			return 0, fmt.Errorf("group %s: %s", g.Name, g.Error)
		}
		all += g.Chunks
		if g.Name == e.local.groups[1].Name {
			second = g.Chunks
		}
	}
	if all == 0 {
		return 0, fmt.Errorf("%w: the groups report no chunks after the uploads", ErrMismatch)
	}
	return float64(second) / float64(all), nil
}

// scaleRep uploads ScaleStreams files of ScaleSize at once and returns
// the MB/s of all of them together, once each file has the size it was
// given; then it deletes them.
func (e *env) scaleRep(ctx context.Context, rep int) (float64, error) {
	dir := fmt.Sprintf("%s/scale/r%d", e.root, rep)
	if err := e.cl.Mkdir(ctx, dir, true); err != nil {
		return 0, err
	}
	n, size := e.cfg.ScaleStreams, e.cfg.ScaleSize
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.cl.Put(ctx, fmt.Sprintf("%s/s%d", dir, i), newStream(seedOf(8, uint64(rep), uint64(i)), size), size)
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	for i := range n {
		p := fmt.Sprintf("%s/s%d", dir, i)
		st, err := e.cl.Stat(ctx, p)
		if err != nil {
			return 0, err
		}
		if st.Size != size {
			return 0, fmt.Errorf("%w: %s has %d bytes after its upload of %d", ErrMismatch, p, st.Size, size)
		}
	}
	if err := e.cl.Delete(ctx, dir, true); err != nil {
		return 0, fmt.Errorf("remove %s: %w", dir, err)
	}
	return megabytesPerSecond(int64(n)*size, took), nil
}
