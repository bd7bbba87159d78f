// Package bench measures a Shoal cluster through a router's HTTP API: the
// latency of small file operations, the throughput of small and large
// files, and, on a local cluster it starts itself, how long writes stall
// when the meta group's primary is killed.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"shoal/client"
)

// The workloads, in the order Run runs them.
const (
	WorkloadOps      = "ops"
	WorkloadSmall    = "small"
	WorkloadLarge    = "large"
	WorkloadFailover = "failover"
	WorkloadMount    = "mount"
	WorkloadSecurity = "security"
	WorkloadMeta     = "meta"
	WorkloadMemory   = "memory"
	WorkloadScale    = "scale"
	WorkloadMetrics  = "metrics"
	WorkloadCLI      = "cli"
	WorkloadS3       = "s3"
	WorkloadLocks    = "locks"
)

var allWorkloads = []string{WorkloadOps, WorkloadSmall, WorkloadMeta, WorkloadLarge, WorkloadMemory, WorkloadFailover, WorkloadMount, WorkloadSecurity, WorkloadMetrics, WorkloadScale, WorkloadCLI, WorkloadS3, WorkloadLocks}

// filerWorkloads are the workloads that can measure a SeaweedFS filer.
var filerWorkloads = []string{WorkloadOps, WorkloadSmall, WorkloadMeta, WorkloadLarge}

