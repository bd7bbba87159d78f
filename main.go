// Command shoal is a distributed file system in one binary: run it as a
// router, a primary, a replica or a standby, or as a client of the cluster.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"shoal/bench"
	"shoal/client"
	"shoal/clock"
	"shoal/gossip"
	"shoal/mount"
	"shoal/role"
	"shoal/router"
	"shoal/secure"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// buildInfo describes this binary: its version (set at build time, or
// the module's for `go install shoal@v1.2.3`), the commit it was built
// from and when that was made, whether the tree held uncommitted changes,
// the Go release and the platform. A plain `go build` in a git checkout
// records the commit too.
type buildInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"` // of the commit
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// describeBuild is the buildInfo of a build (nil: none recorded).
func describeBuild(version string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return b
	}
	if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the line `shoal version` prints.
func (b buildInfo) String() string {
	commit := ""
	if b.Revision != "" {
		commit = "commit " + b.Revision[:min(12, len(b.Revision))]
		if b.Time != "" {
			commit += " of " + b.Time
		}
		if b.Modified {
			commit += " with uncommitted changes"
		}
		commit += ", "
	}
	return fmt.Sprintf("shoal %s (%s%s, %s)", b.Version, commit, b.Go, b.Platform)
}

// printVersion prints this binary's buildInfo, as a line or as JSON.
func printVersion(args []string) int {
	bi, _ := debug.ReadBuildInfo()
	b := describeBuild(version, bi)
	switch {
	case len(args) == 0:
		fmt.Println(b)
	case len(args) == 1 && args[0] == "--json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(b)
	default:
		fmt.Fprintf(os.Stderr, "shoal version: want no arguments or --json, got %q\n", args)
		return 2
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `shoal: a distributed file system in one binary

Servers:
  dev       run a whole local cluster (router and console on :8080, two groups of three, two standbys)
  router    serve the HTTP API for a cluster
  primary   start a storage node as the primary of a group
  replica   start a storage node as a replica of a group
  standby   start a spare storage node in the pool
  mount     mount the cluster as a POSIX file system (FUSE): shoal mount DIR
  umount    unmount it: shoal umount DIR
Client (talk HTTP to a router: --router, --cluster NAME or SHOAL_ROUTER):
`)
	for _, c := range client.Commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.Name, c.Summary)
	}
	fmt.Fprint(w, "Secrets (offline; see docs/security.md):\n")
	for _, c := range secure.Commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.Name, c.Summary)
	}
	fmt.Fprint(w, `Other:
  bench     measure a cluster: small operations, big files, failover (--local starts one)
  version   print the version, commit and Go release (--json: as JSON)
  completion print a shell completion script: shoal completion bash|zsh|fish

Run 'shoal COMMAND --help' for a command's flags. Every flag can also be
set by an environment variable: --meta-group reads SHOAL_META_GROUP.
`)
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(os.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version":
		return printVersion(rest)
	case "completion":
		return completionScript(rest)
	case "__complete":
		complete(os.Stdout, rest)
		return 0
	case "primary", "replica", "standby":
		serverGC()
		return serve(cmd, rest, nodeMain)
	case "router":
		serverGC()
		return serve(cmd, rest, routerMain)
	case "dev":
		return serve(cmd, rest, devMain)
	case "bench":
		return serve(cmd, rest, benchMain)
	case "mount":
		return serveArgs(cmd, rest, 1, mountMain)
	case "umount":
		return serveArgs(cmd, rest, 1, umountMain)
	case "keygen", "tls", "secrets":
		return secure.Run(cmd, rest, os.Stdout, os.Stderr)
	}
	for _, c := range client.Commands {
		if c.Name == cmd {
			return client.Run(cmd, rest, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
		}
	}
	fmt.Fprintf(os.Stderr, "shoal: unknown command %q (run 'shoal --help' for the list)\n", cmd)
	return 2
}

// serverGCPercent is the garbage collector's target (GOGC) for storage
// nodes and routers, unless the environment sets one. Their heaps are
// small (tens of MiB) and churn fast under small-file and metadata load,
// where the default of 100 had the cluster spend a tenth of its CPU
// collecting. A router's heap stays under its memory limit all the same
// (see setRouterMemoryLimit); a storage node holds about 10 MiB more
// under metadata load, and up to twice as much while chunks stream in.
const serverGCPercent = 300

func serverGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}

// server is a server subcommand: it defines its flags on fs and returns
// the function that runs it once they are parsed.
type server func(cmd string, fs *pflag.FlagSet, logger func() *slog.Logger) func(ctx context.Context) error

// serverCommon are the flags every server takes.
type serverCommon struct {
	logLevel, pprofAddr *string
	clockOffset         *time.Duration
}

// serverFlags defines the flags of server command cmd: those every server
// takes, then its own. It returns the function that runs the server once
// they are parsed.
func serverFlags(cmd string, s server, logger func() *slog.Logger) (*pflag.FlagSet, serverCommon, func(context.Context) error) {
	fs := pflag.NewFlagSet("shoal "+cmd, pflag.ContinueOnError)
	var c serverCommon
	c.logLevel = fs.String("log-level", "info", "log level: debug, info, warn or error")
	c.pprofAddr = fs.String("pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060")
	c.clockOffset = fs.Duration("clock-offset", 0, "shift this process's wall clock by this much, as on a machine whose clock is wrong (to try the cluster with one)")
	_ = fs.MarkHidden("clock-offset")
	return fs, c, s(cmd, fs, logger)
}

// serve parses flags (command line first, then SHOAL_* environment
// variables), runs the server until SIGINT or SIGTERM, and maps the result
// to an exit code.
func serve(cmd string, args []string, s server) int {
	return serveArgs(cmd, args, 0, s)
}

// serveArgs is serve for a command that takes nargs arguments besides
// its flags (the server reads them with fs.Args).
func serveArgs(cmd string, args []string, nargs int, s server) int {
	var log *slog.Logger
	fs, common, start := serverFlags(cmd, s, func() *slog.Logger { return log })
	logLevel, pprofAddr, clockOffset := common.logLevel, common.pprofAddr, common.clockOffset
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		fmt.Fprintf(os.Stderr, "shoal %s: %v\n", cmd, err)
		return 2
	}
	if err := applyEnv(fs); err != nil {
		fmt.Fprintf(os.Stderr, "shoal %s: %v\n", cmd, err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "shoal %s: --log-level %q: use debug, info, warn or error\n", cmd, *logLevel)
		return 2
	}
	log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *clockOffset != 0 {
		clock.SetOffset(*clockOffset)
		log.Warn("this process's wall clock is shifted", "offset", *clockOffset)
	}
	if fs.NArg() > nargs {
		fmt.Fprintf(os.Stderr, "shoal %s: unexpected argument %q\n", cmd, fs.Arg(nargs))
		return 2
	}
	if fs.NArg() < nargs {
		fmt.Fprintf(os.Stderr, "shoal %s: missing argument (see shoal %s --help)\n", cmd, cmd)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *pprofAddr != "" {
		if err := servePprof(ctx, *pprofAddr, log); err != nil {
			fmt.Fprintf(os.Stderr, "shoal %s: --pprof: %v\n", cmd, err)
			return 2
		}
	}
	if err := start(ctx); err != nil {
		log.Error("stopped with an error", "command", cmd, "err", err)
		return 1
	}
	return 0
}

// applyEnv fills every flag not given on the command line from
// SHOAL_<FLAG_NAME>, e.g. --meta-group from SHOAL_META_GROUP.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		name := "SHOAL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && !f.Changed && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("environment %s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

// gossipFlags defines the membership flags shared by every server.
func gossipFlags(fs *pflag.FlagSet) *gossip.Config {
	gc := gossip.DefaultConfig()
	fs.StringVar(&gc.BindAddr, "gossip", gc.BindAddr, "gossip address IP:PORT (TCP and UDP)")
	fs.StringVar(&gc.AdvertiseAddr, "advertise-gossip", "", "gossip address other nodes reach (default: --gossip)")
	fs.StringSliceVar(&gc.Join, "join", nil, "gossip addresses of existing members, HOST:PORT,...")
	fs.DurationVar(&gc.ProbeInterval, "probe-interval", gc.ProbeInterval, "failure detection: how often each node probes another")
	fs.DurationVar(&gc.ProbeTimeout, "probe-timeout", gc.ProbeTimeout, "failure detection: how long a probe waits for an answer")
	fs.IntVar(&gc.SuspicionMult, "suspicion-mult", gc.SuspicionMult, "failure detection: probe intervals a suspect has to refute before it is declared dead")
	fs.DurationVar(&gc.GossipInterval, "gossip-interval", gc.GossipInterval, "how often gossip messages are pushed")
	return &gc
}

