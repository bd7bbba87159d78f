package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// envFence names the environment variable 'shoal lock' gives its command:
// the lease's fencing token, which every change a client command makes
// then carries.
const envFence = "SHOAL_FENCE"

// lockFlags are the flags of 'shoal lock'.
type lockFlags struct {
	shared, nonblock, status bool
	ttl, wait                time.Duration
	owner                    string
}

// lockCommand returns 'shoal lock'.
func lockCommand() command {
	return command{
		synopsis: "REMOTE [--] COMMAND [ARGS...] | --status REMOTE",
		about: "Run COMMAND while holding the cluster-wide lock of REMOTE, like flock(1): the lock is\n" +
			"taken (REMOTE is made, empty, if missing), renewed while COMMAND runs, and released\n" +
			"when it exits; the exit code is COMMAND's. Without --wait or --nonblock it waits\n" +
			"as long as it takes. COMMAND gets the lease's fencing token in $" + envFence + ": the\n" +
			"changes every shoal command makes then carry it, and the cluster refuses them\n" +
			"once the lease is over. If the lease is lost (the cluster could not be reached\n" +
			"to renew it before its end), COMMAND is sent SIGTERM and shoal lock exits 1.\n" +
			"--status shows who holds the lock and who waits.",
		examples: []string{"shoal lock /jobs/nightly.lock -- ./nightly.sh",
			"shoal lock --nonblock /jobs/nightly.lock -- ./nightly.sh || echo already running",
			"shoal lock --shared --wait 30s /data/index -- ./read-index.sh", "shoal lock --status /jobs/nightly.lock"},
		minArgs: 1, maxArgs: -1, run: runLock, failCode: exitFail, json: true,
		flags: func(fs *pflag.FlagSet, s *session) {
			fs.SetInterspersed(false) // flags after REMOTE are COMMAND's
			fs.BoolVarP(&s.lock.shared, "shared", "s", false, "take a shared lock (others may hold it shared too) instead of an exclusive one")
			fs.BoolVarP(&s.lock.nonblock, "nonblock", "n", false, "fail at once (exit 1) if the lock is held")
			fs.DurationVarP(&s.lock.wait, "wait", "w", 0, "wait at most this long for the lock (default: as long as it takes)")
			fs.DurationVar(&s.lock.ttl, "ttl", 30*time.Second, "the lease: how long the lock outlives this process if it dies (1s to 24h)")
			fs.StringVar(&s.lock.owner, "owner", "", "how the holder is shown to others (default: user@host:pid)")
			fs.BoolVar(&s.lock.status, "status", false, "show the lock's holders and waiters instead of taking it")
		},
	}
}

func runLock(s *session, args []string) error {
	remote := args[0]
	if s.lock.status {
		if len(args) > 1 {
			return fmt.Errorf("--status takes REMOTE only, got a command too")
		}
		return lockStatus(s, remote)
	}
	cmdArgs := args[1:]
	if len(cmdArgs) > 0 && cmdArgs[0] == "--" {
		cmdArgs = cmdArgs[1:]
	}
	if len(cmdArgs) == 0 {
		return fmt.Errorf("no COMMAND to run under the lock; see 'shoal lock --help'")
	}
	// Like flock(1), a missing lock file is made.
	if _, _, err := s.c.PutWith(s.ctx, remote, nil, 0, PutOptions{IfAbsent: true}); err != nil && !errors.Is(err, ErrPrecondition) {
		return onPath(remote, err)
	}
	o := LockOptions{Shared: s.lock.shared, TTL: s.lock.ttl, Owner: s.lock.owner}
	if o.Owner == "" {
		host, _ := os.Hostname()
		o.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
		if me, err := s.c.WhoAmI(s.ctx); err == nil {
			o.Owner = me.Name + "@" + o.Owner
		}
	}
	lease, err := takeLock(s, remote, o)
	if err != nil {
		return err
	}
	held, stop := lease.Hold(s.ctx)
	defer stop()

	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.stdin, s.stdout, s.stderr
	cmd.Env = append(os.Environ(), envFence+"="+strconv.FormatUint(lease.Token, 10))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", cmdArgs[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-exited:
	case <-held.Done():
		if s.ctx.Err() == nil { // lost, not interrupted
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			return fmt.Errorf("lock of %s: %w; sent %s SIGTERM", remote, context.Cause(held), cmdArgs[0])
		}
		runErr = <-exited // interrupted: the command got the signal too
	}
	if err := stop(); err != nil {
		s.fail(err)
	}
	var exit *exec.ExitError
	if errors.As(runErr, &exit) {
		if code := exit.ExitCode(); code >= 0 {
			return exitStatus(code)
		}
		return exitStatus(128 + int(exit.Sys().(syscall.WaitStatus).Signal()))
	}
	return runErr
}

// takeLock takes the lock as the flags say: at once, within --wait, or
// as long as it takes (in waits of lockCLIWait, each a request of its own).
func takeLock(s *session, remote string, o LockOptions) (*Lease, error) {
	const lockCLIWait = 5 * time.Minute
	var deadline time.Time
	switch {
	case s.lock.nonblock:
	case s.lock.wait > 0:
		deadline = time.Now().Add(s.lock.wait)
	default:
		deadline = time.Now().Add(100 * 365 * 24 * time.Hour)
	}
	for {
		o.Wait = min(time.Until(deadline), lockCLIWait)
		if o.Wait < 0 {
			o.Wait = 0
		}
		lease, err := s.c.Lock(s.ctx, remote, o)
		if err == nil || !errors.Is(err, ErrLocked) || time.Until(deadline) <= 0 {
			return lease, onPath(remote, err)
		}
	}
}

func lockStatus(s *session, remote string) error {
	info, err := s.c.LockState(s.ctx, remote)
	if err != nil {
		return onPath(remote, err)
	}
	if s.json {
		return s.printJSON(info)
	}
	if len(info.Holders) == 0 {
		fmt.Fprintf(s.stdout, "%s: free", remote)
	} else {
		fmt.Fprintf(s.stdout, "%s: held", remote)
	}
	if info.Waiting > 0 {
		fmt.Fprintf(s.stdout, ", %d waiting", info.Waiting)
	}
	fmt.Fprintln(s.stdout)
	if len(info.Holders) > 0 {
		tw := tabwriter.NewWriter(s.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOKEN\tMODE\tOWNER\tUID\tHELD\tEXPIRES IN")
		for _, h := range info.Holders {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", h.Token, h.Mode, h.Owner, h.Uid,
				(time.Duration(h.HeldSeconds * 1e9)).Round(time.Second), (time.Duration(h.ExpiresInSeconds * 1e9)).Round(100*time.Millisecond))
		}
		tw.Flush()
	}
	for i, w := range info.Queue {
		fmt.Fprintf(s.stdout, "waiting %d: %s %s (uid %d)\n", i+1, w.Mode, strings.TrimSpace(w.Owner), w.Uid)
	}
	return nil
}
