package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/store"
)

// startWriter starts writing distinct files under prefix through the
// router, with no 503 retries inside the client (each attempt is timed),
// until the test ends or it is halted.
func startWriter(c *cluster, prefix string) *harness.Writer {
	c.t.Helper()
	cl, err := c.Client(15*time.Second, -1)
	if err != nil {
		c.t.Fatal(err)
	}
	w := harness.StartWriter(context.Background(), cl, prefix, nil)
	c.t.Cleanup(func() { w.Halt() })
	return w
}

// acked is how many writes w has had acknowledged.
func acked(w *harness.Writer) int {
	n, _ := w.Counts()
	return n
}

// verifyAcked reads every acknowledged write back through the router.
func verifyAcked(t *testing.T, c *cluster, acks []harness.Ack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lost, err := harness.Lost(ctx, c.client(), acks)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range lost {
		t.Errorf("acknowledged write %s lost: missing or with other content", a.Path)
	}
	if len(lost) > 0 {
		t.FailNow()
	}
}

// killPrimary kills -9 the group's primary while w writes, and returns
// the time from the kill to the first acknowledged write after it.
func killPrimary(t *testing.T, c *cluster, w *harness.Writer) (*harness.Proc, time.Duration) {
	t.Helper()
	g := c.waitGroup(len(c.Nodes), "")
	before := acked(w)
	harness.Await(t, 10*time.Second, "writes acknowledged before the kill", func() bool { return acked(w) >= before+10 })
	victim := c.node(g.Primary)
	killed := time.Now()
	victim.Kill()
	var first time.Time
	harness.Await(t, 30*time.Second, "a write acknowledged after the primary was killed", func() bool {
		var ok bool
		first, ok = w.FirstAckAfter(killed)
		return ok
	})
	return victim, first.Sub(killed)
}

func TestKillPrimaryWhileWriting(t *testing.T) {
	c := newCluster(t, 3)
	w := startWriter(c, "/w")
	victim, took := killPrimary(t, c, w)
	t.Logf("kill -9 of primary %s to first acknowledged write: %v", victim.Name, took)
	n := acked(w)
	harness.Await(t, 20*time.Second, "writes to continue after failover", func() bool { return acked(w) >= n+20 })
	// The new primary said at INFO why it took over: the old one's fate.
	g := c.waitGroup(2, victim.Name)
	line := ""
	for _, l := range strings.Split(c.node(g.Primary).Tail(400), "\n") {
		if strings.Contains(l, `msg="promoting to primary"`) && strings.Contains(l, "level=INFO") {
			line = l
		}
	}
	if !strings.Contains(line, "the primary "+victim.Name) || !strings.Contains(line, "why=") {
		t.Fatalf("the new primary %s did not log why it promoted, naming %s; last promotion line: %q", g.Primary, victim.Name, line)
	}
	t.Logf("the new primary's reason: %s", line[strings.Index(line, "why="):])

	// The old primary returns as a replica and catches up: once its
	// primary reports it holding the committed log, it holds every
	// acknowledged write.
	acks := w.Halt()
	c.start(victim)
	g = c.waitGroup(3, victim.Name)
	verifyAcked(t, c, acks)
	if g.Primary == victim.Name {
		t.Fatalf("old primary %s leads again; want it to rejoin as a replica", victim.Name)
	}
	out, _, _ := c.run("status")
	if !strings.Contains(out, victim.Name) {
		t.Fatalf("status does not list %s:\n%s", victim.Name, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitCaughtUp(ctx, g.Name, victim.Name); err != nil {
		t.Fatal(err)
	}

	// It holds the writes it missed: check its disk directly once every
	// process is killed.
	for _, p := range c.Nodes {
		p.Kill()
	}
	missing := checkDisk(t, filepath.Join(c.Dir, victim.Name), acks)
	if missing > 0 {
		t.Fatalf("restarted old primary lacks %d of %d acknowledged writes on disk", missing, len(acks))
	}

	// Whole-group restart keeps all data.
	for _, p := range c.Nodes {
		c.start(p)
	}
	c.waitGroup(3, "")
	verifyAcked(t, c, acks)
}

// checkDisk opens a stopped node's store and counts acknowledged writes
// whose entries its log does not hold.
func checkDisk(t *testing.T, dir string, acks []harness.Ack) int {
	t.Helper()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.State()
	if err != nil {
		t.Fatal(err)
	}
	// Entries it holds but has not applied yet are as durable as applied
	// ones; apply them to read the namespace they make.
	if _, _, err := db.Apply(st.LastIndex); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, a := range acks {
		// One chunk or inline: the file's hash is its content's.
		in, err := db.Reader().LookupAt(0, a.Path, nil, 0)
		if err != nil || in.Hash != meta.Hash(a.Sum).String() {
			missing++
		}
	}
	return missing
}

// TestFailoverTime is the failover harness: it kills -9 the primary of a
// three-node group under a continuous writer several times and reports
// the median time to the first acknowledged write after the kill.
// SHOAL_FAILOVER_RUNS sets the number of kills (default 3).
func TestFailoverTime(t *testing.T) {
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("SHOAL_FAILOVER_RUNS")); err == nil && v > 0 {
		runs = v
	}
	c := newCluster(t, 3)
	w := startWriter(c, "/fo")
	var times []time.Duration
	for i := range runs {
		victim, took := killPrimary(t, c, w)
		times = append(times, took)
		t.Logf("run %d: killed %s, first acknowledged write after %v", i+1, victim.Name, took)
		c.start(victim)
		c.waitGroup(3, "")
	}
	acks := w.Halt()
	verifyAcked(t, c, acks)
	slices.Sort(times)
	t.Logf("failover over %d kills: median %v, min %v, max %v; %d acknowledged writes all readable",
		runs, times[len(times)/2], times[0], times[len(times)-1], len(acks))
}

// TestFailoverBeforeGossipNotices: with gossip's failure detection slowed
// down so that it would take over ten seconds to declare a node dead, a
// primary killed with -9 is still replaced within a few seconds: its
// followers see its stream stop and its address refuse connections, and
// the candidate promotes on that proof. The old primary, still counted
// live by gossip, comes back as a replica.
func TestFailoverBeforeGossipNotices(t *testing.T) {
	slow := []string{"--probe-interval", "2s", "--probe-timeout", "1s", "--suspicion-mult", "6"}
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}, NodeFlags: slow, RouterFlags: slow})
	w := startWriter(c, "/proof")
	victim, took := killPrimary(t, c, w)
	t.Logf("kill -9 of primary %s to first acknowledged write, gossip slowed: %v", victim.Name, took)
	// Gossip needs a failed probe (up to 3 probe intervals with 3 other
	// nodes, plus the timeout) and then the suspicion (6 intervals) at
	// the least: 12 s. Writes getting through well before that came from
	// the proof.
	if took > 8*time.Second {
		t.Fatalf("first write acknowledged %v after the kill; want well under the 12 s gossip needs", took)
	}
	proved := false
	for _, p := range c.Nodes {
		if p != victim && strings.Contains(p.Tail(400), "its address refuses connections") {
			proved = true
		}
	}
	if !proved {
		t.Fatalf("no follower logged that the killed primary's address refused connections")
	}
	acks := w.Halt()
	c.start(victim)
	g := c.waitGroup(3, victim.Name)
	if g.Primary == victim.Name {
		t.Fatalf("old primary %s leads again; want it back as a replica", victim.Name)
	}
	verifyAcked(t, c, acks)
}
