package bench

// The machine baseline and the regression guard. A benchmark on a shared
// machine cannot be judged by its absolute times, so with --guard the run
// also measures what the machine itself can do, in the same run and on the
// same disk, and judges Shoal's figures as ratios to it:
//
//   - small writes/s against the disk's fsyncs/s (a write is durable on a
//     majority, so it needs at least one fsync of its batch), and against
//     loopback HTTP requests/s at the same number of clients (where the
//     disk is fast, requests and hops are what a write costs);
//   - small reads/s against loopback HTTP requests/s (a read needs no
//     disk: its cost is requests and hops);
//   - download MB/s against a loopback HTTP stream's MB/s.
//
// The disk's fsynced write MB/s is measured and reported too, for the
// upload, but not guarded: on a virtual disk it varies too much from run
// to run (between 300 and 1,350 MB/s in a minute on the reference machine).
//
// A ratio under its floor fails the run with ErrRegression. The floors sit
// about three times under what the tree measured when they were set, so
// that noise never trips them and a real regression (a lost batch, an
// extra round trip per request, a copy per byte too many) does.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Baseline is what the machine measured in the same run as the workloads,
// each figure over the run's reps.
type Baseline struct {
	// FsyncsPerSec: 4 KiB appended to a file and fsynced, one after
	// another, in the cluster's data directory.
	FsyncsPerSec Figure `json:"fsyncs_per_s"`
	// DiskMBps: 256 MiB written in 4 MiB blocks to a new file there and
	// fsynced once, as dd conv=fsync does.
	DiskMBps Figure `json:"disk_write_mb_per_s"`
	// RequestsPerSec: GETs of a 1 KiB body from an HTTP server on
	// 127.0.0.1 in the benchmark's own process, by SmallClients clients.
	RequestsPerSec Figure `json:"loopback_requests_per_s"`
	// StreamMBps: one GET of a large body from that server.
	StreamMBps Figure `json:"loopback_stream_mb_per_s"`
}

// GuardRow is one ratio the guard checks.
type GuardRow struct {
	Measure string  `json:"measure"`
	Ratio   float64 `json:"ratio"`
	Floor   float64 `json:"floor"`
	OK      bool    `json:"ok"`
}

// The floors of the guard's ratios (see the top of this file), about three
// times under what the tree measured on the reference machine, a 2-core
// VM, when they were set (TestBenchGuard's sizes: 1,500 small files, 64 MiB
// files). Writes per fsync vary most with the disk: 0.3 where an fsync
// takes 0.2 ms, about 2 where it takes 1.6 ms; their floor is set for the
// fast disk.
const (
	floorWritesPerFsync   = 0.08
	floorWritesPerRequest = 0.008
	floorReadsPerRequest  = 0.05
	floorDownloadOfStream = 0.04
)

// Measurements of the baseline.
const (
	baselineSpan   = time.Second // how long each rate is measured
	fsyncBlock     = 4 << 10
	requestBody    = 1 << 10
	streamBytes    = 256 << 20
	streamBufBytes = 256 << 10
	diskBytes      = 256 << 20
	diskBlock      = 4 << 20
)

// runBaseline measures the machine Reps times.
func (e *env) runBaseline(ctx context.Context) (*Baseline, error) {
	dir := e.cfg.DataDir
	if e.local != nil {
		dir = e.local.Dir
	}
	if dir == "" {
		dir = os.TempDir()
	}
	srv, err := startLoopback()
	if err != nil {
		return nil, err
	}
	defer srv.close()
	var fsyncs, disk, reqs, stream []float64
	for rep := range e.cfg.Reps {
		e.prog.start(fmt.Sprintf("machine baseline: disk fsyncs, loopback HTTP (rep %d/%d)", rep+1, e.cfg.Reps))
		f, err := fsyncRate(ctx, dir)
		if err != nil {
			return nil, err
		}
		d, err := diskRate(dir)
		if err != nil {
			return nil, err
		}
		r, err := srv.requestRate(ctx, e.cfg.SmallClients)
		if err != nil {
			return nil, err
		}
		s, err := srv.streamRate(ctx)
		if err != nil {
			return nil, err
		}
		fsyncs, disk, reqs, stream = append(fsyncs, f), append(disk, d), append(reqs, r), append(stream, s)
	}
	return &Baseline{FsyncsPerSec: figureOf(fsyncs), DiskMBps: figureOf(disk), RequestsPerSec: figureOf(reqs), StreamMBps: figureOf(stream)}, nil
}

