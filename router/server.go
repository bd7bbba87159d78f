package router

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"shoal/api"
	"shoal/gossip"
	"shoal/meta"
	"shoal/secure"
	"shoal/wire"
)

// Config configures a router.
type Config struct {
	// Members returns the current gossip view.
	Members func() []gossip.Member
	// Metrics, if set, is where the router registers its Prometheus
	// metrics (requests, latency, bytes, retries); unregistered by Close.
	Metrics prometheus.Registerer
	// NextChange, when set, returns a channel closed at the next change
	// of that view (gossip.Node.NextChange): a request waiting for a
	// group's new primary tries it as soon as the view names it, rather
	// than at its next backoff.
	NextChange func() <-chan struct{}
	// Transport reaches storage nodes.
	Transport wire.Transport
	// MetaGroup is the group that keeps the namespace (default "g1"; ""
	// also means "g1"). Every group, this one included, keeps chunks.
	MetaGroup string
	// ChunkSize is the size files are cut into (default 4 MiB).
	ChunkSize int
	// InlineMax is the largest file kept inside its metadata rather than
	// in chunks (default 16 KiB; 0 stores every file in chunks).
	InlineMax int
	// MaxFileSize bounds one file's size; larger uploads get 413
	// (default 1 TiB).
	MaxFileSize int64
	// RequestTimeout bounds how long a request waits for a primary, for
	// example during a failover, before it gets 503 (default 10s).
	RequestTimeout time.Duration
	// RPCTimeout bounds one call to a storage node (default 5s).
	RPCTimeout time.Duration
	// BodyTimeout bounds how long a request body may stall: a read of it
	// that gets no byte for this long fails the request with 408 and the
	// connection is closed (default 2m). Without it a client that stops
	// sending mid-upload would hold its request, and the chunk buffers
	// it filled, for ever: the HTTP server only bounds the headers. It
	// bounds a download's writes the same way: a client that takes no
	// byte for this long is cut off, and the chunks fetched for it go.
	BodyTimeout time.Duration
	// BodyMinRate is the slowest a request body may arrive, in bytes per
	// second averaged over BodyRateWindow of waiting for it; a slower one
	// fails with 408 and the connection is closed (default 4 KiB/s; 0: no
	// floor). BodyTimeout alone lets a client that sends a byte now and
	// then hold its request, and the chunk buffer it fills, for ever.
	BodyMinRate int64
	// BodyRateWindow is the span BodyMinRate is averaged over, counting
	// only the time the router waits for the body: each such span must
	// bring BodyMinRate × BodyRateWindow bytes. The first is the grace any
	// body has (default 30s).
	BodyRateWindow time.Duration
	// SpaceWait bounds how long a write waits for room when every group
	// is full (or has refused the chunk for lack of space) before it
	// fails with 507: meanwhile the meta group's primary may form a new
	// group from standbys, and the router re-reads the gossip view every
	// 200ms to find it (default 30s).
	SpaceWait time.Duration
	// UploadMemory bounds the memory the chunks of uploads hold at once,
	// over all uploads (default 256 MiB). Each chunk in flight costs its
	// buffer, its sealed copy (with a data key) and the frame it is sent
	// in, about three chunk sizes; an upload waits for room before it
	// reads its next chunk from the client, so many uploads at once slow
	// down rather than grow the router without bound. It must hold at
	// least one chunk.
	UploadMemory int64
	// ReadMemory bounds the memory the chunks that reads fetch hold at
	// once, over all reads (default 64 MiB). Each chunk costs the frame
	// it arrives in and its decoded copy, plus its opened copy with a
	// data key (readCost); a read fetches up to four chunks ahead while
	// there is room, and waits for room only when it holds none. It must
	// hold at least one chunk.
	ReadMemory int64
	// CacheSize bounds the hot-chunk cache, shared by every read: chunks
	// read more than once, kept after their hash was checked (default
	// 256 MiB; 0 disables it).
	CacheSize int64
	// Seed seeds the router's random choices (placement, the order in
	// which a chunk's holders are tried); 0 picks a seed from the clock.
	// Tests set it to get the same choices on every run.
	Seed uint64
	// Insecure serves every request without a token, as the cluster's
	// root (--insecure). Otherwise every request but /healthz, /readyz and the console's files (/ui/) needs a
	// user's bearer token, and acts as that user.
	Insecure bool
	// AuthTTL is how long a user found for a token is trusted before the
	// meta group is asked again: a removed user or a replaced token stops
	// working within it on every router (default 1s).
	AuthTTL time.Duration
	// AdminToken, when set, makes the first admin user ("admin", uid 0)
	// with this token if the cluster has no user yet (see Bootstrap).
	AdminToken string
	// Sealer seals content at rest with the cluster's data key (see
	// seal.go); nil stores it in clear (--insecure).
	Sealer *secure.Sealer
	// Keyring runs an operation on the cluster's gossip keyring (the
	// /v1/keyring API); nil answers that there is none.
	Keyring func(op gossip.KeyringOp, key string) (gossip.KeyringResult, error)
	// CORSOrigins are the web origins (https://app.example.com, or "*"
	// for any) whose pages may call the API from a browser
	// (--cors-origin); none by default. They still need a token.
	CORSOrigins []string
	Logger      *slog.Logger
}