func nodeMain(cmd string, fs *pflag.FlagSet, log func() *slog.Logger) func(context.Context) error {
	nc := role.DefaultNodeConfig()
	nc.Start = gossip.Role(cmd)
	if cmd != "standby" {
		fs.StringVar(&nc.Group, "group", "", "the group this node serves (required)")
	}
	fs.StringVar(&nc.DataDir, "data", "", "data directory (required)")
	fs.StringVar(&nc.Listen, "listen", nc.Listen, "node-to-node address HOST:PORT")
	fs.StringVar(&nc.Advertise, "advertise", "", "node-to-node address other nodes reach (default: --listen)")
	fs.StringVar(&nc.Name, "name", "", "unique node name (default: host name and ID)")
	fs.Uint64Var(&nc.ID, "id", 0, "node ID, a positive integer (default: derived once and kept in the data directory)")
	rc := &nc.Replication
	fs.DurationVar(&rc.Heartbeat, "heartbeat", rc.Heartbeat, "how often a primary contacts idle members")
	fs.DurationVar(&rc.RPCTimeout, "rpc-timeout", rc.RPCTimeout, "deadline of one node-to-node call (one carrying a chunk gets a second more per MiB)")
	fs.DurationVar(&nc.StartupGrace, "startup-grace", nc.StartupGrace, "after a restart, how long to learn the cluster before taking over as primary")
	fs.Uint64Var(&rc.LogRetain, "log-retain", rc.LogRetain, "applied log entries kept for lagging members before a snapshot is needed")
	fs.StringVar(&nc.MetaGroup, "meta-group", nc.MetaGroup, "the group that keeps the namespace")
	fs.Var((*byteSize)(&nc.Capacity), "capacity", "bytes of data (chunks and metadata) this node may store, e.g. 500G or 64MiB (default: what it holds plus the disk's free space at start, less --meta-reserve)")
	fs.Var((*byteSize)(&nc.MetaReserve), "meta-reserve", "bytes of the disk kept free for metadata: new data is refused (507) before the disk's free space falls under it (default: 2% of the disk, within 4MiB and 256MiB)")
	fs.DurationVar(&nc.ReplaceAfter, "replace-after", nc.ReplaceAfter, "how long a member may be dead before a standby replaces it (negative: never)")
	fs.Float64Var(&nc.HighWater, "high-water", nc.HighWater, "fraction of capacity above which a group is full; when all are, standbys form a new group")
	fs.IntVar(&rc.GroupSize, "group-size", rc.GroupSize, "voting members a group keeps; a new group takes requests once it has them all (replacements and new groups are made this size)")
	fs.DurationVar(&rc.RepairInterval, "repair-interval", rc.RepairInterval, "how often a primary compares its members' chunks and copies what is missing")
	fs.DurationVar(&rc.GCInterval, "gc-interval", rc.GCInterval, "how often a primary collects unreferenced chunks (0: never)")
	fs.DurationVar(&rc.GCGrace, "gc-grace", rc.GCGrace, "how long a chunk must be unused before it may be collected; longer than any upload")
	fs.IntVar(&rc.ChunkWrites, "chunk-writes", rc.ChunkWrites, "chunk writes a primary carries out at once; more wait for their turn, and are refused as busy (the router retries) after --rpc-timeout")
	fs.Var((*byteSize)(&rc.ScrubRate), "scrub-rate", "bytes per second re-read and verified from the chunks at rest, and from the metadata (meta.db), e.g. 8MiB (0: off)")
	fs.DurationVar(&rc.MetaScrubEvery, "meta-scrub-every", rc.MetaScrubEvery, "how often, at most, the whole metadata store (meta.db) is re-read and verified at --scrub-rate (0: never; reads still check every record they touch)")
	gc := gossipFlags(fs)
	sec := securityFlags(fs, false)
	metrics := metricsFlag(fs, "")
	return func(ctx context.Context) error {
		nc.Gossip, nc.Security, nc.Logger = *gc, *sec, log()
		m, err := metrics(ctx, nc.Logger)
		if err != nil {
			return err
		}
		nc.Metrics = m
		return role.RunNode(ctx, nc)
	}
}