// diskRate writes diskBytes to a new file in dir in diskBlock writes and
// fsyncs it once, and returns the MB/s of the whole.
func diskRate(dir string) (float64, error) {
	f, err := os.CreateTemp(dir, "disk-baseline-*")
	if err != nil {
		return 0, fmt.Errorf("machine baseline: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, diskBlock)
	for i := range block {
		block[i] = byte(i * 7) // not zeros, which some disks compress
	}
	start := time.Now()
	for written := 0; written < diskBytes; written += len(block) {
		if _, err := f.Write(block); err != nil {
			return 0, fmt.Errorf("machine baseline: write %s: %w", f.Name(), err)
		}
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("machine baseline: fsync %s: %w", f.Name(), err)
	}
	return megabytesPerSecond(diskBytes, time.Since(start)), nil
}

// fsyncRate appends fsyncBlock bytes to a new file in dir and fsyncs it,
// again and again for baselineSpan, as a log append does.
func fsyncRate(ctx context.Context, dir string) (float64, error) {
	f, err := os.CreateTemp(dir, "fsync-baseline-*")
	if err != nil {
		return 0, fmt.Errorf("machine baseline: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, fsyncBlock)
	n := 0
	start := time.Now()
	for time.Since(start) < baselineSpan && ctx.Err() == nil {
		if _, err := f.Write(block); err != nil {
			return 0, fmt.Errorf("machine baseline: write %s: %w", f.Name(), err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("machine baseline: fsync %s: %w", f.Name(), err)
		}
		n++
	}
	return perSecond(n, time.Since(start)), ctx.Err()
}

// loopback is an HTTP server on 127.0.0.1 that answers every GET of /small
// with requestBody bytes and of /stream with streamBytes.
type loopback struct {
	srv *http.Server
	url string
	hc  *http.Client
}

func startLoopback() (*loopback, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("machine baseline: %w", err)
	}
	small := make([]byte, requestBody)
	buf := make([]byte, streamBufBytes)
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { w.Write(small) })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(streamBytes))
		for sent := 0; sent < streamBytes; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})
	lb := &loopback{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, url: "http://" + l.Addr().String(),
		hc: &http.Client{Transport: pooledTransport(), Timeout: time.Minute}}
	go lb.srv.Serve(l)
	return lb, nil
}

func (lb *loopback) close() {
	lb.hc.CloseIdleConnections()
	lb.srv.Close()
}

// requestRate is how many GETs of /small clients make together in
// baselineSpan, each reading the whole body.
func (lb *loopback) requestRate(ctx context.Context, clients int) (float64, error) {
	var n atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < baselineSpan && ctx.Err() == nil {
				if err := lb.get(ctx, "/small"); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return 0, fmt.Errorf("machine baseline: loopback request: %w", *err)
	}
	return perSecond(int(n.Load()), time.Since(start)), ctx.Err()
}

// streamRate is the MB/s of one GET of /stream.
func (lb *loopback) streamRate(ctx context.Context) (float64, error) {
	start := time.Now()
	if err := lb.get(ctx, "/stream"); err != nil {
		return 0, fmt.Errorf("machine baseline: loopback stream: %w", err)
	}
	return megabytesPerSecond(streamBytes, time.Since(start)), nil
}

func (lb *loopback) get(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, lb.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := lb.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}

// guard computes the ratios of r's figures to its baseline, each against
// its floor. Ratios need both figures: a workload not run is not checked.
func guard(r *Report) []GuardRow {
	b := r.Baseline
	if b == nil {
		return nil
	}
	var rows []GuardRow
	add := func(measure string, v, base Figure, floor float64) {
		if v.Median <= 0 || base.Median <= 0 {
			return
		}
		ratio := v.Median / base.Median
		rows = append(rows, GuardRow{Measure: measure, Ratio: ratio, Floor: floor, OK: ratio >= floor})
	}
	if s := r.Small; s != nil {
		add("small writes/s ÷ disk fsyncs/s", s.WritesPerSec, b.FsyncsPerSec, floorWritesPerFsync)
		add("small writes/s ÷ loopback requests/s", s.WritesPerSec, b.RequestsPerSec, floorWritesPerRequest)
		add("small reads/s ÷ loopback requests/s", s.ReadsPerSec, b.RequestsPerSec, floorReadsPerRequest)
	}
	if len(r.Large) > 0 {
		l := r.Large[len(r.Large)-1]
		add(fmt.Sprintf("%s download MB/s ÷ loopback stream MB/s", l.Label), l.DownMBps, b.StreamMBps, floorDownloadOfStream)
	}
	return rows
}

// guardErr is ErrRegression naming every ratio under its floor, or nil.
func guardErr(rows []GuardRow) error {
	var bad []string
	for _, g := range rows {
		if !g.OK {
			bad = append(bad, fmt.Sprintf("%s is %.3f, under its floor %.3f", g.Measure, g.Ratio, g.Floor))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRegression, strings.Join(bad, "; "))
}
