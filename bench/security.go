package bench

import (
	"context"
	"fmt"
)

// The security and metrics workloads measure what a feature costs: the
// same small-file and large-file measurements on two local clusters
// started side by side, one with the feature and one without, rep by rep
// in alternating order (sideBySide), so both see the same machine in the
// same minutes. While one is measured the other is stopped (SIGSTOP), so
// its background work (gossip, heartbeats, repair rounds) takes no CPU
// from it. Each row's ratio is with over without per rep: 1 is free, 0.9
// is 10% slower.
//
// The security workload compares a secure cluster (TLS on every
// connection, authentication, content sealed at rest) with an --insecure
// one; the metrics workload a cluster whose processes collect Prometheus
// metrics (--metrics) with one whose processes do not.

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

// MetricsResult is the metrics workload's report.
type MetricsResult struct {
	SmallFiles int          `json:"small_files"`
	Rows       []MetricsRow `json:"rows"`
}

// MetricsRow is one figure with metrics collected and without.
type MetricsRow struct {
	Measure string `json:"measure"`
	Unit    string `json:"unit"`
	On      Figure `json:"metrics_on"`
	Off     Figure `json:"metrics_off"`
	// Ratio is on / off per rep.
	Ratio Figure `json:"ratio"`
}

// pairedFigure is one measure's reps on the cluster with the feature
// (with) and on the one without, in the same reps.
type pairedFigure struct {
	measure, unit string
	with, without []float64
}

// ratio is with / without per rep.
func (p pairedFigure) ratio() Figure {
	ratios := make([]float64, len(p.with))
	for i := range p.with {
		ratios[i] = p.with[i] / p.without[i]
	}
	return figureOf(ratios)
}

// compareWithout starts a local cluster of cfg (the feature turned off)
// beside e's, measures small files and each large size on both, side by
// side, and stops it when done.
func (e *env) compareWithout(ctx context.Context, cfg Config, what string, name func(x, without *env) string) (rows []pairedFigure, err error) {
	e.prog.start(what + ": starting a local cluster without it beside the one with it")
	without, stop, err := e.beside(ctx, cfg, 1)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := stop(err != nil && ctx.Err() == nil); err == nil {
			err = cerr
		}
	}()
	writes := pairedFigure{measure: fmt.Sprintf("small writes (%d clients)", cfg.SmallClients), unit: "files/s"}
	reads := pairedFigure{measure: fmt.Sprintf("small reads (%d clients)", cfg.SmallClients), unit: "files/s"}
	var large []pairedFigure // up, down per size
	for _, size := range cfg.LargeSizes {
		large = append(large, pairedFigure{measure: "upload " + sizeLabel(size), unit: "MB/s"},
			pairedFigure{measure: "download " + sizeLabel(size), unit: "MB/s"})
	}
	add := func(p *pairedFigure, x *env, v float64) {
		if x == without {
			p.without = append(p.without, v)
		} else {
			p.with = append(p.with, v)
		}
	}
	for rep := range cfg.Reps {
		err := sideBySide(ctx, rep, e, without, func(x *env) string { return name(x, without) }, func(x *env) error {
			sr, err := x.smallRep(ctx, rep)
			if err != nil {
				return fmt.Errorf("small files: %w", err)
			}
			add(&writes, x, sr.writesPerSec)
			add(&reads, x, sr.readsPerSec)
			for si, size := range cfg.LargeSizes {
				lr, err := x.largeRep(ctx, si, size, rep)
				if err != nil {
					return fmt.Errorf("large files: %w", err)
				}
				add(&large[2*si], x, lr.up)
				add(&large[2*si+1], x, lr.down)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return append([]pairedFigure{writes, reads}, large...), nil
}

// runSecurity needs the local (secure) cluster of e; it starts the
// insecure one beside it and stops it when done.
func (e *env) runSecurity(ctx context.Context) (*SecurityResult, error) {
	cfg := e.cfg
	cfg.Insecure = true
	rows, err := e.compareWithout(ctx, cfg, "security", func(x, without *env) string {
		if x == without {
			return "insecure cluster"
		}
		return "secure cluster"
	})
	if err != nil {
		return nil, err
	}
	res := &SecurityResult{SmallFiles: cfg.SmallFiles}
	for _, p := range rows {
		res.Rows = append(res.Rows, SecurityRow{Measure: p.measure, Unit: p.unit, Secure: figureOf(p.with), Insecure: figureOf(p.without), Ratio: p.ratio()})
	}
	return res, nil
}

// runMetrics needs the local cluster of e, with metrics; it starts one
// without beside it and stops it when done.
func (e *env) runMetrics(ctx context.Context) (*MetricsResult, error) {
	cfg := e.cfg
	cfg.NoMetrics = true
	rows, err := e.compareWithout(ctx, cfg, "metrics", func(x, without *env) string {
		if x == without {
			return "cluster without metrics"
		}
		return "cluster with metrics"
	})
	if err != nil {
		return nil, err
	}
	res := &MetricsResult{SmallFiles: cfg.SmallFiles}
	for _, p := range rows {
		res.Rows = append(res.Rows, MetricsRow{Measure: p.measure, Unit: p.unit, On: figureOf(p.with), Off: figureOf(p.without), Ratio: p.ratio()})
	}
	return res, nil
}