// securityFlags defines the flags of a server's secrets; a router also
// takes the data key and the first admin's token.
func securityFlags(fs *pflag.FlagSet, router bool) *role.Security {
	var s role.Security
	fs.BoolVar(&s.Insecure, "insecure", false, "run without TLS, gossip encryption, users or encryption at rest: anyone who reaches a port owns the cluster")
	fs.StringVar(&s.Secrets, "secrets", "", "directory made by 'shoal secrets init'; every secret not given by its own flag is read from it")
	fs.StringVar(&s.GossipKey, "gossip-key", "", "base64 key encrypting gossip (make one with 'shoal keygen')")
	fs.StringVar(&s.GossipKeyFile, "gossip-key-file", "", "file holding the gossip key(s), one per line, the first in use")
	fs.StringVar(&s.TLSCA, "tls-ca", "", "the cluster's CA certificate, PEM ('shoal tls ca create')")
	fs.StringVar(&s.TLSCert, "tls-cert", "", "this server's certificate, PEM, signed by the CA ('shoal tls cert create')")
	fs.StringVar(&s.TLSKey, "tls-key", "", "this server's private key, PEM")
	if router {
		fs.StringVar(&s.DataKeyFile, "data-key-file", "", "file holding the data key(s) content is encrypted with at rest, one per line, the first in use")
		fs.StringVar(&s.AdminTokenFile, "admin-token-file", "", "file holding the first admin's token: the admin user is created with it if the cluster has no user")
	}
	return &s
}

func routerMain(_ string, fs *pflag.FlagSet, log func() *slog.Logger) func(context.Context) error {
	c := role.DefaultRouterConfig()
	fs.StringVar(&c.HTTP, "http", c.HTTP, "HTTP API address")
	fs.StringVar(&c.Advertise, "advertise", "", "HTTP address published to the cluster (default: --http)")
	fs.StringVar(&c.Name, "name", "", "unique router name (default: host name and a random ID)")
	fs.StringVar(&c.Router.MetaGroup, "meta-group", c.Router.MetaGroup, "the group that keeps the namespace")
	fs.IntVar(&c.Router.ChunkSize, "chunk-size", c.Router.ChunkSize, "size in bytes files are cut into")
	fs.IntVar(&c.Router.InlineMax, "inline-max", c.Router.InlineMax, "files up to this many bytes are kept in their metadata instead of chunks (0: never)")
	fs.Int64Var(&c.Router.MaxFileSize, "max-file-size", c.Router.MaxFileSize, "largest file accepted, in bytes (larger: 413)")
	fs.DurationVar(&c.Router.RequestTimeout, "request-timeout", c.Router.RequestTimeout, "how long a request waits for a primary before 503")
	fs.DurationVar(&c.Router.BodyTimeout, "body-timeout", c.Router.BodyTimeout, "how long a request body may stall (no byte arriving) before the request fails with 408, and a download (no byte taken by the client) before it is cut off")
	fs.Var((*byteSize)(&c.Router.BodyMinRate), "body-min-rate", "slowest a request body may arrive, in bytes per second averaged over --body-rate-window, e.g. 4KiB; slower fails with 408 (0: no floor)")
	fs.DurationVar(&c.Router.BodyRateWindow, "body-rate-window", c.Router.BodyRateWindow, "span of waiting for a body over which --body-min-rate is averaged; the first is every body's grace")
	fs.DurationVar(&c.Router.SpaceWait, "space-wait", c.Router.SpaceWait, "how long a write waits for room (a new group) when every group is full, before 507")
	fs.Var((*byteSize)(&c.Router.UploadMemory), "upload-memory", "memory the chunks of all uploads may hold at once, e.g. 512MiB (two chunk sizes per chunk in flight, three with encryption at rest); past it uploads wait, reading their bodies more slowly")
	fs.Var((*byteSize)(&c.Router.ReadMemory), "read-memory", "memory the chunks all reads fetch may hold at once, e.g. 128MiB (about two chunk sizes per chunk, three with encryption at rest); past it reads fetch fewer chunks ahead")
	fs.Var((*byteSize)(&c.Router.CacheSize), "cache-size", "memory for the hot-chunk cache, shared by all reads: chunks read more than once are kept (checked against their hash), e.g. 1GiB (0: no cache)")
	fs.StringSliceVar(&c.Router.CORSOrigins, "cors-origin", nil, "a web origin whose pages may call the API from a browser, e.g. https://app.example.com (repeat or comma-separate; * for any); they still need a token")
	fs.DurationVar(&c.Router.AuthTTL, "auth-ttl", c.Router.AuthTTL, "how long a token's user is trusted before the cluster is asked again (a removed user's token works at most this long on other routers)")
	fs.StringVar(&c.S3, "s3", "", "address to serve the S3 API on, e.g. 0.0.0.0:9000 (default: none)")
	fs.StringVar(&c.S3Config.Region, "s3-region", "us-east-1", "region the S3 API says it is in")
	fs.StringVar(&c.S3Config.Domain, "s3-domain", "", "domain of virtual-host-style S3 requests: BUCKET.DOMAIN names BUCKET (path-style always works)")
	gc := gossipFlags(fs)
	sec := securityFlags(fs, true)
	metrics := metricsFlag(fs, "")
	return func(ctx context.Context) error {
		c.Gossip, c.Security, c.Logger = *gc, *sec, log()
		m, err := metrics(ctx, c.Logger)
		if err != nil {
			return err
		}
		c.Metrics = m
		setRouterMemoryLimit(c.Router, c.Logger)
		return role.RunRouter(ctx, c)
	}
}

