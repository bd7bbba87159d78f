package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shProc is a shell process logging to a file in a test directory.
func shProc(t *testing.T, script string) *Proc {
	t.Helper()
	p := &Proc{Name: "sh", Args: []string{"/bin/sh", "-c", script}, Log: filepath.Join(t.TempDir(), "sh.log")}
	t.Cleanup(p.Kill)
	return p
}

// logged waits until p's log holds want.
func logged(t *testing.T, p *Proc, want string) {
	t.Helper()
	Await(t, 10*time.Second, "the log of "+p.Name+" to hold "+want, func() bool {
		b, _ := os.ReadFile(p.Log)
		return strings.Contains(string(b), want)
	})
}

func TestProcLifecycle(t *testing.T) {
	t.Setenv("SHOAL_LEAK", "1")
	p := shProc(t, `echo "started $SHOAL_LEAK $SHOAL_CREDENTIALS $EXTRA"; trap 'echo term; exit 0' TERM; while :; do sleep 0.05; done`)
	p.Env = []string{"EXTRA=x"}
	if p.Running() {
		t.Fatal("running before Start")
	}
	if err := p.Pause(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Pause before Start: %v, want ErrNotRunning", err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	logged(t, p, "started  /dev/null x") // no SHOAL_LEAK; SHOAL_CREDENTIALS is /dev/null
	if err := p.Start(); err != nil || !p.Running() {
		t.Fatalf("a second Start: %v, running %v", err, p.Running())
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := p.Resume(); err != nil {
		t.Fatalf("Resume of a process not paused: %v", err)
	}
	p.Kill()
	if p.Running() {
		t.Fatal("running after Kill")
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	Await(t, 10*time.Second, "a second start in the log", func() bool { return strings.Count(p.Tail(10), "started") == 2 })
	// Stop resumes a paused process, so that it sees SIGTERM.
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	logged(t, p, "term")
	if p.Running() {
		t.Fatal("running after Stop")
	}
}

func TestProcStopKillsAfterGrace(t *testing.T) {
	p := shProc(t, `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	logged(t, p, "ready")
	start := time.Now()
	if err := p.Stop(200 * time.Millisecond); !errors.Is(err, ErrKilled) {
		t.Fatalf("Stop of a process ignoring SIGTERM: %v, want ErrKilled", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Stop took %v, want the grace of 200ms", d)
	}
}

func TestProcExitsByItself(t *testing.T) {
	p := shProc(t, `echo one; echo two; echo three; exit 3`)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	Await(t, 10*time.Second, "the shell to exit", func() bool { return !p.Running() })
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if p.Running() || strings.Count(p.Tail(10), "one") != 1 {
		t.Fatal("Start ran again a process that exited by itself without Kill")
	}
	if got := p.Tail(2); got != "two\nthree" {
		t.Fatalf("Tail(2) = %q", got)
	}
	if err := p.Pause(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Pause of an exited process: %v, want ErrNotRunning", err)
	}
}

func TestProcArg(t *testing.T) {
	p := &Proc{Args: []string{"shoal", "primary", "--listen", "127.0.0.1:7000", "--data"}}
	if got := p.Arg("--listen"); got != "127.0.0.1:7000" {
		t.Errorf("Arg(--listen) = %q", got)
	}
	if got := p.Arg("--data"); got != "" {
		t.Errorf("Arg of a flag with no value = %q", got)
	}
	if got := p.Arg("--gossip"); got != "" {
		t.Errorf("Arg of a missing flag = %q", got)
	}
}

func TestBuildUsesBinaryEnv(t *testing.T) {
	t.Setenv(BinaryEnv, "/some/shoal")
	var b Build
	if p, err := b.Path(context.Background()); err != nil || p != "/some/shoal" {
		t.Fatalf("Path with %s set: %q, %v", BinaryEnv, p, err)
	}
}
