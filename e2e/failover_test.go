package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/client"
	"shoal/meta"
	"shoal/store"

	bolt "go.etcd.io/bbolt"
)

// writer keeps writing distinct files and records which were acknowledged
// and when.
type writer struct {
	cl    *client.Client
	mu    sync.Mutex
	acked map[string]string
	times [][2]time.Time // start and completion of each acknowledged write
	stop  chan struct{}
	done  chan struct{}
}

func startWriter(c *cluster, prefix string) *writer {
	cl, err := client.New(c.clientConfig(15*time.Second, -1))
	if err != nil {
		c.t.Fatal(err)
	}
	w := &writer{cl: cl, acked: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			p := fmt.Sprintf("%s/%06d", prefix, i)
			v := fmt.Sprintf("value %d of %s", i, prefix)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			began := time.Now()
			_, err := w.cl.Put(ctx, p, strings.NewReader(v), int64(len(v)))
			cancel()
			if err == nil {
				w.mu.Lock()
				w.acked[p] = v
				w.times = append(w.times, [2]time.Time{began, time.Now()})
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// firstAckAfter returns the completion time of the first acknowledged
// write that started after t: one already in flight may have committed
// before t.
func (w *writer) firstAckAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.times {
		if a[0].After(t) {
			return a[1], true
		}
	}
	return time.Time{}, false
}

func (w *writer) halt() map[string]string {
	close(w.stop)
	<-w.done
	return w.acked
}

// verifyAcked reads every acknowledged write back through the router.
func verifyAcked(t *testing.T, c *cluster, acked map[string]string) {
	t.Helper()
	cl := c.client()
	for p, v := range acked {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		b, err := cl.ReadFile(ctx, p)
		cancel()
		if err != nil || string(b) != v {
			t.Fatalf("acknowledged write %s lost: got %q, %v; want %q", p, b, err, v)
		}
	}
}

// killPrimary kills -9 the group's primary while w writes, and returns
// the time from the kill to the first acknowledged write after it.
func killPrimary(t *testing.T, c *cluster, w *writer) (*proc, time.Duration) {
	t.Helper()
	g := c.waitGroup(len(c.nodes), "")
	before := w.count()
	waitFor(t, 10*time.Second, "writes acknowledged before the kill", func() bool { return w.count() >= before+10 })
	victim := c.node(g.Primary)
	killed := time.Now()
	c.kill(victim)
	var first time.Time
	waitFor(t, 30*time.Second, "a write acknowledged after the primary was killed", func() bool {
		var ok bool
		first, ok = w.firstAckAfter(killed)
		return ok
	})
	return victim, first.Sub(killed)
}

func TestKillPrimaryWhileWriting(t *testing.T) {
	c := newCluster(t, 3)
	w := startWriter(c, "/w")
	victim, took := killPrimary(t, c, w)
	t.Logf("kill -9 of primary %s to first acknowledged write: %v", victim.name, took)
	n := w.count()
	waitFor(t, 20*time.Second, "writes to continue after failover", func() bool { return w.count() >= n+20 })

	// The old primary returns as a replica and catches up: once the
	// router shows all three in sync, it holds every acknowledged write.
	acked := w.halt()
	c.start(victim)
	g := c.waitGroup(3, victim.name)
	verifyAcked(t, c, acked)
	if g.Primary == victim.name {
		t.Fatalf("old primary %s leads again; want it to rejoin as a replica", victim.name)
	}
	out, _, _ := c.run("status")
	if !strings.Contains(out, victim.name) {
		t.Fatalf("status does not list %s:\n%s", victim.name, out)
	}

	// It holds the writes it missed: check its disk directly once every
	// process is killed.
	for _, p := range c.nodes {
		c.kill(p)
	}
	missing := checkDisk(t, filepath.Join(c.dir, victim.name), acked)
	if missing > 0 {
		t.Fatalf("restarted old primary lacks %d of %d acknowledged writes on disk", missing, len(acked))
	}

	// Whole-group restart keeps all data.
	for _, p := range c.nodes {
		c.start(p)
	}
	c.waitGroup(3, "")
	verifyAcked(t, c, acked)
}

// checkDisk opens a stopped node's store and counts acknowledged writes
// whose entries its log does not hold.
func checkDisk(t *testing.T, dir string, acked map[string]string) int {
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
	db.View(func(tx *bolt.Tx) error {
		for p, v := range acked {
			in, err := store.Lookup(tx, p)
			if err != nil || in.Hash != sha256hex(v) {
				missing++
			}
		}
		return nil
	})
	return missing
}

func sha256hex(s string) string {
	return meta.HashOf([]byte(s)).String() // one chunk: file hash == chunk hash
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
		t.Logf("run %d: killed %s, first acknowledged write after %v", i+1, victim.name, took)
		c.start(victim)
		c.waitGroup(3, "")
	}
	acked := w.halt()
	verifyAcked(t, c, acked)
	slices.Sort(times)
	t.Logf("failover over %d kills: median %v, min %v, max %v; %d acknowledged writes all readable",
		runs, times[len(times)/2], times[0], times[len(times)-1], len(acked))
}