// routerMemorySlack is what a router holds beyond its chunk budgets: the
// runtime, connections, the auth cache, directory listings.
const routerMemorySlack = 32 << 20

// setRouterMemoryLimit asks the Go runtime to keep a router process's
// heap under its chunk budgets (--upload-memory, --read-memory, --cache-size) plus some
// slack, collecting garbage more often as it nears that, rather than
// letting it grow to twice what is live. Every chunk a read fetches is
// garbage once written, so without it many reads at once would grow the
// process far past the budgets. GOMEMLIMIT, when set, is kept.
func setRouterMemoryLimit(c router.Config, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := c.UploadMemory + c.ReadMemory + c.CacheSize + routerMemorySlack
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit set from the chunk budgets", "limit_mib", limit>>20)
}

func devMain(_ string, fs *pflag.FlagSet, log func() *slog.Logger) func(context.Context) error {
	c := role.DefaultDevConfig()
	fs.StringVar(&c.HTTP, "http", c.HTTP, "router HTTP address")
	fs.StringVar(&c.S3, "s3", c.S3, "router S3 API address (\"\": none)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (one subdirectory per node)")
	fs.IntVar(&c.PortBase, "port-base", c.PortBase, "first of the node ports (node i: peers on BASE+i, gossip on BASE+10+i)")
	fs.BoolVar(&c.Insecure, "insecure", false, "run without TLS, gossip encryption, users or encryption at rest")
	metrics := metricsFlag(fs, "127.0.0.1:8081")
	return func(ctx context.Context) error {
		c.Logger, c.CredentialsFile = log(), client.CredentialsPath(os.Getenv)
		var err error
		if c.Metrics, err = metrics(ctx, c.Logger); err != nil {
			return err
		}
		start := time.Now()
		err = role.RunDev(ctx, c)
		c.Logger.Info("dev cluster stopped", "uptime", time.Since(start).Round(time.Second))
		return err
	}
}

