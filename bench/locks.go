package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	"shoal/client"
	"shoal/harness"
)

// LocksResult is the locks workload: lock round trips beside small
// writes, the router's hot-chunk cache beside a router without one, and
// the library's cache beside a client without one, each pair in the same
// reps on the same cluster.
type LocksResult struct {
	Levels []LockLevel `json:"levels"`
	// A file of CacheFile bytes read CacheReads times by each of
	// CacheClients clients at once, through the cluster's router and
	// through a second router started with --cache-size 0, MB/s in all.
	CacheFile      int64  `json:"cache_file_bytes"`
	CacheClients   int    `json:"cache_clients"`
	CacheReads     int    `json:"cache_reads"`
	CachedMBps     Figure `json:"cached_mbps"`
	UncachedMBps   Figure `json:"uncached_mbps"`
	RouterCacheGet Figure `json:"router_cache_ratio"`
	// Open and read of one unchanged small file, opens per second, with
	// the library's cache and without.
	OpenFile         int    `json:"open_file_bytes"`
	CachedOpens      Figure `json:"cached_opens_per_sec"`
	UncachedOpens    Figure `json:"uncached_opens_per_sec"`
	LibraryCacheGain Figure `json:"library_cache_ratio"`
}

// LockLevel is lock round trips (acquire and release of a lock of one's
// own) at one number of clients, beside 1 KiB writes by as many.
type LockLevel struct {
	Clients      int    `json:"clients"`
	LocksPerSec  Figure `json:"locks_per_sec"`
	LockMS       Figure `json:"lock_ms"` // mean acquire + release
	WritesPerSec Figure `json:"writes_per_sec"`
	WriteMS      Figure `json:"write_ms"`
}

const (
	lockRounds = 200 // per client, per rep
	openRounds = 300
)

