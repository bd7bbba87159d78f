package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(mountChunk), "--inline-max", "1024"},
	})
	r2, url2 := c.addRouter("router2")
	mnt := c.mount("--router", c.API+","+url2, "--retry", "30s")
	log := filepath.Join(mnt, "log")

	// The program: append a numbered line, close, read the file back.
	var (
		wrote   atomic.Int64
		opStart atomic.Int64 // UnixNano of the call under way, 0 between calls
		errMu   sync.Mutex
		errs    []string
		stop    = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			opStart.Store(time.Now().UnixNano())
			f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err == nil {
				_, err = fmt.Fprintf(f, "%d\n", i)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err == nil {
				_, err = os.ReadFile(log)
			}
			opStart.Store(0)
			if err != nil {
				errMu.Lock()
				errs = append(errs, fmt.Sprintf("line %d: %v", i, err))
				errMu.Unlock()
				return
			}
			wrote.Store(i)
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
	close(stop)
	<-done

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
