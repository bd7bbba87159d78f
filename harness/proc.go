package harness

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one process with fixed arguments, so that it can be killed and
// started again as the same node: same data directory, same addresses.
// Fill the exported fields, then Start it; the methods are safe to call
// from several goroutines.
type Proc struct {
	// Name names the process in messages.
	Name string
	// Args is the command line; Args[0] is the executable.
	Args []string
	// Log receives the process's standard output and error, appended to
	// across restarts.
	Log string
	// Env is added to the environment the process gets: this process's,
	// less every SHOAL_* variable (the servers read their flags from
	// those, and a test's cluster must not change with the shell it runs
	// in), plus SHOAL_CREDENTIALS=/dev/null (nor with the user's
	// credentials file). Later entries win.
	Env []string
	// Command makes the command that runs Args, to run it inside a network
	// namespace, say; nil means exec.Command.
	Command func(name string, args ...string) *exec.Cmd

	log *slog.Logger // set by a Cluster; nil logs nothing

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil before Start and after Kill or Stop
	done   chan struct{} // closed when cmd has exited
	paused bool
}

// Start runs p, unless it was started and not killed or stopped since (so
// a process that exited by itself stays down, for the caller to notice).
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	if len(p.Args) == 0 {
		return fmt.Errorf("start %s: no command line", p.Name)
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: its log: %w", p.Name, err)
	}
	command := p.Command
	if command == nil {
		command = exec.Command
	}
	cmd := command(p.Args[0], p.Args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(hermeticEnv(), p.Env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s (%s): %w", p.Name, p.Args[0], err)
	}
	if p.log != nil {
		p.log.Debug("started", "process", p.Name, "pid", cmd.Process.Pid, "args", strings.Join(p.Args[1:], " "))
	}
	done := make(chan struct{})
	p.cmd, p.done, p.paused = cmd, done, false
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	return nil
}

// hermeticEnv is this process's environment less every SHOAL_* variable,
// plus SHOAL_CREDENTIALS=/dev/null.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOAL_") {
			env = append(env, kv)
		}
	}
	return append(env, "SHOAL_CREDENTIALS="+os.DevNull)
}

// take forgets p's current run and returns it, for Kill and Stop.
func (p *Proc) take() (*exec.Cmd, chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd, done, paused := p.cmd, p.done, p.paused
	p.cmd, p.done, p.paused = nil, nil, false
	return cmd, done, paused
}

// Kill sends SIGKILL (a paused process dies of it too) and waits until p
// is gone. It does nothing to a process not started.
func (p *Proc) Kill() {
	cmd, done, _ := p.take()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop asks p to exit with SIGTERM (resuming it first if paused, or it
// would not see the signal) and waits up to grace; if p is still running
// then, it kills it and returns ErrKilled. A grace of zero or less kills
// at once.
func (p *Proc) Stop(grace time.Duration) error {
	if grace <= 0 {
		p.Kill()
		return nil
	}
	cmd, done, paused := p.take()
	if cmd == nil {
		return nil
	}
	if paused {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return fmt.Errorf("%s: %w (%v)", p.Name, ErrKilled, grace)
}

// Restart kills p and starts it again.
func (p *Proc) Restart() error {
	p.Kill()
	return p.Start()
}

// Pause freezes p with SIGSTOP: it keeps its sockets and, once resumed,
// finds the cluster moved on without it.
func (p *Proc) Pause() error { return p.signal(syscall.SIGSTOP, true) }

// Resume thaws p after Pause. It does nothing to a process not paused.
func (p *Proc) Resume() error {
	p.mu.Lock()
	paused := p.paused
	p.mu.Unlock()
	if !paused {
		return nil
	}
	return p.signal(syscall.SIGCONT, false)
}

func (p *Proc) signal(s syscall.Signal, paused bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || exited(p.done) {
		return fmt.Errorf("%s %v: %w", p.Name, s, ErrNotRunning)
	}
	if err := p.cmd.Process.Signal(s); err != nil {
		return fmt.Errorf("%s %v: %w", p.Name, s, err)
	}
	p.paused = paused
	return nil
}

// Running reports whether p is started and has not exited (it may be
// paused).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !exited(p.done)
}

// Pid returns the process ID of p's current run, or 0 when it is not
// running.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || exited(p.done) {
		return 0
	}
	return p.cmd.Process.Pid
}

func exited(done chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Arg returns the value that follows flag on p's command line, or "".
func (p *Proc) Arg(flag string) string {
	for i, a := range p.Args[:max(0, len(p.Args)-1)] {
		if a == flag {
			return p.Args[i+1]
		}
	}
	return ""
}

// tailBytes bounds how much of a log Tail reads: enough for any sensible
// number of lines, without reading a log of a long run whole.
const tailBytes = 256 << 10

// Tail returns the last n lines of p's log ("" if it has none).
func (p *Proc) Tail(n int) string {
	f, err := os.Open(p.Log)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > tailBytes {
		_, _ = f.Seek(-tailBytes, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-n):], []byte("\n")))
}