// MaxChunkSize bounds ChunkSize so a chunk always fits in one frame.
const MaxChunkSize = 64 << 20

// MaxInline bounds InlineMax: inline content travels in log entries,
// which are batched by the megabyte.
const MaxInline = 256 << 10

// DefaultConfig returns a Config with the tunables set.
func DefaultConfig() Config {
	return Config{
		ChunkSize:      4 << 20,
		InlineMax:      16 << 10,
		MaxFileSize:    1 << 40,
		RequestTimeout: 10 * time.Second,
		RPCTimeout:     5 * time.Second,
		BodyTimeout:    2 * time.Minute,
		BodyMinRate:    4 << 10,
		BodyRateWindow: 30 * time.Second,
		SpaceWait:      30 * time.Second,
		UploadMemory:   128 << 20,
		ReadMemory:     64 << 20,
		CacheSize:      256 << 20,
		AuthTTL:        time.Second,
		MetaGroup:      meta.DefaultMetaGroup,
		Logger:         slog.Default(),
	}
}

// Validate reports the first invalid field, wrapped in ErrBadConfig.
func (c Config) Validate() error {
	switch {
	case c.Members == nil:
		return fmt.Errorf("%w: Members is nil", ErrBadConfig)
	case c.Transport == nil:
		return fmt.Errorf("%w: Transport is nil", ErrBadConfig)
	case c.Logger == nil:
		return fmt.Errorf("%w: Logger is nil", ErrBadConfig)
	case c.ChunkSize <= 0 || c.ChunkSize > MaxChunkSize:
		return fmt.Errorf("%w: ChunkSize is %d: it must be between 1 and %d bytes", ErrBadConfig, c.ChunkSize, MaxChunkSize)
	case c.InlineMax < 0 || c.InlineMax > MaxInline:
		return fmt.Errorf("%w: InlineMax is %d: it must be between 0 and %d bytes", ErrBadConfig, c.InlineMax, MaxInline)
	case c.MaxFileSize < 0:
		return fmt.Errorf("%w: MaxFileSize is %d: it must not be negative", ErrBadConfig, c.MaxFileSize)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("%w: RequestTimeout is %v: it must be positive", ErrBadConfig, c.RequestTimeout)
	case c.RPCTimeout <= 0:
		return fmt.Errorf("%w: RPCTimeout is %v: it must be positive", ErrBadConfig, c.RPCTimeout)
	case c.BodyTimeout <= 0:
		return fmt.Errorf("%w: BodyTimeout is %v: it must be positive", ErrBadConfig, c.BodyTimeout)
	case c.BodyMinRate < 0:
		return fmt.Errorf("%w: BodyMinRate is %d: it must not be negative (0: no floor)", ErrBadConfig, c.BodyMinRate)
	case c.BodyMinRate > 0 && c.BodyRateWindow <= 0:
		return fmt.Errorf("%w: BodyRateWindow is %v: it must be positive with a BodyMinRate", ErrBadConfig, c.BodyRateWindow)
	case c.SpaceWait < 0:
		return fmt.Errorf("%w: SpaceWait is %v: it must not be negative", ErrBadConfig, c.SpaceWait)
	case c.UploadMemory < c.chunkCost():
		return fmt.Errorf("%w: UploadMemory is %d bytes: it must hold at least one chunk in flight, %d bytes with a chunk size of %d",
			ErrBadConfig, c.UploadMemory, c.chunkCost(), c.ChunkSize)
	case c.ReadMemory < c.readCost():
		return fmt.Errorf("%w: ReadMemory is %d bytes: it must hold at least one chunk, %d bytes with a chunk size of %d",
			ErrBadConfig, c.ReadMemory, c.readCost(), c.ChunkSize)
	case c.AuthTTL < 0:
		return fmt.Errorf("%w: AuthTTL is %v: it must not be negative", ErrBadConfig, c.AuthTTL)
	}
	if c.Insecure && slices.Contains(c.CORSOrigins, "*") {
		return fmt.Errorf("%w: CORS origin * with Insecure: any web page could read and write the cluster through its visitors' browsers; name the origins", ErrBadConfig)
	}
	for _, o := range c.CORSOrigins {
		if u, err := url.Parse(o); o != "*" && (err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil) {
			return fmt.Errorf("%w: CORS origin %q: give a page's origin, scheme and host (https://app.example.com:8443), or * for any", ErrBadConfig, o)
		}
	}
	return nil
}