// Config says what to measure and where. Flags of 'shoal bench' fill it.
type Config struct {
	// Router is the base URL of a router of the cluster to measure, and
	// CA and Token how to reach it (see client.Credentials). Ignored with
	// Local.
	Router, CA, Token string
	// Local starts a cluster of separate processes on 127.0.0.1 (one
	// group of three storage nodes and a router) and measures it. It is
	// secure (TLS, users, encryption at rest) unless Insecure is set.
	Local    bool
	Insecure bool
	// NoMetrics starts the local cluster's processes without --metrics,
	// to measure what collecting metrics costs.
	NoMetrics bool
	// Filer, when set, is the URL of a SeaweedFS filer to measure instead
	// of Shoal, with the same code (ops, small, meta and large only), so
	// that the two can be compared on one machine; FilerFsync asks it to
	// fsync every write.
	Filer      string
	FilerFsync bool
	// Pids are the processes of a cluster the benchmark did not start
	// (a SeaweedFS cluster's, or a Shoal cluster's started by hand) whose
	// CPU time and disk writes the meta workload counts per file, as it
	// does a local cluster's.
	Pids []int
	// Workloads names what to run: ops, small, large, failover, mount,
	// security. Empty means ops, small, large, failover with Local, and
	// mount with MountDir; security only when named.
	Workloads []string
	// Reps is how many times each measurement is made; every figure is the
	// median of the reps, with their range.
	Reps int
	// SmallFiles is the number of 1 KiB files the small workload writes
	// and reads back, by SmallClients concurrent clients.
	SmallFiles   int
	SmallClients int
	// MetaFiles is the number of files in the one directory the meta
	// workload creates, stats, lists, copies, renames and deletes, with
	// SmallClients concurrent clients.
	MetaFiles int
	// LargeSizes are the file sizes the large workload uploads and
	// downloads, one file per size and rep.
	LargeSizes Sizes
	// FailoverRuns is how many times the failover workload kills the
	// primary; its figures are over the runs rather than over Reps.
	FailoverRuns int
	// FailoverLoad is how many more clients write 1 KiB files during each
	// failover run, beside the one whose writes are timed.
	FailoverLoad int
	// MountDir is where the measured cluster is mounted (shoal mount), for
	// the mount workload; with Local and no MountDir the workload mounts
	// the local cluster itself. MountSize is the file size it writes and
	// reads, MountFiles the number of 1 KiB files it creates and lists.
	MountDir   string
	MountSize  int64
	MountFiles int
	// TreeFiles is the size of the tree the mount workload's tools (tar,
	// git, rsync, rm) work on, in files.
	TreeFiles int
	// MemoryStreams is how many transfers of MemorySize bytes the memory
	// workload runs at once through the router of the local cluster,
	// first uploads, then downloads, reading the router's peak memory.
	MemoryStreams int
	MemorySize    int64
	// ScaleStreams is how many uploads of ScaleSize bytes the scale
	// workload runs at once on each cluster.
	ScaleStreams int
	ScaleSize    int64
	// CLILargeSize is the size of the file the cli workload puts twice.
	CLILargeSize int64
	// S3 is the S3 endpoint of the cluster (https://host:9000), for the
	// s3 workload (a local cluster's is known); S3Size the size of the
	// file it sends and reads through S3 and through the file API.
	S3     string
	S3Size int64
	// CacheFileSize is the size of the file the locks workload reads
	// through a router with its hot-chunk cache and one without,
	// CacheReads times from each of 8 clients at once.
	CacheFileSize int64
	CacheReads    int
	// OpenFileSize is the size of the file the locks workload opens and
	// reads over and over through the library, with its cache and without.
	OpenFileSize int64
	// Guard also measures the machine in the same run (the disk's fsync
	// rate, loopback HTTP) and fails the run with ErrRegression when a
	// figure falls under its floor relative to it (guard.go).
	Guard bool
	// JSON writes the report as JSON instead of a table.
	JSON bool
	// Keep leaves the local cluster's data directory in place; it is also
	// kept when the run fails, for its logs.
	Keep bool
	// DataDir is where the local cluster's directory is made (a new
	// subdirectory, so nothing already there is touched or removed).
	// Empty means the system's temporary directory.
	DataDir string
	// Binary is the shoal executable the local cluster runs; empty means
	// the running executable.
	Binary string
	// Version is the shoal version, for the report.
	Version string
	// Stdout receives the report; Stderr the progress (one line redrawn in
	// place when it is a terminal, a line per step otherwise). Nil
	// discards.
	Stdout, Stderr io.Writer
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig measures every workload of a router on this host.
func DefaultConfig() Config {
	return Config{
		Router:       client.DefaultConfig().Router,
		Reps:         3,
		SmallFiles:   100000,
		SmallClients: 16,
		MetaFiles:    10000,
		LargeSizes:   Sizes{10e6, 100e6, 1 << 30},
		FailoverRuns: 5,
		FailoverLoad: 15,
		MountSize:    100e6,
		MountFiles:   1000,
		TreeFiles:    300,

		MemoryStreams: 8,
		MemorySize:    1 << 30,
		ScaleStreams:  8,
		ScaleSize:     128 << 20,
		CLILargeSize:  1 << 30,
		S3Size:        1 << 30,
		CacheFileSize: 100e6,
		CacheReads:    10,
		OpenFileSize:  1 << 20,
	}
}

// Validate says what to fix when c cannot be run.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	for _, w := range c.Workloads {
		if !slices.Contains(allWorkloads, w) {
			return bad("unknown workload %q; choose from %s", w, strings.Join(allWorkloads, ", "))
		}
		if c.Filer != "" && !slices.Contains(filerWorkloads, w) {
			return bad("a SeaweedFS filer can be measured by %s only, not %s", strings.Join(filerWorkloads, ", "), w)
		}
		if w == WorkloadFailover && !c.Local {
			return bad("the failover workload kills processes, so it needs --local")
		}
		if w == WorkloadMount && !c.Local && c.MountDir == "" {
			return bad("the mount workload needs --mount DIR (where the cluster is mounted) or --local")
		}
		if w == WorkloadMemory && !c.Local {
			return bad("the memory workload reads the router's memory from /proc, so it needs --local")
		}
		if w == WorkloadSecurity && (!c.Local || c.Insecure) {
			return bad("the security workload compares a secure local cluster with an insecure one: it needs --local and no --insecure")
		}
		if w == WorkloadMetrics && (!c.Local || c.NoMetrics) {
			return bad("the metrics workload compares a local cluster collecting metrics with one that does not: it needs --local and no --no-metrics")
		}
		if w == WorkloadScale && !c.Local {
			return bad("the scale workload compares a local cluster of one group with one of two groups: it needs --local")
		}
	}
	switch {
	case c.Reps < 1:
		return bad("reps %d: give at least 1", c.Reps)
	case c.SmallFiles < 1:
		return bad("small files %d: give at least 1", c.SmallFiles)
	case c.runs(WorkloadLocks) && (c.CacheFileSize < 16 || c.CacheReads < 1 || c.OpenFileSize < 1 || c.OpenFileSize > 1<<30):
		return bad("cache file of %d bytes read %d times, open file of %d bytes: give at least 16 bytes and 1 read, and 1 byte to 1 GiB",
			c.CacheFileSize, c.CacheReads, c.OpenFileSize)
	case c.SmallClients < 1:
		return bad("small clients %d: give at least 1", c.SmallClients)
	case c.MetaFiles < 1:
		return bad("meta files %d: give at least 1", c.MetaFiles)
	case c.Guard && c.Filer != "":
		return bad("--guard checks Shoal's figures against floors of its own; give it without --filer")
	case c.Filer != "" && c.Local:
		return bad("--filer measures a running SeaweedFS filer; --local starts a Shoal cluster: give one of them")
	case len(c.Pids) > 0 && c.Local:
		return bad("--pids names the processes of a cluster the benchmark did not start; with --local it counts its own")
	case slices.ContainsFunc(c.Pids, func(p int) bool { return p <= 0 }):
		return bad("--pids %v: give process IDs above 0", c.Pids)
	case c.FailoverRuns < 1:
		return bad("failover runs %d: give at least 1", c.FailoverRuns)
	case c.FailoverLoad < 0:
		return bad("failover load %d: give 0 or more clients", c.FailoverLoad)
	case c.MountSize < 1 || c.MountFiles < 1 || c.TreeFiles < 1:
		return bad("mount size %d, files %d and tree files %d: give at least 1 of each", c.MountSize, c.MountFiles, c.TreeFiles)
	case c.MemoryStreams < 1 || c.MemorySize < 1:
		return bad("memory streams %d and size %d: give at least 1 of each", c.MemoryStreams, c.MemorySize)
	case c.CLILargeSize < 1:
		return bad("cli large size %d: give at least 1 byte", c.CLILargeSize)
	case c.ScaleStreams < 1 || c.ScaleSize < 1:
		return bad("scale streams %d and size %d: give at least 1 of each", c.ScaleStreams, c.ScaleSize)
	case len(c.LargeSizes) == 0 && c.runs(WorkloadLarge):
		return bad("no large sizes: give some, like 10MB,1GiB")
	}
	for _, s := range c.LargeSizes {
		if s <= 0 {
			return bad("large size %d: give a positive size", s)
		}
	}
	if c.Filer != "" {
		_, err := newFilerFS(c.Filer, false, nil)
		return err
	}
	if !c.Local {
		if err := (client.Config{Router: c.Router}).Validate(); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// runs reports whether workload w is to run.
func (c Config) runs(w string) bool {
	if len(c.Workloads) == 0 {
		if c.Filer != "" {
			return slices.Contains(filerWorkloads, w)
		}
		switch w {
		case WorkloadFailover:
			return c.Local
		case WorkloadMount: // needs FUSE: only when asked for
			return c.MountDir != ""
		case WorkloadSecurity, WorkloadMetrics: // a second cluster and twice the work: only when asked for
			return false
		case WorkloadMemory, WorkloadScale, WorkloadCLI, WorkloadS3: // gigabytes on disk and minutes: only when asked for
			return false
		case WorkloadLocks: // a second router, and a file read 160 times: only when asked for
			return false
		}
		return true
	}
	return slices.Contains(c.Workloads, w)
}

// env is what every workload works with.
type env struct {
	cfg   Config
	cl    *client.Client // nil when a filer is measured
	fs    fileSystem     // what the ops, small, meta and large workloads measure
	hc    *http.Client
	api   string // router base URL
	creds client.Credentials
	root  string // directory of this run's files in the cluster
	prog  *progress
	log   *slog.Logger
	local *localCluster // nil unless Config.Local
	// pass names the side a paired workload (s3) is measuring, which
	// runs each rep twice under rep numbers 2r and 2r+1; "" otherwise.
	pass string
}

// repLabel names rep in progress lines.
func (e *env) repLabel(rep int) string {
	if e.pass != "" {
		return fmt.Sprintf("%s, rep %d/%d", e.pass, rep/2+1, e.cfg.Reps)
	}
	return fmt.Sprintf("rep %d/%d", rep+1, e.cfg.Reps)
}

// Run measures the workloads of cfg and writes the report. It stops every
// process it started before returning, also when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &env{cfg: cfg, api: cfg.Router, creds: client.Credentials{Router: cfg.Router, CA: cfg.CA, Token: cfg.Token},
		prog: newProgress(cfg.Stderr, time.Now), log: cfg.Logger}
	defer e.prog.clear()
	rep := newReport(cfg)
	if cfg.Local {
		e.prog.start("local cluster: starting 3 storage processes and a router")
		e.local, err = startLocal(ctx, cfg, e.log)
		if err != nil {
			return err
		}
		defer func() {
			failed := err != nil && ctx.Err() == nil
			if cerr := e.local.close(failed); err == nil {
				err = cerr
			}
		}()
		e.api, e.creds = e.local.API, e.local.Creds
		rep.Cluster = "local: 3 storage processes + router"
		if cfg.Insecure {
			rep.Cluster += " (--insecure)"
		}
	}
	if cfg.Filer != "" {
		e.hc = &http.Client{Transport: pooledTransport()}
		if e.fs, err = newFilerFS(cfg.Filer, cfg.FilerFsync, e.hc); err != nil {
			return err
		}
		rep.Cluster = "SeaweedFS filer " + cfg.Filer
		if cfg.FilerFsync {
			rep.Cluster += " (fsync=true on every write)"
		}
		if err := e.fs.Healthy(ctx); err != nil {
			return fmt.Errorf("SeaweedFS filer %s does not answer: %w", cfg.Filer, err)
		}
	} else {
		if e.cl, err = e.client(time.Minute, 0); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
		e.fs = shoalFS{e.cl}
		if e.local != nil {
			if err := e.local.waitReady(ctx, 90*time.Second); err != nil {
				return err
			}
		} else if err := e.cl.Healthy(ctx); err != nil {
			return fmt.Errorf("router %s does not answer (start a cluster with 'shoal dev', give --router, or use --local): %w", e.api, err)
		}
	}
	// Down to microseconds, so that runs against one cluster never share
	// a directory.
	e.root = "/shoal-bench/" + time.Now().UTC().Format("20060102-150405.000000")
	if !cfg.Local {
		defer e.removeRoot()
	}
	if err := e.runAll(ctx, rep); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		return err
	}
	e.prog.clear()
	rep.Guard = guard(rep)
	if err := rep.write(cfg.Stdout, cfg.JSON); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := guardErr(rep.Guard); err != nil {
		return err
	}
	if f := rep.Failover; f != nil && f.LostWrites > 0 {
		return fmt.Errorf("%w: %d of %d acknowledged writes could not be read back after failover",
			ErrLostWrites, f.LostWrites, f.AckedWrites)
	}
	return nil
}