func benchMain(_ string, fs *pflag.FlagSet, log func() *slog.Logger) func(context.Context) error {
	c := bench.DefaultConfig()
	fs.StringVar(&c.Router, "router", "", "router URL of the cluster to measure (default $SHOAL_ROUTER, the credentials file, or "+c.Router+")")
	fs.StringVar(&c.CA, "ca", "", "the cluster's CA certificate (default $SHOAL_CA or the credentials file)")
	fs.StringVar(&c.Token, "token", "", "the token to measure with (default $SHOAL_TOKEN or the credentials file)")
	cluster := fs.String("cluster", "", "a cluster named in the credentials file to measure (see 'shoal alias'; default $SHOAL_CLUSTER)")
	fs.BoolVar(&c.Local, "local", false, "start a local cluster (3 storage processes and a router on 127.0.0.1) and measure it")
	fs.BoolVar(&c.Insecure, "insecure", false, "with --local: run the local cluster with --insecure (no TLS, users or encryption at rest)")
	fs.BoolVar(&c.NoMetrics, "no-metrics", false, "with --local: run the local cluster without --metrics, to measure what collecting metrics costs")
	fs.StringVar(&c.Filer, "filer", "", "measure a SeaweedFS filer at this URL instead of Shoal, with the same workloads (ops, small, meta, large), for a side-by-side comparison")
	fs.BoolVar(&c.FilerFsync, "filer-fsync", false, "with --filer: ask SeaweedFS to fsync every write (fsync=true)")
	fs.IntSliceVar(&c.Pids, "pids", nil, "processes of the measured cluster, when the benchmark did not start it (a SeaweedFS cluster's with --filer), whose CPU time and disk writes the meta workload reports per file")
	fs.StringSliceVar(&c.Workloads, "workloads", nil, "what to run: ops, small, meta, large, memory, failover, mount, security, metrics, scale, cli (default: ops, small, meta, large; failover with --local; mount with --mount; memory (gigabytes of transfers), security (a secure local cluster beside an --insecure one), metrics (a local cluster collecting metrics beside one that does not) scale (a local cluster of two groups beside one of one group) cli (the CLI's put -r, sync and a large put twice, beside API writes) and s3 (the S3 API beside the file API) only when named)")
	fs.IntVar(&c.Reps, "reps", c.Reps, "repetitions of each measurement; figures are the median with min and max")
	fs.IntVar(&c.SmallFiles, "small-files", c.SmallFiles, "files of 1 KiB the small workload writes and reads back")
	fs.IntVar(&c.SmallClients, "small-clients", c.SmallClients, "concurrent clients of the small and meta workloads")
	fs.IntVar(&c.MetaFiles, "meta-files", c.MetaFiles, "files in the directory the meta workload creates, stats, lists, copies, renames and deletes")
	fs.Var(&c.LargeSizes, "large-sizes", "file sizes of the large workload (MB = 10^6 bytes, MiB = 2^20)")
	fs.IntVar(&c.FailoverRuns, "failover-runs", c.FailoverRuns, "times the failover workload kills the primary")
	fs.IntVar(&c.FailoverLoad, "failover-load", c.FailoverLoad, "clients writing 1 KiB files during each failover run, beside the one that is timed")
	fs.StringVar(&c.MountDir, "mount", "", "where the cluster is mounted, for the mount workload (with --local it mounts its own)")
	fs.Var((*byteSize)(&c.MountSize), "mount-size", "size of the file the mount workload writes and reads, e.g. 100MiB")
	fs.IntVar(&c.MountFiles, "mount-files", c.MountFiles, "1 KiB files the mount workload creates and lists")
	fs.IntVar(&c.TreeFiles, "tree-files", c.TreeFiles, "files in the tree the mount workload unpacks with tar, commits with git, copies with rsync and removes with rm -rf, through the mount and in a local directory")
	fs.IntVar(&c.MemoryStreams, "memory-streams", c.MemoryStreams, "transfers the memory workload runs at once through the router, uploads then downloads")
	fs.Var((*byteSize)(&c.MemorySize), "memory-size", "size of each transfer of the memory workload, e.g. 1GiB")
	fs.IntVar(&c.ScaleStreams, "scale-streams", c.ScaleStreams, "uploads the scale workload runs at once on each cluster")
	fs.Var((*byteSize)(&c.ScaleSize), "scale-size", "size of each upload of the scale workload, e.g. 128MiB")
	fs.StringVar(&c.S3, "s3", "", "S3 endpoint of the cluster for the s3 workload, e.g. https://host:9000 (a --local cluster's is known)")
	fs.Var((*byteSize)(&c.CacheFileSize), "cache-file-size", "size of the file the locks workload reads through a router with its chunk cache and one without, e.g. 100MB")
	fs.IntVar(&c.CacheReads, "cache-reads", c.CacheReads, "how many times each of 8 clients reads that file, per router")
	fs.Var((*byteSize)(&c.OpenFileSize), "open-file-size", "size of the file the locks workload opens and reads over and over through the library, with its cache and without, e.g. 1MiB")
	fs.Var((*byteSize)(&c.S3Size), "s3-size", "size of the file the s3 workload sends and reads through S3 and the file API, e.g. 1GiB")
	fs.Var((*byteSize)(&c.CLILargeSize), "cli-large-size", "size of the file the cli workload puts twice, e.g. 1GiB")
	fs.BoolVar(&c.Guard, "guard", false, "also measure the machine in the same run (disk fsyncs/s, loopback HTTP) and fail when small writes, small reads or the download fall under their floors relative to it")
	fs.BoolVar(&c.JSON, "json", false, "write the report as JSON on standard output instead of a table")
	fs.BoolVar(&c.Keep, "keep", false, "keep the local cluster's data directory and logs")
	fs.StringVar(&c.DataDir, "data", "", "directory in which the local cluster's directory is made (default: the system's temporary directory)")
	return func(ctx context.Context) error {
		c.Version, c.Stdout, c.Stderr, c.Logger = version, os.Stdout, os.Stderr, log()
		if !c.Local && c.Filer == "" {
			creds, _, err := client.ResolveCredentials(client.Credentials{Router: c.Router, CA: c.CA, Token: c.Token, Cluster: *cluster}, os.Getenv)
			if err != nil {
				return err
			}
			c.Router, c.CA, c.Token = creds.Router, creds.CA, creds.Token
			if c.Router == "" {
				c.Router = client.DefaultConfig().Router
			}
		}
		return bench.Run(ctx, c)
	}
}