// Server is the HTTP API. It keeps no durable state: any number of routers
// can serve the same cluster.
type Server struct {
	cfg     Config
	bufs    chunkPool
	be      *backend
	reads   readBatcher    // the quick reads to the meta group's primary
	props   proposeBatcher // the ops to commit in the meta group
	mux     *http.ServeMux
	metrics *metrics // nil without Config.Metrics

	rndMu sync.Mutex // rand.Rand is not safe for concurrent use
	rnd   *rand.Rand

	// repairs tracks the read-repair goroutines; repairSlots bounds how
	// many run at once (a repair beyond that is skipped: the group's own
	// repair finds the bad copy later).
	repairs     sync.WaitGroup
	repairSlots chan struct{}

	sealed sealedPool // buffers of sealed chunks

	// avoid holds the groups that failed to store a chunk lately; chunks
	// go elsewhere while another group can take them.
	avoid groupAvoidance

	// uploadSlots holds the shares of the upload memory not in use;
	// sends bounds the chunk writes in flight to each group (budget.go).
	uploadSlots chan *chunkSlot
	readSlots   chan struct{}
	sends       sendSlots

	// auth authenticates requests; nil with Config.Insecure.
	auth     *authenticator
	refusals secure.Throttle // one log line per refused address, reason and hour

	// hot is the hot-chunk cache (chunkcache.go); nil when disabled.
	hot *chunkCache
	// edits is the content last committed for files changed by number.
	edits lastEdits

	// lockWaits holds the acquires waiting here for a lock (locks.go).
	lockWaits lockWaits

	// events records the changes of the gossip view (events.go) until
	// stop closes; watching waits for it.
	events   *events
	stop     chan struct{}
	stopOnce sync.Once
	watching sync.WaitGroup
}

