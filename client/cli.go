package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

// Commands lists the client subcommands with a one-line summary each, for
// the top-level help.
var Commands = []struct{ Name, Summary string }{
	{"put", "write a local file (or stdin) to a remote path"},
	{"get", "download a remote file to a local file (or stdout)"},
	{"sync", "make a tree a copy of another, local and cluster either way, moving only what differs"},
	{"cat", "print a remote file to stdout"},
	{"ls", "list a remote directory"},
	{"rm", "delete remote files or directories"},
	{"cp", "copy a remote file or directory (metadata only)"},
	{"mv", "rename or move a remote file or directory"},
	{"stat", "show the metadata of a remote file or directory"},
	{"find", "search a remote tree by name, type, size, time or owner"},
	{"tree", "print a remote tree, indented"},
	{"exists", "exit 0 if a remote path exists, 1 if not"},
	{"mkdir", "create remote directories"},
	{"lock", "run a command while holding a cluster-wide lock, like flock(1)"},
	{"status", "show the cluster's groups and nodes"},
	{"du", "show how many bytes a remote directory holds, and its directories"},
	{"df", "show the cluster's capacity, used and free bytes"},
	{"whoami", "show the user your token belongs to"},
	{"user", "manage users, tokens and S3 keys: user add|list|remove|token rotate|key"},
	{"keyring", "manage the gossip keys of a running cluster: keyring list|install|use|remove"},
	{"alias", "name clusters to reach with --cluster NAME: alias set|list|remove"},
}

// Exit codes of Run.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed; for exists, the path is absent
	exitUsage = 2 // bad arguments or flags; for exists, any failure
)

// envRouter names the environment variable holding the default --router.
const envRouter = "SHOAL_ROUTER"

// command describes one subcommand for its parser and its help.
type command struct {
	synopsis string   // arguments after the flags, e.g. "LOCAL|- REMOTE"
	about    string   // what it does, for --help
	examples []string // command lines shown in --help
	minArgs  int
	maxArgs  int                            // -1: no limit
	flags    func(*pflag.FlagSet, *session) // the command's own flags; may be nil
	run      func(*session, []string) error
	failCode int // exit code on failure
	// json: the command takes --json, printing its answer as one JSON
	// document (JSON lines for a stream of results) instead of text.
	json bool
	// offline: the command talks to no router (alias).
	offline bool
	// shortH: the command's own flags take -h (du's human-readable
	// sizes, as du has it), so help is --help only.
	shortH bool
}

// session is the state of one run of a subcommand.
type session struct {
	name    string
	ctx     context.Context
	c       *Client
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	timeout time.Duration
	mu      sync.Mutex // guards failed and stderr for fail
	failed  bool

	recursive                   bool        // rm -r
	parents                     bool        // mkdir -p
	owner                       string      // ls --owner
	bytes                       bool        // df --bytes
	parallel                    int         // put -r, get -r: files at once
	put                         PutOptions  // put: --no-clobber, --if-match, --content-type
	json                        bool        // --json
	quiet                       bool        // put, get, sync: no progress line
	sync                        syncOptions // sync's flags
	find                        SearchQuery // find's flags
	findMin, findMax, findNewer string
	depth                       int         // tree -L, du -d
	summarize, human            bool        // du -s, du -h
	given                       Credentials // the credential flags as given
	getenv                      func(string) string
	user                        userFlags
	lock                        lockFlags // lock's flags
}

// userFlags are the flags of 'shoal user add'.
type userFlags struct {
	uid, gid     string
	groups       []uint
	admin, mount bool
}

// Run executes client subcommand name with args (without the subcommand
// name) and returns the process exit code. getenv supplies the default of
// --router (SHOAL_ROUTER), so tests and callers control the environment.
func Run(name string, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd, ok := lookupCommand(name)
	if !ok {
		fmt.Fprintf(stderr, "shoal: unknown command %q; run 'shoal --help' for the list\n", name)
		return exitUsage
	}
	s := &session{name: name, stdin: stdin, stdout: stdout, stderr: stderr}
	var given Credentials
	fs, help := s.flagSet(cmd, &given)
	if err := fs.Parse(args); err != nil {
		return s.usageError("%v", err)
	}
	if *help {
		printHelp(stdout, name, cmd, fs)
		return exitOK
	}
	rest := fs.Args()
	if len(rest) < cmd.minArgs || (cmd.maxArgs >= 0 && len(rest) > cmd.maxArgs) {
		return s.usageError("want %s, got %d", argsWanted(cmd), len(rest))
	}
	s.given, s.getenv = given, getenv
	if cmd.offline {
		return s.finish(cmd, cmd.run(s, rest))
	}
	creds, _, err := ResolveCredentials(given, getenv)
	if err != nil {
		return s.usageError("%v", err)
	}
	cfg, err := creds.Config()
	if err != nil {
		return s.usageError("--ca: %v", err)
	}
	cfg.Timeout = s.timeout
	c, err := New(cfg)
	if err != nil {
		return s.usageError("--router: %v", err)
	}
	// Ctrl-C cancels the request instead of killing the process, so that
	// get removes its partial download.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s.ctx = ctx
	if schemeless(creds.Router) {
		c = plainIfAsked(ctx, c, cfg)
	}
	s.c, s.timeout = c, c.timeout
	if f := getenv(envFence); f != "" {
		// Run by 'shoal lock': every change carries its lease's token.
		token, err := strconv.ParseUint(f, 10, 64)
		if err != nil || token == 0 {
			return s.usageError("$%s=%q is not a fencing token (a positive integer)", envFence, f)
		}
		s.ctx = WithFence(s.ctx, token)
	}
	return s.finish(cmd, cmd.run(s, rest))
}

