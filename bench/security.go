package bench

import (
	"context"
	"fmt"
)

// The security workload measures what security costs: the same small-file
// and large-file measurements on two local clusters started side by side,
// one secure (TLS on every connection, authentication, content sealed at
// rest) and one with --insecure, rep by rep in alternating order, so both
// see the same machine in the same minutes. While one is measured the
// other is stopped (SIGSTOP), so its background work (gossip, heartbeats,
// repair rounds) takes no CPU from it. Each row's ratio is secure over
// insecure per rep: 1 is free, 0.9 is 10% slower.

// SecurityResult is the security workload's report.
type SecurityResult struct {
	SmallFiles int           `json:"small_files"`
	Rows       []SecurityRow `json:"rows"`
}

// SecurityRow is one figure on both clusters.
type SecurityRow struct {
	Measure  string `json:"measure"`
	Unit     string `json:"unit"`
	Secure   Figure `json:"secure"`
	Insecure Figure `json:"insecure"`
	// Ratio is secure / insecure per rep.
	Ratio Figure `json:"ratio"`
}

// runSecurity needs the local (secure) cluster of e; it starts the
// insecure one beside it and stops it when done.
func (e *env) runSecurity(ctx context.Context) (res *SecurityResult, err error) {
	cfg := e.cfg
	cfg.Insecure = true
	e.prog.start("security: starting an insecure local cluster beside the secure one")
	ins, stop, err := e.beside(ctx, cfg, 1)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := stop(err != nil && ctx.Err() == nil); err == nil {
			err = cerr
		}
	}()
	type pair struct{ sec, ins []float64 }
	var writes, reads pair
	large := make([]pair, len(cfg.LargeSizes)*2) // up, down per size
	for rep := range cfg.Reps {
		err := sideBySide(ctx, rep, e, ins, (*env).securityName, func(x *env) error {
			sr, err := x.smallRep(ctx, rep)
			if err != nil {
				return fmt.Errorf("small files: %w", err)
			}
			dst := &writes.sec
			rdst := &reads.sec
			if x == ins {
				dst, rdst = &writes.ins, &reads.ins
			}
			*dst, *rdst = append(*dst, sr.writesPerSec), append(*rdst, sr.readsPerSec)
			for si, size := range cfg.LargeSizes {
				lr, err := x.largeRep(ctx, si, size, rep)
				if err != nil {
					return fmt.Errorf("large files: %w", err)
				}
				up, down := &large[2*si], &large[2*si+1]
				if x == ins {
					up.ins, down.ins = append(up.ins, lr.up), append(down.ins, lr.down)
				} else {
					up.sec, down.sec = append(up.sec, lr.up), append(down.sec, lr.down)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	row := func(measure, unit string, p pair) SecurityRow {
		ratios := make([]float64, len(p.sec))
		for i := range p.sec {
			ratios[i] = p.sec[i] / p.ins[i]
		}
		return SecurityRow{Measure: measure, Unit: unit, Secure: figureOf(p.sec), Insecure: figureOf(p.ins), Ratio: figureOf(ratios)}
	}
	res = &SecurityResult{SmallFiles: cfg.SmallFiles}
	res.Rows = append(res.Rows, row(fmt.Sprintf("small writes (%d clients)", cfg.SmallClients), "files/s", writes),
		row(fmt.Sprintf("small reads (%d clients)", cfg.SmallClients), "files/s", reads))
	for si, size := range cfg.LargeSizes {
		res.Rows = append(res.Rows, row("upload "+sizeLabel(size), "MB/s", large[2*si]), row("download "+sizeLabel(size), "MB/s", large[2*si+1]))
	}
	return res, nil
}

func (e *env) securityName() string {
	if e.cfg.Insecure {
		return "insecure cluster"
	}
	return "secure cluster"
}