// New returns a router for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s := &Server{cfg: cfg, be: &backend{
		members: cfg.Members, nextChange: cfg.NextChange, tr: cfg.Transport, meta: cfg.MetaGroup,
		timeout: cfg.RequestTimeout, rpc: cfg.RPCTimeout,
	}, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), repairSlots: make(chan struct{}, maxRepairs),
		sealed: sealedPool{size: cfg.ChunkSize + secure.ChunkOverhead}, uploadSlots: newUploadSlots(cfg),
		readSlots: make(chan struct{}, cfg.ReadMemory/cfg.readCost())}
	if !cfg.Insecure {
		ttl := cfg.AuthTTL
		if ttl == 0 {
			ttl = time.Second
		}
		s.auth = newAuthenticator(s.userByToken, ttl)
	}
	if cfg.Metrics != nil {
		s.metrics = newMetrics()
		for i, c := range s.metrics.all() {
			if err := cfg.Metrics.Register(c); err != nil {
				for _, done := range s.metrics.all()[:i] {
					cfg.Metrics.Unregister(done)
				}
				return nil, fmt.Errorf("register the router's metrics: %w", err)
			}
		}
		s.be.metrics = s.metrics
	}
	s.reads = readBatcher{flights: batchFlights, max: wire.MaxReadBatch, timeout: cfg.RequestTimeout,
		one: s.readAlone, many: s.readBatch, sent: s.metrics.readCall}
	s.props = proposeBatcher{flights: batchFlights, max: wire.MaxProposeBatch, timeout: cfg.RequestTimeout,
		one: s.proposeAlone, many: s.proposeBatch, sent: s.metrics.opCall,
		// Every op batched carries its request ID: one the primary lost
		// in a failover is sent again, as a lone call would be.
		again: func(err error) bool { return tryAgain(err, true) }}
	s.lockWaits.s = s
	s.hot = newChunkCache(cfg.CacheSize)
	s.mux = http.NewServeMux()
	s.routeUsers()
	s.mux.HandleFunc("GET /v1/cluster", s.serveCluster)
	s.mux.HandleFunc("GET /v1/statfs", s.serveStatfs)
	s.mux.HandleFunc("GET /v1/events", s.serveEvents)
	s.mux.HandleFunc("GET /v1/stats", s.serveStats)
	s.mux.HandleFunc("GET /v1/search", s.search)
	s.mux.HandleFunc("GET /v1/glob", s.glob)
	s.mux.Handle("/ui/", consoleHandler())
	s.mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusFound))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if browsesRoot(r) {
			http.Redirect(w, r, "/ui/", http.StatusFound)
			return
		}
		if allow := s.allowed(r); allow != "" {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, api.ErrorBody{Code: api.CodeMethodNotAllowed,
				Message: fmt.Sprintf("method %s is not supported on %s (use %s)", r.Method, r.URL.Path, allow)})
			return
		}
		writeError(w, fmt.Errorf("%w: no API at %s (the file API is under /v1/fs/)", meta.ErrNotFound, r.URL.Path))
	})
	s.events, s.stop = newEvents(cfg.Logger), make(chan struct{})
	s.watching.Add(1)
	go func() {
		defer s.watching.Done()
		s.events.watch(cfg.Members, s.stop)
	}()
	return s, nil
}

// allowed lists the methods the API serves at r's path, "" for none: a
// request that only the catch-all matched is then told which to use
// rather than that nothing is there.
func (s *Server) allowed(r *http.Request) string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}

// Close stops recording events and waits for the background read repairs
// to end; each is bounded by RPCTimeout. The server must not serve
// requests any more. It is idempotent.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.watching.Wait()
	if s.metrics != nil {
		for _, c := range s.metrics.all() {
			s.cfg.Metrics.Unregister(c)
		}
	}
	s.repairs.Wait()
	return nil
}

// random runs f with the server's random source held.
func (s *Server) random(f func(r *rand.Rand)) {
	s.rndMu.Lock()
	defer s.rndMu.Unlock()
	f(s.rnd)
}

// ServeHTTP serves the API. File paths bypass the mux, which would clean
// "a/../b" and redirect, when such a path must be refused with 400. Other
// paths that are not canonical are refused too: the mux would answer "*"
// with a bare 400, and redirect "/v1/../v1/fs/x" with a 307, which
// replays a PUT on /v1/fs/x after all.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.metrics != nil {
		var done func()
		w, done = s.metrics.begin(w, r)
		defer done()
	}
	if r.ContentLength != 0 {
		defer s.guardBody(w, r)()
	}
	if s.cors(w, r) {
		return // a preflight, answered
	}
	if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !isConsole(r) {
		var err error
		if r, err = s.authenticate(r); err != nil {
			writeError(w, err)
			return
		}
		if s.auth != nil {
			sr := &statusRecorder{ResponseWriter: w}
			defer s.logDenied(sr, r)
			w = sr
		}
	}
	switch p := r.URL.Path; {
	case p == "/v1/fs" || strings.HasPrefix(p, "/v1/fs/"):
		s.serveFS(w, r)
	case p == "/v1/locks" || strings.HasPrefix(p, "/v1/locks/"):
		s.serveLocks(w, r)
	case !strings.HasPrefix(p, "/") || p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/"):
		writeError(w, fmt.Errorf("%w %s: not a canonical absolute path (no \".\", \"..\" or empty components); the file API is under /v1/fs/",
			ErrBadPath, quote(r.RequestURI)))
	default:
		s.mux.ServeHTTP(w, r)
	}
}