// finish reports how a command ended and returns its exit code.
func (s *session) finish(cmd command, err error) int {
	if err != nil {
		var st exitStatus
		if errors.As(err, &st) {
			return int(st)
		}
		s.fail(err)
	}
	if s.failed {
		return cmd.failCode
	}
	return exitOK
}

// flagSet defines the flags of cmd: those every client command takes,
// with the credentials going to given, and the command's own.
func (s *session) flagSet(cmd command, given *Credentials) (fs *pflag.FlagSet, help *bool) {
	fs = pflag.NewFlagSet("shoal "+s.name, pflag.ContinueOnError)
	// pflag's own messages would add usage dumps; errors are reported here
	// as one line instead.
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&given.Router, "router", "", "router base URL (default $"+envRouter+", the credentials file, or "+DefaultConfig().Router+")")
	fs.StringVar(&given.CA, "ca", "", "the cluster's CA certificate, to verify the router (default $SHOAL_CA or the credentials file)")
	fs.StringVar(&given.Token, "token", "", "your token (default $SHOAL_TOKEN or the credentials file; see 'shoal user')")
	fs.StringVar(&given.Cluster, "cluster", "", "a cluster named in the credentials file (see 'shoal alias'; default $SHOAL_CLUSTER)")
	fs.DurationVar(&s.timeout, "timeout", DefaultConfig().Timeout,
		"how long to wait for the router to answer (a transfer itself may take longer)")
	if cmd.shortH {
		help = fs.Bool("help", false, "show this help")
	} else {
		help = fs.BoolP("help", "h", false, "show this help")
	}
	if cmd.json {
		fs.BoolVar(&s.json, "json", false, "print the answer as JSON (the same fields as the HTTP API's) instead of text")
	}
	if cmd.flags != nil {
		cmd.flags(fs, s)
	}
	return fs, help
}

// exitStatus is an outcome that is not an error to report but still sets
// the exit code: exists on an absent path.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// pathError attaches the remote path an error is about, for the error line.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

// onPath returns err about path, or nil.
func onPath(path string, err error) error {
	if err == nil {
		return nil
	}
	return &pathError{path: path, err: err}
}

// fail reports err as one line on stderr and marks the run failed. The
// workers of put -r and get -r call it at once.
func (s *session) fail(err error) {
	line := fmt.Sprintf("shoal %s: %s\n", s.name, s.describe(err))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = true
	io.WriteString(s.stderr, line)
}

