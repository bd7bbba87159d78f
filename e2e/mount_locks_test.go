package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
)

// Two mounts of one cluster (as two hosts would have) take the same
// cluster-wide locks: flock(1) loops on both with a shared counter lose
// no increment, and fcntl byte-range locks of one exclude the other's
// only where they overlap.
func TestMountLocksAcrossMounts(t *testing.T) {
	needFUSE(t)
	for _, tool := range []string{"flock", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED: %s is not installed; the mount's locks are not checked with it", tool)
		}
	}
	c := newCluster(t, 3)
	a, b := c.mount(), c.mount()
	if err := os.WriteFile(filepath.Join(a, "counter"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const rounds = 12
	script := fmt.Sprintf(`for i in $(seq %d); do flock -x lock sh -c 'v=$(cat counter); echo $((v+1)) > counter' || exit 1; done`, rounds)
	var wg sync.WaitGroup
	for _, dir := range []string{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, code := sh(t, dir, 0, script); code != 0 {
				t.Errorf("flock loop in %s: exit %d: %s", dir, code, out)
			}
		}()
	}
	wg.Wait()
	got, _ := os.ReadFile(filepath.Join(b, "counter"))
	if strings.TrimSpace(string(got)) != fmt.Sprint(2*rounds) {
		t.Fatalf("the counter is %q after %d increments under flock from two mounts", got, 2*rounds)
	}

	// fcntl byte ranges: a holds bytes 0-9 for writing while b asks.
	hold := exec.Command("python3", "-c", `
import fcntl, sys, time
f = open("data", "r+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
print("locked", flush=True)
sys.stdin.read()
`)
	hold.Dir = a
	os.WriteFile(filepath.Join(a, "data"), make([]byte, 100), 0o644)
	stdin, _ := hold.StdinPipe()
	stdout, _ := hold.StdoutPipe()
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	defer hold.Wait()
	defer stdin.Close()
	line := make([]byte, 16)
	if n, _ := stdout.Read(line); !strings.HasPrefix(string(line[:n]), "locked") {
		t.Fatalf("the holder in mount a said %q", line[:n])
	}
	probe := func(script string) string {
		t.Helper()
		out, err := exec.Command("python3", "-c", "import fcntl, struct, os\nf = open(os.path.join(os.environ['D'], 'data'), 'r+')\n"+script).CombinedOutput()
		if err != nil {
			t.Fatalf("python in mount b: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	os.Setenv("D", b)
	defer os.Unsetenv("D")
	try := func(start, n int) string {
		return probe(fmt.Sprintf(`
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, %d, %d)
    print("granted")
except OSError as e:
    print("refused", e.errno)
`, n, start))
	}
	if got := try(5, 10); got != fmt.Sprint("refused ", int(syscall.EAGAIN)) {
		t.Errorf("lock of bytes 5-14 in b while a holds 0-9: %s", got)
	}
	if got := try(10, 10); got != "granted" {
		t.Errorf("lock of bytes 10-19 in b while a holds 0-9: %s", got)
	}
	getlk := probe(`
l = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 20, 0)
t, w, s, n, p = struct.unpack("hhqqi", fcntl.fcntl(f, fcntl.F_GETLK, l))
print(t == fcntl.F_WRLCK, s, n)
`)
	if getlk != "True 0 10" {
		t.Errorf("F_GETLK of bytes 0-19 in b: %q, want the holder's write lock on 0, 10 bytes", getlk)
	}
	stdin.Close() // a's holder exits: its lock goes with its close
	hold.Wait()
	harness.Await(t, 10*time.Second, "bytes 0-9 to come free once a's holder exited", func() bool { return try(0, 10) == "granted" })
}

// A mount that dies loses its locks when their leases end; another
// mount then takes them.
func TestMountLocksOfADeadMount(t *testing.T) {
	needFUSE(t)
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("SKIPPED: flock is not installed; the locks of a dead mount are not checked")
	}
	c := newCluster(t, 3)
	a := c.mount("--lock-ttl", "2s")
	b := c.mount()
	os.WriteFile(filepath.Join(a, "lock"), nil, 0o644)
	holder := exec.Command("flock", "-x", "lock", "sleep", "600")
	holder.Dir = a
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); holder.Wait() }()
	harness.Await(t, 10*time.Second, "mount a's flock to be taken", func() bool {
		_, code := sh(t, b, 0, "flock -n -x lock true")
		return code != 0
	})
	// kill -9 the mount that holds the lock.
	for _, p := range c.Procs() {
		if strings.Contains(strings.Join(p.Args, " "), " "+a+" ") {
			p.Kill()
		}
	}
	start := time.Now()
	if out, code := sh(t, b, 0, "flock -w 30 -x lock true"); code != 0 {
		t.Fatalf("flock in b after a died: exit %d: %s", code, out)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the lock of a mount killed with a 2s lease took %v to come free", took)
	}
}

// TestMountOrphansOfADeadMount: a file unlinked while a program on a
// mount has it open stays in the cluster while the mount renews its
// lease, and goes once a mount killed with kill -9 stops renewing it.
func TestMountOrphansOfADeadMount(t *testing.T) {
	needFUSE(t)
	c := newCluster(t, 3)
	a := c.mount("--lock-ttl", "2s")
	cl := c.client()
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(a, "orphan"), bytes.Repeat([]byte("o"), 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := cl.Stat(ctx, "/orphan")
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("sh", "-c", "exec 3< orphan && rm orphan && echo unlinked && exec sleep 600")
	holder.Dir = a
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); holder.Wait() }()
	line := make([]byte, 9)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "unlinked\n" {
		t.Fatalf("the holder said %q, %v", line, err)
	}
	// Watched for three leases: renewed by its mount, it stays (the
	// watch ends only by running out of time).
	watch, cancel := context.WithTimeout(ctx, 6*time.Second)
	err = harness.WaitFor(watch, "the orphan to go while its mount lives", func() (bool, error) {
		got, err := cl.StatIno(ctx, st.Ino)
		if err != nil || got.Nlink != 0 {
			return true, fmt.Errorf("the orphan while its mount lives: %+v, %v", got, err)
		}
		return false, nil
	})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	for _, p := range c.Procs() {
		if strings.Contains(strings.Join(p.Args, " "), " "+a+" ") {
			p.Kill()
		}
	}
	start := time.Now()
	harness.Await(t, 30*time.Second, "the orphan of the killed mount to go", func() bool {
		_, err := cl.StatIno(ctx, st.Ino)
		return errors.Is(err, client.ErrNotFound)
	})
	t.Logf("collected %v after the kill", time.Since(start).Round(100*time.Millisecond))
}