// target is what a file-system request names: a path from the root or,
// with ?at=INO, a path from that inode ("/" then names the inode itself).
// A mount names everything by inode number, so that a file moved by
// another client meanwhile is still the one its change goes to.
type target struct {
	at   uint64
	path string
}

func (t target) String() string {
	if t.at == 0 {
		return t.path
	}
	if t.path == "/" {
		return fmt.Sprintf("inode %d", t.at)
	}
	return fmt.Sprintf("%s in inode %d", t.path, t.at)
}

// parseTarget reads a path and its anchor (the query parameter named at).
func parseTarget(p, at string) (target, error) {
	clean, err := CleanPath(p)
	if err != nil {
		return target{}, err
	}
	t := target{path: clean}
	if at != "" {
		if t.at, err = strconv.ParseUint(at, 10, 64); err != nil || t.at == 0 {
			return target{}, fmt.Errorf("%w: at=%q is not an inode number (a positive integer)", ErrBadRequest, at)
		}
	}
	return t, nil
}

func (s *Server) serveFS(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	t, err := parseTarget(strings.TrimPrefix(r.URL.Path, "/v1/fs"), q.Get("at"))
	if err != nil {
		writeError(w, err)
		return
	}
	if r, err = withRequestID(r); err == nil {
		r, err = withFence(r)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	op := q.Get("op")
	if _, err := flag(q.Get("dirs")); err != nil {
		writeError(w, fmt.Errorf("dirs=: %w", err))
		return
	}
	if r.Method == http.MethodPost && op != "copy" && op != "rename" && op != "link" &&
		(r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != "") {
		// Ignored, a condition would let the change through as if it held.
		writeError(w, fmt.Errorf("%w: If-Match and If-None-Match are not supported with op=%s (they are on PUT, PATCH, DELETE, and POST copy, rename, link)", ErrBadRequest, op))
		return
	}
	switch {
	case r.Method == http.MethodPut && op == "":
		s.putFile(w, r, t)
	case r.Method == http.MethodPatch && op == "" && q.Has("ranges"):
		s.writeRanges(w, r, t, q)
	case r.Method == http.MethodPatch && op == "":
		s.writeAt(w, r, t, q.Get("offset"))
	case r.Method == http.MethodGet && op == "":
		s.get(w, r, t)
	case r.Method == http.MethodGet && op == "stat":
		s.stat(w, r, t)
	case r.Method == http.MethodGet && op == "chunks":
		s.chunks(w, r, t)
	case r.Method == http.MethodHead && op == "":
		s.head(w, r, t)
	case r.Method == http.MethodDelete && op == "":
		s.delete(w, r, t, q)
	case r.Method == http.MethodPost && (op == "copy" || op == "rename" || op == "link"):
		s.move(w, r, t, op, q)
	case r.Method == http.MethodPost && op == "mkdir":
		s.mkdir(w, r, t, q)
	case r.Method == http.MethodPost && (op == "create" || op == "symlink" || op == "mknod"):
		s.create(w, r, t, op, q)
	case r.Method == http.MethodPost && op == "setattr":
		s.setattr(w, r, t, q)
	case r.Method == http.MethodPost && op == "release":
		s.release(w, r, t)
	case r.Method == http.MethodPost && op == "keep":
		s.keepOrphan(w, r, t, q)
	case r.Method == http.MethodPost && op == "match":
		s.match(w, r, t)
	case !knownMethod(r.Method):
		w.Header().Set("Allow", "GET, HEAD, PUT, PATCH, DELETE, POST")
		writeJSON(w, http.StatusMethodNotAllowed, api.ErrorBody{Code: api.CodeMethodNotAllowed, Message: fmt.Sprintf("method %q is not supported on /v1/fs", r.Method)})
	default:
		writeError(w, fmt.Errorf("%w: %s with op=%q is not an operation (ops: GET stat, chunks; POST copy, rename, link, mkdir, create, symlink, mknod, setattr, release, keep, match)", ErrBadRequest, r.Method, op))
	}
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodPost:
		return true
	}
	return false
}