// printJSON writes v as one JSON document, indented for people reading it
// (jq and the like read it as well).
func (s *session) printJSON(v any) error {
	enc := json.NewEncoder(s.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printJSONLine writes v as one line of a JSON-lines stream.
func (s *session) printJSONLine(v any) error {
	enc := json.NewEncoder(s.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// usageError reports a mistake in the command line and returns the usage
// exit code.
func (s *session) usageError(format string, args ...any) int {
	fmt.Fprintf(s.stderr, "shoal %s: %s; see 'shoal %s --help'\n", s.name, fmt.Sprintf(format, args...), s.name)
	return exitUsage
}

// describe says what failed and, where there is something to do about it,
// what to do.
func (s *session) describe(err error) string {
	prefix := ""
	var pe *pathError
	if errors.As(err, &pe) {
		prefix = pe.path + ": "
	}
	var apiErr *Error
	switch {
	case errors.Is(err, ErrUnreachable):
		var op *net.OpError
		if errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &op) {
			return fmt.Sprintf("cannot reach router at %s: is a cluster running? start one with 'shoal dev'", s.c.Router())
		}
		return fmt.Sprintf("cannot reach router at %s: %v; check --router or $%s", s.c.Router(), op.Err, envRouter)
	case errors.Is(err, ErrTimeout):
		return fmt.Sprintf("%srouter at %s did not answer within %v; retry, or raise --timeout",
			prefix, s.c.Router(), s.timeout)
	case errors.Is(err, context.Canceled):
		return prefix + "interrupted"
	case errors.As(err, &apiErr):
		if pe != nil && strings.Contains(apiErr.Message, pe.path) {
			prefix = "" // the router already named the path
		}
		return prefix + apiErr.Error() + s.hint(apiErr)
	case errors.As(err, new(*tls.CertificateVerificationError)):
		return fmt.Sprintf("%v; give the cluster's CA certificate with --ca or $SHOAL_CA", err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("%v; this router serves plain HTTP (it runs with --insecure): use an http:// --router", err)
	case errors.Is(err, errNoHTTPAnswer):
		return fmt.Sprintf("%v; %s does not speak HTTP: is it a storage node's peer port (--listen)? "+
			"Give a router's address (its --http; 'shoal status' lists the routers)", err, s.c.Router())
	}
	return err.Error()
}

// hint suggests what to do about an error answer, when there is something.
func (s *session) hint(e *Error) string {
	switch {
	case errors.Is(e, ErrNotEmpty) && s.name == "rm":
		return "; add -r to delete it and everything in it"
	case errors.Is(e, ErrUnauthorized):
		return "; give your token with --token or $SHOAL_TOKEN (an admin makes one with 'shoal user add')"
	case errors.Is(e, ErrUnavailable):
		return "; the cluster may be choosing a new primary: retry shortly, or see 'shoal status'"
	case errors.Is(e, ErrNoSpace):
		return "; add nodes to the cluster or delete files"
	case errors.Is(e, ErrPrecondition) && s.put.IfAbsent:
		return "; a file is already there, and --no-clobber keeps it"
	case errors.Is(e, ErrPrecondition) && s.put.IfMatch != "":
		return "; the file is no longer the version --if-match names (or is gone): read it again"
	case e.Code == "" && e.Status == http.StatusNotFound:
		return fmt.Sprintf("; %s answered, but not as a Shoal router does: is it a metrics address (--metrics)? "+
			"Give a router's API address (its --http)", s.c.Router())
	}
	return ""
}

// printHelp writes the --help text of a subcommand.
func printHelp(w io.Writer, name string, cmd command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nExamples:\n", strings.TrimSpace("shoal "+name+" [flags] "+cmd.synopsis), cmd.about)
	for _, ex := range cmd.examples {
		fmt.Fprintf(w, "  %s\n", ex)
	}
	fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
}

// argsWanted describes the arguments a command takes, for a usage error.
func argsWanted(cmd command) string {
	switch {
	case cmd.maxArgs < 0:
		return fmt.Sprintf("at least %d argument%s (%s)", cmd.minArgs, plural(cmd.minArgs), cmd.synopsis)
	case cmd.maxArgs == 0:
		return "no arguments"
	case cmd.minArgs == 0:
		return fmt.Sprintf("at most %d argument%s (%s)", cmd.maxArgs, plural(cmd.maxArgs), cmd.synopsis)
	case cmd.minArgs == cmd.maxArgs:
		return fmt.Sprintf("%d argument%s (%s)", cmd.minArgs, plural(cmd.minArgs), cmd.synopsis)
	}
	return fmt.Sprintf("%d to %d arguments (%s)", cmd.minArgs, cmd.maxArgs, cmd.synopsis)
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// plainIfAsked returns a client for http:// when the routers of c were
// given without a scheme (and so were taken as https://) and answer
// plain HTTP: a cluster run with --insecure. It asks each router's
// /healthz, which needs no token; any other outcome keeps that router on
// https, whose requests then report what is wrong. A token never goes
// over plain HTTP unasked to another machine, nor when a CA was given
// (TLS was meant): only an http:// URL written out sends it so.
func plainIfAsked(ctx context.Context, c *Client, cfg Config) *Client {
	if cfg.TLS != nil && cfg.TLS.RootCAs != nil {
		return c
	}
	routers := slices.Clone(c.bases)
	changed := false
	for i, base := range routers {
		if answersPlain(ctx, c, base, cfg.Token != "") {
			routers[i], changed = "http://"+strings.TrimPrefix(base, "https://"), true
		}
	}
	if !changed {
		return c
	}
	cfg.Router = strings.Join(routers, ",")
	plain, err := New(cfg)
	if err != nil {
		return c
	}
	return plain
}

// answersPlain says the router at base (an https:// URL) answers plain
// HTTP and may be asked over it: it is on this machine, or no token would
// cross the network.
func answersPlain(ctx context.Context, c *Client, base string, token bool) bool {
	if u, err := url.Parse(base); err != nil || token && !isLoopback(u.Hostname()) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := c.http.Do(req)
	if err == nil {
		resp.Body.Close()
		return false
	}
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}
