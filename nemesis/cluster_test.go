package nemesis

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// needCampaign skips unless SHOAL_NEMESIS is set and namespaces can be
// made; it returns the shoal binary.
func needCampaign(t *testing.T) string {
	t.Helper()
	if os.Getenv("SHOAL_NEMESIS") == "" {
		t.Skip("set SHOAL_NEMESIS=1 to run the fault campaign (root, network namespaces)")
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-nemesis-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shoal")
		cmd := exec.Command("go", "build", "-o", binPath, "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// newTestCluster makes a Net of n+1 hosts and starts the cluster on it.
func newTestCluster(t *testing.T, k, n int, nodeFlags, routerFlags []string) *Cluster {
	t.Helper()
	bin := needCampaign(t)
	nt, err := NewNet(fmt.Sprintf("sn%d", k), k, n+1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nt.Close() })
	c, err := StartCluster(nt, bin, t.TempDir(), n, nodeFlags, routerFlags)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			for _, p := range append(c.Nodes, c.Router) {
				t.Logf("--- %s ---\n%s", p.Name, p.Log())
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPartitionedPrimaryCannotWrite: a primary cut off from both replicas
// acknowledges nothing; the majority elects another and goes on; after
// healing, the old primary follows and the write is readable everywhere.
func TestPartitionedPrimaryCannotWrite(t *testing.T) {
	c := newTestCluster(t, 201, 3, nil, []string{"--request-timeout", "3s"})
	ctx := context.Background()
	old := c.Primary(ctx)
	if old == nil {
		t.Fatal("no primary")
	}
	var rest []*Host
	for _, p := range c.Nodes {
		if p != old {
			rest = append(rest, p.Host)
		}
	}
	if err := c.Net.Partition([]*Host{old.Host}, append(rest, c.Router.Host)); err != nil {
		t.Fatal(err)
	}
	cl, _ := c.Client(5 * time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := cl.Put(ctx, "/after-cut", bytes.NewReader([]byte("v1")), 2)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the majority side never accepted a write: %v", err)
		}
	}
	if p := c.Primary(ctx); p == nil || p == old {
		t.Fatalf("primary after the cut: %v, want one of the majority", p)
	}
	if err := c.Net.Heal(); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(hctx); err != nil {
		t.Fatal(err)
	}
	got, err := cl.ReadFile(ctx, "/after-cut")
	if err != nil || string(got) != "v1" {
		t.Fatalf("read after heal: %q, %v", got, err)
	}
}