// runAll runs the chosen workloads in their fixed order, filling rep.
func (e *env) runAll(ctx context.Context, rep *Report) error {
	var err error
	if e.cfg.Guard {
		if rep.Baseline, err = e.runBaseline(ctx); err != nil {
			return err
		}
	}
	if e.cfg.runs(WorkloadOps) {
		if err := e.withMemory(rep, WorkloadOps, func() (err error) { rep.Ops, err = e.runOps(ctx); return err }); err != nil {
			return fmt.Errorf("ops workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadSmall) {
		if err := e.withMemory(rep, WorkloadSmall, func() (err error) { rep.Small, err = e.runSmall(ctx); return err }); err != nil {
			return fmt.Errorf("small workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadMeta) {
		if err := e.withMemory(rep, WorkloadMeta, func() (err error) { rep.Meta, err = e.runMeta(ctx); return err }); err != nil {
			return fmt.Errorf("meta workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadLarge) {
		if err := e.withMemory(rep, WorkloadLarge, func() (err error) { rep.Large, err = e.runLarge(ctx); return err }); err != nil {
			return fmt.Errorf("large workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadMemory) {
		if err := e.withMemory(rep, WorkloadMemory, func() (err error) { rep.Streams, err = e.runStreams(ctx); return err }); err != nil {
			return fmt.Errorf("memory workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadFailover) {
		if err := e.withMemory(rep, WorkloadFailover, func() (err error) { rep.Failover, err = e.runFailover(ctx); return err }); err != nil {
			return fmt.Errorf("failover workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadMount) {
		if err := e.withMemory(rep, WorkloadMount, func() (err error) { rep.Mount, err = e.runMount(ctx); return err }); err != nil {
			return fmt.Errorf("mount workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadSecurity) {
		if rep.Security, err = e.runSecurity(ctx); err != nil {
			return fmt.Errorf("security workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadMetrics) {
		if rep.Metrics, err = e.runMetrics(ctx); err != nil {
			return fmt.Errorf("metrics workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadScale) {
		if rep.Scale, err = e.runScale(ctx); err != nil {
			return fmt.Errorf("scale workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadS3) {
		if err := e.withMemory(rep, WorkloadS3, func() (err error) { rep.S3, err = e.runS3(ctx); return err }); err != nil {
			return fmt.Errorf("s3 workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadLocks) {
		if err := e.withMemory(rep, WorkloadLocks, func() (err error) { rep.Locks, err = e.runLocks(ctx); return err }); err != nil {
			return fmt.Errorf("locks workload: %w", err)
		}
	}
	if e.cfg.runs(WorkloadCLI) {
		if err := e.withMemory(rep, WorkloadCLI, func() (err error) { rep.CLI, err = e.runCLI(ctx); return err }); err != nil {
			return fmt.Errorf("cli workload: %w", err)
		}
	}
	return nil
}

// pooledTransport keeps enough idle connections for every concurrent
// client: the default two per host would make most requests of a
// 16-client run open a new connection, and measure that instead.
func pooledTransport() *http.Transport {
	t := client.NewTransport(nil)
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 512
	return t
}

// client returns a client of the measured cluster over the shared pool of
// connections, with its credentials (retry503 0: the client's default).
func (e *env) client(timeout, retry503 time.Duration) (*client.Client, error) {
	cfg, err := e.creds.Config()
	if err != nil {
		return nil, err
	}
	if e.hc == nil {
		t := pooledTransport()
		t.TLSClientConfig = cfg.TLS
		e.hc = &http.Client{Transport: t}
	}
	cfg.Router, cfg.HTTPClient, cfg.Timeout, cfg.Retry503 = e.api, e.hc, timeout, retry503
	return client.New(cfg)
}

// removeRoot deletes the run's files from a cluster that outlives the run.
func (e *env) removeRoot() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := e.fs.Delete(ctx, e.root, true)
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		how := fmt.Sprintf("remove it with 'shoal rm -r %s'", e.root)
		if e.cl == nil {
			how = "remove it through the filer"
		}
		fmt.Fprintf(e.cfg.Stderr, "shoal bench: could not remove %s (%s): %v\n", e.root, how, err)
	}
}

// Sizes is a list of byte sizes, as a flag: "10MB,100MB,1GiB". KB, MB,
// GB and TB are powers of 1000; KiB, MiB, GiB and TiB powers of 1024; a
// plain number is bytes.
type Sizes []int64

var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// Set parses a comma-separated list of sizes, replacing the list.
func (s *Sizes) Set(v string) error {
	var out Sizes
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := parseSize(f)
		if err != nil {
			return err
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return fmt.Errorf("%q has no sizes: give a list like 10MB,100MB,1GiB", v)
	}
	*s = out
	return nil
}

func parseSize(f string) (int64, error) {
	u := strings.ToUpper(f)
	mult := int64(1)
	for _, unit := range sizeUnits {
		if strings.HasSuffix(u, unit.suffix) {
			u, mult = strings.TrimSpace(strings.TrimSuffix(u, unit.suffix)), unit.n
			break
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size: use a positive whole number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB)", f)
	}
	return n * mult, nil
}

// String lists the sizes as Set reads them.
func (s *Sizes) String() string {
	parts := make([]string, len(*s))
	for i, n := range *s {
		parts[i] = strings.ReplaceAll(sizeLabel(n), " ", "")
	}
	return strings.Join(parts, ",")
}

// Type names the flag's value in help text.
func (s *Sizes) Type() string { return "sizes" }

// sizeLabel writes n in the largest unit that divides it: "10 MB",
// "1 GiB", "1500 B".
func sizeLabel(n int64) string {
	for _, unit := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3}} {
		if n >= unit.n && n%unit.n == 0 {
			return fmt.Sprintf("%d %s", n/unit.n, unit.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// seedOf derives a stream seed from the parts of a file's identity, so
// that every rep writes different content.
func seedOf(parts ...uint64) uint64 {
	s := uint64(0x5eed)
	for _, p := range parts {
		s = splitmix64(s ^ p)
	}
	return s
}

// osExecutable is the running binary, for a local cluster without
// Config.Binary.
func osExecutable() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the shoal binary to start the local cluster with: %w", err)
	}
	return p, nil
}