func mountMain(_ string, fs *pflag.FlagSet, log func() *slog.Logger) func(context.Context) error {
	c := mount.RunConfig{Mount: mount.DefaultConfig()}
	var creds client.Credentials
	retry := time.Minute
	fs.StringVar(&creds.Router, "router", "", "router URL of the cluster, or several separated by commas to fail over between (default $SHOAL_ROUTER, the credentials file, or "+client.DefaultConfig().Router+")")
	fs.StringVar(&creds.Cluster, "cluster", "", "a cluster named in the credentials file (see 'shoal alias'; default $SHOAL_CLUSTER)")
	fs.StringVar(&creds.CA, "ca", "", "the cluster's CA certificate (default $SHOAL_CA or the credentials file)")
	fs.StringVar(&creds.Token, "token", "", "the token the mount uses (default $SHOAL_TOKEN or the credentials file)")
	fs.StringVar(&creds.Cert, "cert", "", "this mount host's certificate, with which a token with the mount capability acts for each local user (default $SHOAL_CERT or the credentials file)")
	fs.StringVar(&creds.Key, "key", "", "the key of --cert (default $SHOAL_KEY or the credentials file)")
	fs.BoolVar(&c.Mount.AllowOther, "allow-other", false, "let other users use the mount (a non-root mounter needs user_allow_other in /etc/fuse.conf)")
	fs.BoolVar(&c.Foreground, "foreground", false, "serve in this process until unmounted or interrupted, instead of in the background")
	fs.StringVar(&c.LogFile, "log", "", "in the background, append the mount's logs to this file (default: discard them)")
	fs.DurationVar(&c.Mount.LockTTL, "lock-ttl", c.Mount.LockTTL, "lease of the flock and fcntl locks taken through the mount, which are cluster-wide, and of the files it has open after their unlink: a mount that dies loses them this long after its last renewal (0: locks local to this host, and such files kept a minute)")
	fs.DurationVar(&c.Mount.AttrTimeout, "attr-timeout", c.Mount.AttrTimeout, "how long the kernel may use attributes before asking again")
	fs.DurationVar(&c.Mount.EntryTimeout, "entry-timeout", c.Mount.EntryTimeout, "how long the kernel may use a name lookup before asking again")
	fs.DurationVar(&c.Mount.NegativeTimeout, "negative-timeout", c.Mount.NegativeTimeout, "how long the kernel may remember that a name does not exist")
	fs.Var((*byteSize)(&c.Mount.WriteBuffer), "write-buffer", "bytes written to one open file kept before they are sent (default: four chunks)")
	fs.DurationVar(&retry, "retry", retry, "how long a request the cluster cannot serve (a failover, a router restarting or down) is retried, round the routers, before the program gets an error")
	fs.BoolVar(&c.Mount.Debug, "debug", false, "log every FUSE request")
	metrics := metricsFlag(fs, "")
	return func(ctx context.Context) error {
		if c.Foreground { // a background mount is served by its relaunched copy, which serves the metrics
			m, err := metrics(ctx, log())
			if err != nil {
				return err
			}
			if m != nil {
				dir, _ := filepath.Abs(fs.Arg(0))
				if real, err := filepath.EvalSymlinks(dir); err == nil {
					dir = real // as /proc/self/mountinfo names it
				}
				c.Mount.Metrics = prometheus.WrapRegistererWith(prometheus.Labels{"node": "mount " + dir}, m.Registry)
				defer m.AddCheck("mount "+dir, func(context.Context) (bool, string) {
					if mount.IsMounted(dir) {
						return true, "serving the cluster at " + dir
					}
					return false, dir + " is not mounted (yet, or any more)"
				})()
			}
		}
		creds, _, err := client.ResolveCredentials(creds, os.Getenv)
		if err != nil {
			return err
		}
		cc, err := creds.Config()
		if err != nil {
			return err
		}
		// A failover, a router restarting, a router gone while others
		// serve: each is a stall of the program's call, up to --retry.
		cc.Retry503, cc.RetryUnreachable = retry, retry
		cl, err := client.New(cc)
		if err != nil {
			return err
		}
		c.Dir, c.Mount.Client, c.Mount.Name, c.Mount.Logger = fs.Arg(0), cl, cl.Router(), log()
		if creds.Token != "" {
			// A token that may act for other users does so for each
			// caller; any other acts as its own user.
			me, err := cl.WhoAmI(ctx)
			if err != nil {
				return fmt.Errorf("mount: ask the router who the token belongs to: %w", err)
			}
			c.Mount.ActAs = me.Admin || me.Mount && creds.Cert != ""
		}
		c.Relaunch = append(append([]string{"mount"}, os.Args[2:]...), "--foreground")
		return mount.Run(ctx, c)
	}
}

