package gossip

import (
	"context"
	"errors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"shoal/harness"
)

// testConfig returns DefaultConfig bound to a free loopback port (memberlist
// picks one that is free for both TCP and UDP, retrying on a clash).
func testConfig(t *testing.T, name string, tags Tags, join ...string) Config {
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Join = join
	cfg.Tags = tags
	cfg.JoinRetry = 50 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

// startNode starts a node and closes it when the test ends.
func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatalf("Start(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close(%s): %v", cfg.Name, err)
		}
	})
	return n
}

// find returns the member named name in n's view.
func find(n *Node, name string) (Member, bool) {
	for _, m := range n.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// sees reports whether n's view has name with the given status and tags.
func sees(n *Node, name string, st Status, tags Tags) bool {
	m, ok := find(n, name)
	return ok && m.Status == st && m.Tags == tags
}

var (
	tagsA = Tags{ID: 3, Role: RolePrimary, Group: "g1", Term: 1, Addr: "127.0.0.1:9001", InSync: true, Boot: true}
	tagsB = Tags{ID: 2, Role: RoleReplica, Group: "g1", Term: 1, Addr: "127.0.0.1:9002"}
	tagsC = Tags{ID: 1, Role: RoleRouter, HTTP: "127.0.0.1:8080"}
)

// startCluster starts a, then b and c joining through a.
func startCluster(t *testing.T) (a, b, c *Node) {
	t.Helper()
	a = startNode(t, testConfig(t, "a", tagsA))
	b = startNode(t, testConfig(t, "b", tagsB, a.GossipAddr()))
	c = startNode(t, testConfig(t, "c", tagsC, a.GossipAddr()))
	want := map[string]Tags{"a": tagsA, "b": tagsB, "c": tagsC}
	for _, n := range []*Node{a, b, c} {
		harness.Await(t, 5*time.Second, n.Local().Name+" to see a, b, c alive with their tags", func() bool {
			ms := n.Members()
			if len(ms) != 3 {
				return false
			}
			for _, m := range ms {
				if m.Status != StatusAlive || m.Tags != want[m.Name] {
					return false
				}
			}
			return true
		})
	}
	return a, b, c
}

func TestNodeJoinAndSetTags(t *testing.T) {
	a, b, c := startCluster(t)
	if got := Elect(b.Members(), "g1"); got.Primary == nil || got.Primary.Name != "a" {
		t.Errorf("Elect on b's view: primary %v, want a", got.Primary)
	}

	// Drain pending signals so the next one is caused by the update.
	select {
	case <-c.Changes():
	default:
	}
	promoted := tagsB
	promoted.Role, promoted.Term, promoted.InSync = RolePrimary, 2, true
	if err := b.SetTags(promoted); err != nil {
		t.Fatalf("SetTags: %v", err)
	}
	if got := b.Local(); got.Tags != promoted || got.Status != StatusAlive {
		t.Errorf("b.Local() = %+v, want alive with %+v", got, promoted)
	}
	for _, n := range []*Node{a, c} {
		harness.Await(t, 5*time.Second, n.Local().Name+" to see b's new tags", func() bool {
			return sees(n, "b", StatusAlive, promoted)
		})
	}
	// Serf shows an update in the member list before it delivers the
	// event that signals Changes: wait for the signal.
	select {
	case <-c.Changes():
	case <-time.After(5 * time.Second):
		t.Error("c saw b's tag update but Changes was not signalled within 5s")
	}
	// a's claim at term 1 is now stale: everyone follows b.
	if got := Elect(c.Members(), "g1"); got.Primary == nil || got.Primary.Name != "b" {
		t.Errorf("Elect on c's view after b's promotion: primary %v, want b", got.Primary)
	}

	if err := b.SetTags(Tags{ID: 2, Role: "chief"}); !errors.Is(err, ErrBadTags) {
		t.Errorf("SetTags with an unknown role: %v, want ErrBadTags", err)
	}
}

func TestNodeGracefulLeave(t *testing.T) {
	a, b, c := startCluster(t)
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v, want about LeaveTimeout (1s) at most", d)
	}
	for _, n := range []*Node{a, b} {
		harness.Await(t, 5*time.Second, n.Local().Name+" to see c as left", func() bool {
			return sees(n, "c", StatusLeft, tagsC)
		})
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.SetTags(tagsC); !errors.Is(err, ErrClosed) {
		t.Errorf("SetTags after Close: %v, want ErrClosed", err)
	}
	if err := c.Start(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

func TestNodeDetectsCrash(t *testing.T) {
	Events() // counts suspicions and deaths from here on
	before := map[string][2]float64{}
	for _, name := range []string{"a", "b"} {
		before[name] = [2]float64{testutil.ToFloat64(suspicions.WithLabelValues(name)), testutil.ToFloat64(deaths.WithLabelValues(name))}
	}
	a, b, c := startCluster(t)
	start := time.Now()
	if err := c.close(false); err != nil { // no leave: peers must notice on their own
		t.Fatalf("kill: %v", err)
	}
	for _, n := range []*Node{a, b} {
		harness.Await(t, 5*time.Second, n.Local().Name+" to see c as failed", func() bool {
			return sees(n, "c", StatusFailed, tagsC)
		})
	}
	took := time.Since(start)
	// Each peer's metrics count what its view went through: c suspected,
	// then declared dead (by itself, or by the other peer's news).
	for _, name := range []string{"a", "b"} {
		harness.Await(t, 5*time.Second, name+"'s metrics to count c suspected and dead", func() bool {
			return testutil.ToFloat64(suspicions.WithLabelValues(name)) > before[name][0] &&
				testutil.ToFloat64(deaths.WithLabelValues(name)) > before[name][1]
		})
	}
	t.Logf("crash detected by both peers after %v (ProbeInterval %v, ProbeTimeout %v, SuspicionMult %d)",
		took, DefaultConfig().ProbeInterval, DefaultConfig().ProbeTimeout, DefaultConfig().SuspicionMult)
	if took > 2*time.Second {
		t.Errorf("detection took %v; DefaultConfig aims at well under a second on loopback", took)
	}
}

// TestNodeJoinRetries starts a node whose seed is not up yet; it must work
// alone, then join once the seed appears.
func TestNodeJoinRetries(t *testing.T) {
	seedAddr := freeLoopbackAddr(t)
	b := startNode(t, testConfig(t, "b", tagsB, seedAddr))
	if ms := b.Members(); len(ms) != 1 || ms[0].Name != "b" || ms[0].Status != StatusAlive {
		t.Fatalf("b alone: Members = %+v, want only b, alive", ms)
	}
	cfg := testConfig(t, "a", tagsA)
	cfg.BindAddr = seedAddr
	a := startNode(t, cfg)
	harness.Await(t, 5*time.Second, "b's join retry to reach a", func() bool {
		return sees(b, "a", StatusAlive, tagsA) && sees(a, "b", StatusAlive, tagsB)
	})
}

// freeLoopbackAddr returns a loopback address whose port was free for TCP
// a moment ago. Only used where the address must be known before binding.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func TestNodeBeforeStart(t *testing.T) {
	n, err := New(testConfig(t, "x", tagsB))
	if err != nil {
		t.Fatal(err)
	}
	if n.GossipAddr() != "" || n.Members() != nil {
		t.Error("New opened a socket or built a view before Start")
	}
	changed := tagsB
	changed.Term = 7
	if err := n.SetTags(changed); err != nil {
		t.Fatalf("SetTags before Start: %v", err)
	}
	if got := n.Local(); got.Name != "x" || got.Tags != changed || got.Status != StatusUnknown {
		t.Errorf("Local before Start = %+v", got)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start: %v, want ErrStarted", err)
	}
	if got := n.Local(); got.Tags != changed || got.Status != StatusAlive {
		t.Errorf("Local after Start = %+v, want the tags set before Start", got)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	unstarted, err := New(testConfig(t, "y", tagsB))
	if err != nil {
		t.Fatal(err)
	}
	if err := unstarted.Close(); err != nil {
		t.Errorf("Close of a never-started node: %v", err)
	}
}

func TestNodeStartBindError(t *testing.T) {
	a := startNode(t, testConfig(t, "a", tagsA))
	cfg := testConfig(t, "b", tagsB)
	cfg.BindAddr = a.GossipAddr()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err == nil {
		t.Fatal("Start on a port in use succeeded")
	} else {
		t.Logf("bind error as the user sees it: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("Close after a failed Start: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := DefaultConfig()
	base.Name = "n1"
	base.Tags = tagsB
	if err := base.Validate(); err != nil {
		t.Fatalf("default config with a name and tags: %v", err)
	}
	cases := map[string]func(*Config){
		"no name":                func(c *Config) { c.Name = "" },
		"bind without port":      func(c *Config) { c.BindAddr = "127.0.0.1" },
		"bind to a hostname":     func(c *Config) { c.BindAddr = "localhost:7946" },
		"advertise unspecified":  func(c *Config) { c.AdvertiseAddr = "0.0.0.0:7946" },
		"advertise bad port":     func(c *Config) { c.AdvertiseAddr = "10.0.0.1:70000" },
		"seed without port":      func(c *Config) { c.Join = []string{"seed.example"} },
		"seed port zero":         func(c *Config) { c.Join = []string{"seed.example:0"} },
		"tags without role":      func(c *Config) { c.Tags.Role = "" },
		"zero probe interval":    func(c *Config) { c.ProbeInterval = 0 },
		"timeout above interval": func(c *Config) { c.ProbeTimeout = c.ProbeInterval },
		"zero suspicion mult":    func(c *Config) { c.SuspicionMult = 0 },
		"negative join retry":    func(c *Config) { c.JoinRetry = -time.Second },
		"zero reconnect timeout": func(c *Config) { c.ReconnectTimeout = 0 },
		"zero leave timeout":     func(c *Config) { c.LeaveTimeout = 0 },
		"zero gossip interval":   func(c *Config) { c.GossipInterval = 0 },
		"zero tombstone timeout": func(c *Config) { c.TombstoneTimeout = 0 },
		"zero tcp timeout":       func(c *Config) { c.TCPTimeout = 0 },
	}
	for name, mutate := range cases {
		c := base
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: Validate = %v, want ErrBadConfig", name, err)
		}
		if _, err := New(c); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: New = %v, want ErrBadConfig", name, err)
		}
	}
	ok := base
	ok.AdvertiseAddr = "10.0.0.1:0"
	ok.Join = []string{"seed.example:7946", "[::1]:7946"}
	if err := ok.Validate(); err != nil {
		t.Errorf("hostname seeds and advertise port 0: %v", err)
	}
}