// flag parses a boolean query parameter: absent, 0/false, or 1/true.
func flag(v string) (bool, error) {
	switch v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, fmt.Errorf("%w: flag value %q: use 1 or 0", ErrBadRequest, v)
}

// read makes a namespace read of t for the request's caller, who needs
// the access want (0, or meta.MayRead and the like) to the inode read.
func (s *Server) read(ctx context.Context, kind wire.ReadKind, t target, want uint32) (*wire.ReadResp, error) {
	rr, err := s.metaRead(ctx, &wire.Read{Kind: kind, Dir: t.at, Path: t.path, Cred: credOf(ctx), Want: want})
	if err != nil && rr != nil {
		return nil, fmt.Errorf("%s: %w", t, err) // the namespace's answer: say what it is about
	}
	return rr, err
}

// delete removes a name. only=file refuses a directory (unlink(2)),
// only=dir anything else (rmdir(2), which never recurses); orphan=1 keeps
// a file whose last name goes until op=release (the mount has it open).
func (s *Server) delete(w http.ResponseWriter, r *http.Request, t target, q url.Values) {
	op := meta.Op{Kind: meta.OpDelete, Dir: t.at, Path: t.path}
	err := flags(q, map[string]*bool{"recursive": &op.Recursive, "orphan": &op.Orphan})
	switch only := q.Get("only"); {
	case err != nil:
	case only == "file":
		op.NotDir = true
	case only == "dir":
		op.OnlyDir = true
	case only != "":
		err = fmt.Errorf("%w: only=%q: use file or dir", ErrBadRequest, only)
	}
	if err == nil {
		err = conditional(r, &op)
	}
	var res meta.Result
	if err == nil {
		op.WantDirs = wantDirs(r)
		res, err = s.propose(r.Context(), op)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	answerChange(w, op.WantDirs, http.StatusNoContent, nil, res)
}

// wantDirs reports whether r asks for the directories its change makes
// new (?dirs=1, checked in serveFS).
func wantDirs(r *http.Request) bool {
	dirs, _ := flag(r.URL.Query().Get("dirs"))
	return dirs
}

// answerChange answers a change to the namespace with status and st (nil:
// no body), and, when the change asked for them (?dirs=1), the
// directories whose entries it changed, as they are after it
// (api.Changed; a 204 becomes a 200 to carry them). A mount asks for
// them: the kernel forgets a directory's attributes after each change in
// it and would ask for them again.
func answerChange(w http.ResponseWriter, dirs bool, status int, st *api.Stat, res meta.Result) {
	if dirs {
		c := api.Changed{Stat: st, Dirs: make([]api.Attr, len(res.Dirs))}
		for i, d := range res.Dirs {
			c.Dirs[i] = attrOf(d)
		}
		if status == http.StatusNoContent {
			status = http.StatusOK
		}
		writeJSON(w, status, c)
		return
	}
	if st == nil {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, *st)
}

// conditional puts the request's If-Match and If-None-Match: * in op.
func conditional(r *http.Request, op *meta.Op) error {
	c, err := writeConditions(r)
	if err != nil {
		return err
	}
	return c.apply(op)
}

// flags parses the boolean query parameters named in dst.
func flags(q url.Values, dst map[string]*bool) error {
	for name, p := range dst {
		v, err := flag(q.Get(name))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		*p = v
	}
	return nil
}

// move is copy, rename and link: the source is the target, the
// destination the path to (from the inode to_at, if given).
func (s *Server) move(w http.ResponseWriter, r *http.Request, t target, op string, q url.Values) {
	if q.Get("to") == "" {
		writeError(w, fmt.Errorf("%w: op=%s needs a destination: add &to=/path", ErrBadRequest, op))
		return
	}
	dst, err := parseTarget(q.Get("to"), q.Get("to_at"))
	if err != nil {
		writeError(w, err)
		return
	}
	o := meta.Op{Kind: meta.OpCopy, Dir: t.at, Path: t.path, ToDir: dst.at, To: dst.path}
	status := http.StatusCreated
	switch op {
	case "rename":
		o.Kind, status = meta.OpRename, http.StatusNoContent
		err = flags(q, map[string]*bool{"noreplace": &o.NoReplace, "orphan": &o.Orphan})
	case "link":
		o.Kind = meta.OpLink
	}
	if err == nil {
		err = conditional(r, &o)
	}
	var res meta.Result
	if err == nil {
		// Not a copy's: a tree copied is a directory per directory.
		o.WantDirs = wantDirs(r) && o.Kind != meta.OpCopy
		res, err = s.propose(r.Context(), o)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	var st *api.Stat
	if res.Inode != nil {
		v := statOf(dst.path, *res.Inode)
		st = &v
	}
	answerChange(w, o.WantDirs, status, st, res)
}

func (s *Server) mkdir(w http.ResponseWriter, r *http.Request, t target, q url.Values) {
	op := meta.Op{Kind: meta.OpMkdir, Dir: t.at, Path: t.path}
	err := flags(q, map[string]*bool{"parents": &op.Parents})
	if err == nil {
		err = owner(q, &op)
	}
	s.make(w, r, t, op, err)
}

// attrOf is an inode's attributes, as stat and listings give them.
func attrOf(in meta.Inode) api.Attr {
	a := api.Attr{
		Ino: in.Ino, Type: in.Type.String(), Size: in.Size, Mode: in.Mode, ModeOctal: fmt.Sprintf("%04o", in.Mode), Nlink: in.Nlink,
		Uid: in.Uid, Gid: in.Gid, ATime: utc(in.ATime), MTime: utc(in.MTime), CTime: utc(in.CTime),
		Gen: in.Gen, Target: in.Target, Rdev: in.Rdev,
	}
	if u := in.Usage; u != nil {
		a.Usage = &api.Usage{Bytes: u.Bytes, Files: u.Files, Dirs: u.Dirs}
	}
	return a
}

// statOf is the answer of op=stat, and of the ops that make or change an
// inode.
func statOf(p string, in meta.Inode) api.Stat {
	return api.Stat{Path: p, Attr: attrOf(in), Hash: in.Hash, ContentType: in.ContentType}
}

// utc is the time of ns nanoseconds since the epoch, in UTC so that it
// encodes in RFC 3339 with a "Z", as the API's times are.
func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func (s *Server) stat(w http.ResponseWriter, r *http.Request, t target) {
	rr, err := s.read(r.Context(), wire.ReadLookup, t, 0)
	if err != nil {
		writeError(w, err)
		return
	}
	writeStat(w, http.StatusOK, t.path, &rr.Inode)
}

// chunks lists where a file's content is stored (admins only): what an
// operator needs to find a chunk file on a node's disk.
func (s *Server) chunks(w http.ResponseWriter, r *http.Request, t target) {
	if err := admin(r); err != nil {
		writeError(w, err)
		return
	}
	rr, err := s.read(r.Context(), wire.ReadLookup, t, 0)
	if err != nil {
		writeError(w, err)
		return
	}
	out := api.ChunkList{Path: t.path, Inline: rr.Inode.Type == meta.TypeFile && len(rr.Inode.Chunks) == 0, Chunks: []api.ChunkInfo{}}
	for _, c := range rr.Inode.Chunks {
		if c.Hole() {
			out.Chunks = append(out.Chunks, api.ChunkInfo{Size: c.Size, Hole: true})
			continue
		}
		cj := api.ChunkInfo{Hash: c.Hash.String(), Size: c.Size, Group: c.Group}
		if cj.Group == "" {
			cj.Group = s.be.metaGroup()
		}
		if c.Key != 0 {
			cj.Key = fmt.Sprintf("%08x", c.Key)
		}
		out.Chunks = append(out.Chunks, cj)
	}
	writeJSON(w, http.StatusOK, out)
}