func umountMain(_ string, fs *pflag.FlagSet, _ func() *slog.Logger) func(context.Context) error {
	lazy := fs.Bool("lazy", false, "detach now even while programs use the mount; it goes when they let go")
	return func(context.Context) error { return mount.Unmount(fs.Arg(0), *lazy) }
}

// byteSize is a flag holding a byte count: plain bytes, or a number with
// a K, M, G, T suffix (powers of 1024; "KiB", "KB" and "k" mean the same).
type byteSize int64

// String is the size as Set reads it back: in the largest binary unit
// that divides it (1GiB, 128MiB), else in bytes.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Type() string { return "bytes" }

func (b *byteSize) Set(s string) error {
	v := strings.TrimSpace(strings.ToUpper(s))
	v = strings.TrimSuffix(strings.TrimSuffix(v, "B"), "I")
	shift := 0
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift > 0 {
			v = v[:n-1]
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return fmt.Errorf("%q is not a byte size: use a number with an optional K, M, G or T suffix", s)
	}
	*b = byteSize(n << shift)
	return nil
}

// metricsFlag defines --metrics (default def) on fs. The function it
// returns, called once flags are parsed, serves the process's metrics
// there (role.ServeMetrics); nil when --metrics is "".
func metricsFlag(fs *pflag.FlagSet, def string) func(context.Context, *slog.Logger) (*role.MetricsEndpoint, error) {
	addr := fs.String("metrics", def, "serve Prometheus metrics (/metrics) and liveness (/healthz) in plain HTTP on this address, e.g. 127.0.0.1:9464 (\"\": none)")
	return func(ctx context.Context, log *slog.Logger) (*role.MetricsEndpoint, error) {
		if *addr == "" {
			return nil, nil
		}
		return role.ServeMetrics(ctx, *addr, log)
	}
}

// servePprof serves the runtime profiles on addr until ctx ends, on a mux
// of its own so nothing else is exposed there.
func servePprof(ctx context.Context, addr string, log *slog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("serving profiles", "addr", l.Addr().String())
	return nil
}
