package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/api"
	"shoal/harness"
)

// lockStatus reads the lock of path through the CLI.
func (c *cluster) lockStatus(path string) api.LockInfo {
	c.t.Helper()
	out, errOut, code := c.run("lock", "--status", "--json", path)
	var info api.LockInfo
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		c.t.Fatalf("shoal lock --status %s: exit %d, %s %s", path, code, out, errOut)
	}
	return info
}

// shoal lock serialises read-modify-write cycles of several processes
// on one counter: none is lost. Every change made under it carries the
// lease's fencing token.
func TestLockCounterWithCLI(t *testing.T) {
	c := newCluster(t, 3)
	if _, e, code := c.run("mkdir", "/jobs"); code != 0 {
		t.Fatal(e)
	}
	if out, e, code := c.run("put", "-", "/jobs/counter"); code != 0 {
		t.Fatal(out, e)
	}
	const workers, rounds = 4, 5
	// Each round reads the counter, adds one and writes it back, as a
	// script would; without the lock, increments are lost.
	script := `v=$("$SHOAL" cat /jobs/counter); echo $((${v:-0}+1)) | "$SHOAL" put -q - /jobs/counter`
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				cmd := exec.Command(binary(t), "lock", "--ttl", "10s", "--owner", fmt.Sprintf("worker-%d", w), "/jobs/counter.lock", "--", "sh", "-c", script)
				cmd.Env = append(append(os.Environ(), c.cliEnv()...), "SHOAL="+binary(t))
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Sprintf("worker %d round %d: %v: %s", w, r, err, out)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	out, _, _ := c.run("cat", "/jobs/counter")
	if got := strings.TrimSpace(out); got != strconv.Itoa(workers*rounds) {
		t.Fatalf("the counter is %q after %d locked increments", got, workers*rounds)
	}
	if info := c.lockStatus("/jobs/counter.lock"); len(info.Holders) != 0 || info.Waiting != 0 {
		t.Fatalf("the lock is not free after every holder exited: %+v", info)
	}
	// The command's exit code is shoal lock's.
	if _, _, code := c.run("lock", "/jobs/counter.lock", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("shoal lock of a command that exits 7: exit %d", code)
	}
}

// A holder that dies loses its lock when its lease ends, and the changes
// it would still make with its token are refused.
func TestLockHolderKilled(t *testing.T) {
	c := newCluster(t, 3)
	c.run("mkdir", "/jobs")
	holder := exec.Command(binary(t), "lock", "--ttl", "2s", "/jobs/nightly", "--", "sh", "-c", `echo "$SHOAL_FENCE"; exec sleep 600`)
	holder.Env = append(os.Environ(), c.cliEnv()...)
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to kill its command with it
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	var line [32]byte
	n, _ := stdout.Read(line[:])
	token := strings.TrimSpace(string(line[:n]))
	if _, err := strconv.ParseUint(token, 10, 64); err != nil {
		t.Fatalf("the command under the lock got SHOAL_FENCE=%q", token)
	}
	info := c.lockStatus("/jobs/nightly")
	if len(info.Holders) != 1 || strconv.FormatUint(info.Holders[0].Token, 10) != token {
		t.Fatalf("lock status while held: %+v (token %s)", info, token)
	}
	_, e, code := c.run("lock", "--nonblock", "/jobs/nightly", "--", "true")
	if code != 1 || !strings.Contains(e, "lock is held") {
		t.Fatalf("--nonblock on a held lock: exit %d, %q", code, e)
	}
	// kill -9 the holder (and its command): nobody renews.
	syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
	holder.Wait()
	start := time.Now()
	out, e, code := c.run("lock", "--wait", "20s", "/jobs/nightly", "--", "sh", "-c", `echo "$SHOAL_FENCE"`)
	if code != 0 {
		t.Fatalf("lock after the holder died: exit %d, %s", code, e)
	}
	if waited := time.Since(start); waited > 15*time.Second {
		t.Errorf("the lock of a holder killed with a 2s lease took %v to come free", waited)
	}
	if next, _ := strconv.ParseUint(strings.TrimSpace(out), 10, 64); strconv.FormatUint(next, 10) == token || next == 0 {
		t.Fatalf("the next holder's token %q, the dead one's %s", out, token)
	}
	// The dead holder's token fences nothing any more.
	cmd := exec.Command(binary(t), "mkdir", "/jobs/late")
	cmd.Env = append(append(os.Environ(), c.cliEnv()...), "SHOAL_FENCE="+token)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "fenced") {
		t.Fatalf("a change fenced by the dead holder's token: %v, %s", err, out)
	}
	if _, _, code := c.run("exists", "/jobs/late"); code != 1 {
		t.Fatal("the fenced mkdir made the directory")
	}
}

// A lock outlives a failover of the meta group: the holder's renewals
// reach the new primary, and nobody else gets the lock meanwhile.
func TestLockSurvivesFailover(t *testing.T) {
	c := newCluster(t, 3)
	c.run("put", "-", "/l")
	holder := exec.Command(binary(t), "lock", "--ttl", "3s", "/l", "--", "sleep", "8")
	holder.Env = append(os.Environ(), c.cliEnv()...)
	out := &strings.Builder{}
	holder.Stdout, holder.Stderr = out, out
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	harness.Await(t, 10*time.Second, "the holder to take the lock", func() bool {
		o, _, code := c.run("lock", "--status", "--json", "/l")
		return code == 0 && strings.Contains(o, `"token"`)
	})
	g := c.waitGroup(3, "")
	victim := c.node(g.Primary)
	victim.Kill()
	c.waitGroup(2, g.Primary)
	_, e, code := c.run("lock", "--nonblock", "/l", "--", "true")
	if code != 1 || !strings.Contains(e, "lock is held") {
		t.Fatalf("--nonblock after the failover: exit %d, %q", code, e)
	}
	if err := holder.Wait(); err != nil {
		t.Fatalf("the holder across the failover: %v: %s", err, out)
	}
	// The killed primary, whose store holds the locks' records, opens it
	// again (not finding it corrupt and rebuilding it) and rejoins.
	c.start(victim)
	c.waitGroup(3, "")
	if log := victim.Tail(5000); !victim.Running() || strings.Contains(log, "meta.db is corrupt") {
		t.Fatalf("%s after its restart (running: %v; found its store corrupt: %v):\n%s", victim.Name, victim.Running(), strings.Contains(log, "meta.db is corrupt"), victim.Tail(30))
	}
}
