package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"shoal/harness"
)

// Memory is measured on a local cluster only, from Linux's /proc: before
// a workload each process's peak resident set is reset (writing 5 to
// /proc/PID/clear_refs), after it the peak is read (VmHWM in
// /proc/PID/status). A process restarted during the workload (failover)
// reports its peak since it started.

// ProcPeak is one process's peak resident memory during a workload.
type ProcPeak struct {
	Process string  `json:"process"`
	PeakMiB float64 `json:"peak_mib"`
}

// MemoryRow is the peak resident memory of every process of the local
// cluster during one workload (every rep of it).
type MemoryRow struct {
	Workload string     `json:"workload"`
	Peaks    []ProcPeak `json:"peaks"`
}

// StreamsResult is the memory workload: Streams concurrent uploads of one
// file of Size bytes each through one router, then as many concurrent
// downloads of them, with the router's peak resident memory in each.
type StreamsResult struct {
	Streams int    `json:"streams"`
	Size    int64  `json:"size_bytes"`
	Label   string `json:"size"`
	// UpMBps and DownMBps are the streams' bytes together over the time
	// the last one took.
	UpMBps   Figure `json:"up_mb_per_s"`
	DownMBps Figure `json:"down_mb_per_s"`
	// RouterUpMiB and RouterDownMiB are the router's peak resident memory
	// during the uploads and during the downloads.
	RouterUpMiB   Figure `json:"router_up_peak_mib"`
	RouterDownMiB Figure `json:"router_down_peak_mib"`
}

// RouterMemoryLimitMiB is the most a router streaming the memory
// workload's transfers should hold resident.
const RouterMemoryLimitMiB = 256

// procs are the processes of the local cluster whose memory is reported:
// the storage nodes, the router and, when the mount workload runs, the
// mount.
func (e *env) procs() []*harness.Proc {
	if e.local == nil {
		return nil
	}
	ps := e.local.Servers()
	if e.local.mountProc != nil {
		ps = append(ps, e.local.mountProc)
	}
	return ps
}

// resetPeaks starts a new peak for every process. It reports whether the
// kernel let it (clear_refs needs Linux 4.0 and the process's owner).
func resetPeaks(ps []*harness.Proc) bool {
	for _, p := range ps {
		if p.Running() && p.ResetPeakRSS() != nil {
			return false
		}
	}
	return true
}

// peaks reads the peak of every process that runs, in MiB.
func peaks(ps []*harness.Proc) []ProcPeak {
	var out []ProcPeak
	for _, p := range ps {
		if b, err := p.PeakRSS(); err == nil {
			out = append(out, ProcPeak{Process: p.Name, PeakMiB: float64(b) / (1 << 20)})
		}
	}
	return out
}

// withMemory runs a workload and, on a local cluster, adds the peak
// memory of each of its processes during it to rep.
func (e *env) withMemory(rep *Report, workload string, run func() error) error {
	ps := e.procs()
	if len(ps) == 0 || !resetPeaks(ps) {
		return run()
	}
	if err := run(); err != nil {
		return err
	}
	rep.Memory = append(rep.Memory, MemoryRow{Workload: workload, Peaks: peaks(e.procs())})
	return nil
}

// runStreams is the memory workload, Reps times; each rep deletes its
// files after it, so the disk holds one rep's at a time.
func (e *env) runStreams(ctx context.Context) (*StreamsResult, error) {
	n, size := e.cfg.MemoryStreams, e.cfg.MemorySize
	res := &StreamsResult{Streams: n, Size: size, Label: sizeLabel(size)}
	var up, down, upMiB, downMiB []float64
	for rep := range e.cfg.Reps {
		dir := fmt.Sprintf("%s/memory/r%d", e.root, rep)
		if err := e.fs.MkdirAll(ctx, dir); err != nil {
			return nil, fmt.Errorf("mkdir %s: %w", dir, err)
		}
		of := fmt.Sprintf("%d × %s (rep %d/%d)", n, sizeLabel(size), rep+1, e.cfg.Reps)
		sums := make([][]byte, n)
		e.prog.start("memory: uploading " + of)
		mbps, mib, err := e.streamPhase(n, size, func(i int, tick func(int64)) error {
			h := sha256.New()
			body := &countingReader{r: io.TeeReader(newStream(seedOf(5, uint64(rep), uint64(i)), size), h), tick: tick}
			if err := e.fs.Put(ctx, fmt.Sprintf("%s/f%d", dir, i), body, size); err != nil {
				return err
			}
			sums[i] = h.Sum(nil)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("memory workload, uploads: %w", err)
		}
		up, upMiB = append(up, mbps), append(upMiB, mib)
		e.prog.start("memory: downloading " + of)
		mbps, mib, err = e.streamPhase(n, size, func(i int, tick func(int64)) error {
			p := fmt.Sprintf("%s/f%d", dir, i)
			rc, err := e.fs.Get(ctx, p)
			if err != nil {
				return err
			}
			defer rc.Close()
			h := sha256.New()
			got, err := io.CopyBuffer(h, &countingReader{r: rc, tick: tick}, make([]byte, 1<<20))
			if err != nil {
				return err
			}
			if got != size || !bytes.Equal(h.Sum(nil), sums[i]) {
				return fmt.Errorf("%s: %w (%d bytes back of %d)", p, ErrMismatch, got, size)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("memory workload, downloads: %w", err)
		}
		down, downMiB = append(down, mbps), append(downMiB, mib)
		if err := e.fs.Delete(ctx, dir, true); err != nil {
			return nil, fmt.Errorf("memory workload: delete %s: %w", dir, err)
		}
	}
	res.UpMBps, res.DownMBps = figureOf(up), figureOf(down)
	res.RouterUpMiB, res.RouterDownMiB = figureOf(upMiB), figureOf(downMiB)
	return res, nil
}

// streamPhase runs n transfers of size bytes at once and returns their
// bytes together per second and the router's peak resident memory while
// they ran.
func (e *env) streamPhase(n int, size int64, transfer func(i int, tick func(int64)) error) (mbps, routerMiB float64, err error) {
	router := e.local.Router
	if !resetPeaks([]*harness.Proc{router}) {
		return 0, 0, errors.New("cannot reset the router's peak memory (/proc/PID/clear_refs): Linux 4.0 or later is needed")
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		done  int64
		first error
	)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last int64
			err := transfer(i, func(got int64) {
				mu.Lock()
				done += got - last
				last = got
				e.prog.update(done, int64(n)*size)
				mu.Unlock()
			})
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("stream %d: %w", i, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if first != nil {
		return 0, 0, first
	}
	peak, err := router.PeakRSS()
	if err != nil {
		return 0, 0, fmt.Errorf("router memory: %w", err)
	}
	return megabytesPerSecond(int64(n)*size, took), float64(peak) / (1 << 20), nil
}