func (e *env) runLocks(ctx context.Context) (*LocksResult, error) {
	res := &LocksResult{CacheFile: e.cfg.CacheFileSize, CacheClients: 8, CacheReads: e.cfg.CacheReads, OpenFile: int(e.cfg.OpenFileSize)}
	root := e.root + "/locks"
	if err := e.cl.Mkdir(ctx, root, true); err != nil {
		return nil, err
	}
	// Lock and write targets of every client, made once.
	for i := range 16 {
		if _, err := e.cl.Put(ctx, fmt.Sprintf("%s/lock%d", root, i), nil, 0); err != nil {
			return nil, err
		}
	}
	for _, n := range []int{1, 16} {
		var lps, lms, wps, wms []float64
		for rep := range e.cfg.Reps {
			e.prog.start(fmt.Sprintf("locks: %d client(s), %s", n, e.repLabel(rep)))
			rate, mean, err := e.perClient(ctx, n, func(ctx context.Context, i int) error {
				l, err := e.cl.Lock(ctx, fmt.Sprintf("%s/lock%d", root, i), client.LockOptions{TTL: 30 * time.Second})
				if err != nil {
					return err
				}
				return l.Release(ctx)
			})
			if err != nil {
				return nil, fmt.Errorf("locks at %d clients: %w", n, err)
			}
			lps, lms = append(lps, rate), append(lms, mean)
			payload := bytes.Repeat([]byte("w"), 1024)
			rate, mean, err = e.perClient(ctx, n, func(ctx context.Context, i int) error {
				_, err := e.cl.Put(ctx, fmt.Sprintf("%s/write%d", root, i), bytes.NewReader(payload), int64(len(payload)))
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("writes at %d clients: %w", n, err)
			}
			wps, wms = append(wps, rate), append(wms, mean)
		}
		res.Levels = append(res.Levels, LockLevel{Clients: n, LocksPerSec: figureOf(lps), LockMS: figureOf(lms),
			WritesPerSec: figureOf(wps), WriteMS: figureOf(wms)})
	}
	if err := e.routerCache(ctx, root, res); err != nil {
		return nil, fmt.Errorf("router cache: %w", err)
	}
	if err := e.libraryCache(ctx, root, res); err != nil {
		return nil, fmt.Errorf("library cache: %w", err)
	}
	return res, nil
}

// perClient runs op lockRounds times on each of n clients at once, and
// returns the ops per second in all and the mean op time in ms.
func (e *env) perClient(ctx context.Context, n int, op func(ctx context.Context, client int) error) (rate, meanMS float64, err error) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var mu sync.Mutex
	var total time.Duration
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range lockRounds {
				t := time.Now()
				if err := op(ctx, i); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				total += time.Since(t)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	ops := float64(n * lockRounds)
	return ops / time.Since(start).Seconds(), millis(total) / ops, nil
}

// routerCache reads one file with many clients at once through the
// measured router and through a second router without a cache, in turn.
func (e *env) routerCache(ctx context.Context, root string, res *LocksResult) error {
	if e.local == nil {
		e.log.Info("the router cache comparison needs a local cluster (a second router without a cache); skipped")
		return nil
	}
	name := root + "/hot.bin"
	data := bytes.Repeat([]byte("0123456789abcdef"), int(res.CacheFile/16))
	if _, err := e.cl.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		return err
	}
	plain, stop, err := e.routerWithout(ctx, "--cache-size", "0")
	if err != nil {
		return err
	}
	defer stop()
	read := func(cl *client.Client) (float64, error) {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, res.CacheClients)
		for range res.CacheClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range res.CacheReads {
					rc, _, err := cl.Get(ctx, name)
					if err == nil {
						var n int64
						n, err = io.Copy(io.Discard, rc)
						rc.Close()
						if err == nil && n != int64(len(data)) {
							err = fmt.Errorf("read %d bytes of %d", n, len(data))
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return 0, err
		}
		bytes := float64(res.CacheClients*res.CacheReads) * float64(len(data))
		return bytes / 1e6 / time.Since(start).Seconds(), nil
	}
	var with, without, ratio []float64
	for rep := range e.cfg.Reps {
		e.prog.start(fmt.Sprintf("locks: router cache, %s", e.repLabel(rep)))
		a, err := read(e.cl)
		if err != nil {
			return err
		}
		b, err := read(plain)
		if err != nil {
			return fmt.Errorf("through the router without a cache: %w", err)
		}
		with, without, ratio = append(with, a), append(without, b), append(ratio, a/b)
	}
	res.CachedMBps, res.UncachedMBps, res.RouterCacheGet = figureOf(with), figureOf(without), figureOf(ratio)
	return nil
}

// routerWithout starts a second router on the local cluster with extra
// flags, and returns a client of it and what stops it.
func (e *env) routerWithout(ctx context.Context, extra ...string) (*client.Client, func(), error) {
	lc := e.local
	httpPort, err := freeLocalPort()
	if err != nil {
		return nil, nil, err
	}
	gossipPort, err := freeLocalPort()
	if err != nil {
		return nil, nil, err
	}
	args := []string{"router", "--name", "router-b", "--http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--gossip", fmt.Sprintf("127.0.0.1:%d", gossipPort), "--join", lc.Seed, "--meta-group", localGroup}
	if e.cfg.Insecure {
		args = append(args, "--insecure")
	} else {
		args = append(args, "--secrets", lc.Secrets)
	}
	p := lc.NewProc("router-b", append(args, extra...)...)
	if err := p.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() { p.Stop(stopGrace) }
	creds := e.creds
	u, err := url.Parse(e.api)
	if err != nil {
		stop()
		return nil, nil, err
	}
	u.Host = fmt.Sprintf("127.0.0.1:%d", httpPort)
	creds.Router = u.String()
	cfg, err := creds.Config()
	if err != nil {
		stop()
		return nil, nil, err
	}
	cfg.Timeout = time.Minute
	cl, err := client.New(cfg)
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = harness.WaitFor(wctx, "the second router to serve", func() bool { return cl.Healthy(wctx) == nil })
		cancel()
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return cl, stop, nil
}

// libraryCache opens and reads one unchanged small file over and over
// with a client that caches and one that does not.
func (e *env) libraryCache(ctx context.Context, root string, res *LocksResult) error {
	name := root + "/small.txt"
	size := res.OpenFile
	data := bytes.Repeat([]byte("s"), size)
	if _, err := e.cl.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		return err
	}
	cached, err := e.client(time.Minute, 0)
	if err != nil {
		return err
	}
	cfg, err := e.creds.Config()
	if err != nil {
		return err
	}
	cfg.Router, cfg.HTTPClient, cfg.Timeout, cfg.CacheSize = e.api, e.hc, time.Minute, -1
	uncached, err := client.New(cfg)
	if err != nil {
		return err
	}
	opens := func(cl *client.Client) (float64, error) {
		start := time.Now()
		buf := make([]byte, size+1)
		for range openRounds {
			f, err := cl.Open(ctx, name)
			if err != nil {
				return 0, err
			}
			n, err := io.ReadFull(f, buf)
			f.Close()
			if err != io.ErrUnexpectedEOF || n != size {
				return 0, fmt.Errorf("read %d bytes (%v), want %d", n, err, size)
			}
		}
		return openRounds / time.Since(start).Seconds(), nil
	}
	var with, without, ratio []float64
	for rep := range e.cfg.Reps {
		e.prog.start(fmt.Sprintf("locks: library cache, %s", e.repLabel(rep)))
		a, err := opens(cached)
		if err != nil {
			return err
		}
		b, err := opens(uncached)
		if err != nil {
			return err
		}
		with, without, ratio = append(with, a), append(without, b), append(ratio, a/b)
	}
	res.CachedOpens, res.UncachedOpens, res.LibraryCacheGain = figureOf(with), figureOf(without), figureOf(ratio)
	return nil
}
