package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"shoal/harness"
)

// TestPeerPortConnectionFlood: 1,500 connections to one storage node's
// peer port that never finish a TLS handshake. The node keeps its open
// descriptors bounded (it takes at most 1,024 connections and closes the
// rest at once, saying so in its log) instead of running out of them, and
// once the flood ends the cluster takes writes as before.
func TestPeerPortConnectionFlood(t *testing.T) {
	c := newCluster(t, 3)
	c.expect("PUT", "/v1/fs/before.txt", strings.NewReader("before"), 201)
	g := c.waitGroup(3, "")
	var victim *harness.Proc
	for _, p := range c.Nodes {
		if p.Name != g.Primary {
			victim = p
			break
		}
	}
	var flood []net.Conn
	defer func() {
		for _, f := range flood {
			f.Close()
		}
	}()
	for i := range 1500 {
		f, err := net.DialTimeout("tcp", victim.Arg("--listen"), 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		flood = append(flood, f)
	}
	fds := func() int {
		es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", victim.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	harness.Await(t, 20*time.Second, victim.Name+" to log that it refused connections", func() bool {
		b, _ := os.ReadFile(victim.Log)
		return strings.Contains(string(b), "too many connections")
	})
	if n := fds(); n > 1024+200 {
		t.Errorf("%s holds %d open descriptors under a flood of 1,500 connections; want at most about 1,024 connections' worth", victim.Name, n)
	}
	for _, f := range flood {
		f.Close()
	}
	flood = nil
	harness.Await(t, 60*time.Second, "a write after the flood", func() bool {
		code, _, _ := c.do("PUT", "/v1/fs/after.txt", strings.NewReader("after"))
		return code == 201
	})
	c.waitGroup(3, "")
	if got := string(c.expect("GET", "/v1/fs/before.txt", nil, 200)); got != "before" {
		t.Errorf("before.txt reads %q", got)
	}
}
