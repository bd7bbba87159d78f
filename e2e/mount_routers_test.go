package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/harness"
)

// addRouter starts another router of c's cluster, like the first but
// with its own name and ports, and returns it with its URL once it
// serves.
func (c *cluster) addRouter(name string) (*harness.Proc, string) {
	c.t.Helper()
	args := slices.Clone(c.Router.Args[1:])
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	for i := range args[:len(args)-1] {
		switch args[i] {
		case "--name":
			args[i+1] = name
		case "--http":
			args[i+1] = httpAddr
		case "--gossip":
			args[i+1] = fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
		}
	}
	p := c.NewProc(name, args...)
	c.start(p)
	url := strings.Replace(c.API, c.Router.Arg("--http"), httpAddr, 1)
	hc := c.httpClient()
	harness.Await(c.t, 30*time.Second, name+" ready", func() bool {
		resp, err := hc.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p, url
}

// TestMountRidesOutRouters: a mount given two routers keeps a program's
// calls going while the router in use is killed, while the other
// restarts, and through a moment with neither: each is a stall, not an
// error, and every append lands once.
func TestMountRidesOutRouters(t *testing.T) {
	needFUSE(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("SKIPPED: python3 is not installed; the program riding out routers is written in it")
	}
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(mountChunk), "--inline-max", "1024"},
	})
	r2, url2 := c.addRouter("router2")
	mnt := c.mount("--router", c.API+","+url2, "--retry", "30s")
	log := filepath.Join(mnt, "log")

	// The program: append a numbered line, close, read the file back,
	// saying on its output when each call starts and ends. It runs as a
	// process of its own: a process this test starts (a router) inherits
	// the test's open files and closes them when it executes, and closing
	// one of the mount's files waits for the mount, so a program inside
	// the test would hold up the start of the very router it waits for.
	prog := exec.Command("python3", "-u", "-c", `
import select, sys
path = sys.argv[1]
i = 0
while not select.select([sys.stdin], [], [], 0)[0]:
    i += 1
    print("start", i)
    try:
        with open(path, "a") as f:
            f.write("%d\n" % i)
        with open(path) as f:
            f.read()
    except OSError as e:
        print("error line %d: %s" % (i, e))
        sys.exit(1)
    print("done", i)
`, log)
	stopIn, err := prog.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := prog.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	prog.Stderr = &stderr
	if err := prog.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Process.Kill() }) // when the test stops early
	var (
		wrote   atomic.Int64
		opStart atomic.Int64 // UnixNano of the call under way, 0 between calls
		errMu   sync.Mutex
		errs    []string
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			what, n, _ := strings.Cut(lines.Text(), " ")
			switch what {
			case "start":
				opStart.Store(time.Now().UnixNano())
			case "done":
				i, _ := strconv.ParseInt(n, 10, 64)
				opStart.Store(0)
				wrote.Store(i)
			default:
				errMu.Lock()
				errs = append(errs, lines.Text())
				errMu.Unlock()
			}
		}
	}()
	progress := func(what string, n int64) {
		t.Helper()
		from := wrote.Load()
		harness.Await(t, 60*time.Second, fmt.Sprintf("%d more appends %s", n, what), func() bool {
			select {
			case <-done:
				t.Fatalf("the program stopped %s: %v", what, errs)
			default:
			}
			return wrote.Load() >= from+n
		})
	}
	stalled := func(what string) {
		t.Helper()
		harness.Await(t, 30*time.Second, "the program's call held up "+what, func() bool {
			s := opStart.Load()
			return s != 0 && time.Since(time.Unix(0, s)) > time.Second
		})
	}

	progress("with both routers up", 20)
	c.Router.Kill()
	progress("after the first router was killed", 20)
	c.start(c.Router)
	r2.Kill()
	progress("after the second router was killed", 20)
	c.Router.Kill()
	stalled("with no router")
	c.start(c.Router)
	progress("after the first router came back", 20)
	c.start(r2)
	progress("with both back", 10)
	stopIn.Close()
	<-done
	if err := prog.Wait(); err != nil && len(errs) == 0 {
		t.Fatalf("the program failed: %v: %s", err, stderr.Bytes())
	}

	if len(errs) > 0 {
		t.Fatalf("the program got errors: %v", errs)
	}
	got, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := int64(1); i <= wrote.Load(); i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the file holds %d bytes, want lines 1 to %d once each (%d bytes); starts %.200q", len(got), wrote.Load(), want.Len(), got)
	}
}
