package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
	"shoal/store"
)

// The fault campaign. SHOAL_NEMESIS=1 runs the short one: a fixed set of
// seeds, each a schedule of faults over a 3-node group and a router in
// network namespaces while clients record every operation. Add
// SHOAL_NEMESIS_LONG=N for N more schedules with random seeds, and
// SHOAL_NEMESIS_SECONDS to change how long each injects faults.
//
// After each schedule the faults stop, the cluster heals, every path is
// read, and the checks run: the whole history, final reads included, must
// be linearizable (porcupine, with operations whose outcome was unknown
// allowed to have happened or not), which also proves that no
// acknowledged write was lost; and every member must end with the same
// namespace (digests of the stores, read after the processes stop).
func TestCampaign(t *testing.T) {
	needCampaign(t)
	seeds := []uint64{1, 2, 3, 4}
	if n, err := strconv.Atoi(os.Getenv("SHOAL_NEMESIS_LONG")); err == nil && n > 0 {
		base := uint64(time.Now().UnixNano())
		for i := range n {
			seeds = append(seeds, base+uint64(i))
		}
	}
	secs := 12
	if s, err := strconv.Atoi(os.Getenv("SHOAL_NEMESIS_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	var total campaignStats
	for i, seed := range seeds {
		ok := t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			st := runSchedule(t, 100+i%150, seed, time.Duration(secs)*time.Second)
			total.add(st)
		})
		if !ok {
			break
		}
	}
	t.Logf("campaign: %d schedules, %s", total.schedules, total.String())
}

// campaignStats counts what a campaign did.
type campaignStats struct {
	schedules, ops, acked, unknown, lost, violations int
	faults                                           map[Kind]int
}

func (s *campaignStats) add(o campaignStats) {
	s.schedules++
	s.ops += o.ops
	s.acked += o.acked
	s.unknown += o.unknown
	s.lost += o.lost
	s.violations += o.violations
	if s.faults == nil {
		s.faults = map[Kind]int{}
	}
	for k, n := range o.faults {
		s.faults[k] += n
	}
}

func (s *campaignStats) String() string {
	var fs []string
	for k := Kind(0); k < numKinds; k++ {
		fs = append(fs, fmt.Sprintf("%s %d", k, s.faults[k]))
	}
	return fmt.Sprintf("%d operations (%d acknowledged mutations, %d unknown), %d linearizability violations, faults: %s",
		s.ops, s.acked, s.unknown, s.violations, strings.Join(fs, ", "))
}

// keys are the files the clients fight over: few at a time, so
// operations collide. Renames and copies stay within a pair (k0-k1,
// k2-k3, k4-k5), so the history splits into independent parts the
// checker can take one at a time. The clients move on to six fresh paths
// (a new epoch, as Jepsen's independent keys do) every epochLength, and
// sooner once maxUnknown mutations of the epoch ended with an unknown
// outcome: the check of a part is exponential in its unknown outcomes (a
// part with 20 of them did not finish in 5 minutes; one with 15 took 9 s),
// so each part stays small however long the faults last. An operation of
// an earlier epoch that takes effect late still lands on its own paths,
// and is still checked.
const (
	keysPerEpoch = 6
	epochLength  = 8 * time.Second
	maxUnknown   = 6
)

// keyPath is key i of epoch e.
func keyPath(e, i int) string { return fmt.Sprintf("/k%d.e%d", i, e) }

// keyPaths lists every key of the first n epochs.
func keyPaths(n int) []string {
	var out []string
	for e := range n {
		for i := range keysPerEpoch {
			out = append(out, keyPath(e, i))
		}
	}
	return out
}

// keyspace says which epoch's keys the clients use.
type keyspace struct {
	mu      sync.Mutex
	epoch   int
	began   time.Time
	unknown int // mutations of this epoch with an unknown outcome
}

func newKeyspace() *keyspace { return &keyspace{began: time.Now()} }

// current is the epoch to take keys from now.
func (k *keyspace) current() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.began) >= epochLength {
		k.next()
	}
	return k.epoch
}

// noteUnknown counts a mutation on epoch e's keys whose outcome is
// unknown.
func (k *keyspace) noteUnknown(e int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e != k.epoch {
		return
	}
	if k.unknown++; k.unknown >= maxUnknown {
		k.next()
	}
}

func (k *keyspace) next() { k.epoch, k.began, k.unknown = k.epoch+1, time.Now(), 0 }

// paths lists the keys of every epoch so far.
func (k *keyspace) paths() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return keyPaths(k.epoch + 1)
}

func runSchedule(t *testing.T, k int, seed uint64, faultTime time.Duration) campaignStats {
	t.Logf("seed %d (replay: SHOAL_NEMESIS=1 go test ./nemesis -run 'TestCampaign/seed-%d$')", seed, seed)
	c := newTestCluster(t, k, 3,
		[]string{"--replace-after", "-1s", "--rpc-timeout", "1s"},
		[]string{"--request-timeout", "2s"})
	st := schedule{
		seed: seed, stream: 0x5eed, cd: plain, faultTime: faultTime,
		gap: 500 * time.Millisecond, hold: 1500 * time.Millisecond,
		inject:  injectInto(c),
		healthy: c.WaitHealthy, recovery: 60 * time.Second, checkTime: 60 * time.Second,
	}.run(t, c)
	checkConvergence(t, c)
	return st
}

// schedule is one run of a campaign: clients doing random operations
// through cd while faults hit the cluster for faultTime, then the
// cluster made whole again and the history with the final reads
// checked.
type schedule struct {
	seed   uint64
	stream uint64 // of the fault generator, seeded with seed
	cd     codec

	faultTime time.Duration
	// gap and hold bound the random time between faults (above 300 ms)
	// and how long each lasts (above 500 ms).
	gap, hold time.Duration
	// inject applies a random fault and returns its kind (for the
	// counts), how to undo it and what it did.
	inject func(ctx context.Context, r *rand.Rand) (Kind, func() error, string, error)

	// healthy waits until the cluster serves again after the faults,
	// within recovery.
	healthy  func(ctx context.Context) error
	recovery time.Duration
	// checkTime bounds the linearizability check; a check that runs out
	// of it fails the schedule as inconclusive.
	checkTime time.Duration
}

// run runs the schedule on c and fails t on a linearizability violation.
func (s schedule) run(t *testing.T, c *Cluster) campaignStats {
	t.Helper()
	rec := NewRecorder(nil)
	st := campaignStats{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var acked, unknown atomic.Int64
	keys := newKeyspace()
	for id := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runClient(ctx, c, rec, id, s.seed, s.cd, keys, &acked, &unknown)
		}()
	}
	st.faults = s.deal(t, ctx, stop)
	stop()
	wg.Wait()
	if err := c.Net.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := c.Restore(); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(context.Background(), s.recovery)
	defer cancel()
	if err := s.healthy(hctx); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	final := finalReads(t, c, s.cd, keys.paths())
	checkStart := time.Now()
	res, err := CheckFinal(rec.History(), final, s.checkTime)
	checked := time.Since(checkStart).Round(time.Millisecond)
	st.ops, st.acked, st.unknown = res.Ops, int(acked.Load()), int(unknown.Load())
	if err != nil || res.Verdict != VerdictOK {
		st.violations++
		files, werr := res.WriteReport(reportDir(t, s.seed))
		t.Fatalf("history of seed %d is not linearizable (%v, %v); history and visualisation: %v %v", s.seed, res, err, files, werr)
	}
	t.Logf("seed %d: %s, checked in %v; %d acknowledged mutations, %d unknown", s.seed, res, checked, st.acked, st.unknown)
	return st
}

// deal injects the schedule's faults for its faultTime, each held a
// random while and undone, and counts them by kind; it calls stop (the
// clients') before failing t.
func (s schedule) deal(t *testing.T, ctx context.Context, stop func()) map[Kind]int {
	t.Helper()
	faults := map[Kind]int{}
	r := rand.New(rand.NewPCG(s.seed, s.stream))
	end := time.Now().Add(s.faultTime)
	for time.Now().Before(end) {
		sleep(300*time.Millisecond + time.Duration(r.Int64N(int64(s.gap))))
		kind, undo, desc, err := s.inject(ctx, r)
		if err != nil {
			stop()
			t.Fatalf("inject a fault: %v", err)
		}
		faults[kind]++
		hold := 500*time.Millisecond + time.Duration(r.Int64N(int64(s.hold)))
		t.Logf("%s for %v", desc, hold)
		sleep(hold)
		if err := undo(); err != nil {
			stop()
			t.Fatalf("undo %s: %v", desc, err)
		}
	}
	return faults
}

// injectInto deals c.Inject's faults, of any kind.
func injectInto(c *Cluster) func(ctx context.Context, r *rand.Rand) (Kind, func() error, string, error) {
	return func(ctx context.Context, r *rand.Rand) (Kind, func() error, string, error) {
		kind := Kind(r.IntN(int(numKinds)))
		undo, desc, err := c.Inject(ctx, kind, r)
		return kind, undo, desc, err
	}
}

func sleep(d time.Duration) { time.Sleep(d) } // pacing of the schedule, not a wait for a condition

// codec turns the model's values into the content written and back.
type codec struct {
	encode func(v string) []byte
	decode func(b []byte) string
}

// plain writes a value as it is: a small file, kept inline.
var plain = codec{encode: func(v string) []byte { return []byte(v) }, decode: func(b []byte) string { return string(b) }}

// runClient performs random operations on the keys of the current epoch
// until ctx ends, recording each.
func runClient(ctx context.Context, c *Cluster, rec *Recorder, id int, seed uint64, cd codec, keys *keyspace, acked, unknown *atomic.Int64) {
	cl, err := c.Client(3*time.Second, -1)
	if err != nil {
		return
	}
	r := rand.New(rand.NewPCG(seed, uint64(id)+1))
	for n := 0; ctx.Err() == nil; n++ {
		e, i := keys.current(), r.IntN(keysPerEpoch)
		p, q := keyPath(e, i), keyPath(e, i^1)
		var op Op
		switch x := r.IntN(100); {
		case x < 35:
			op = Write(p, fmt.Sprintf("c%d-%d", id, n))
		case x < 65:
			op = Read(p)
		case x < 75:
			op = Delete(p)
		case x < 85:
			op = Exists(p)
		case x < 93:
			op = Rename(p, q)
		default:
			op = Copy(p, q)
		}
		pend := rec.Invoke(id, op)
		res, known := do(context.Background(), cl, op, cd)
		if !known {
			pend.Unknown()
			unknown.Add(1)
			if op.Kind != OpRead && op.Kind != OpExists {
				keys.noteUnknown(e)
			}
		} else {
			pend.Complete(res)
		}
		if !known || res.Status == StatusFailed {
			// The router or the group is down: do not flood the history
			// with attempts while it comes back.
			sleep(50 * time.Millisecond)
			continue
		}
		if res.Status == StatusOK && op.Kind != OpRead && op.Kind != OpExists {
			acked.Add(1)
		}
	}
}

// do runs op through the client and says what happened: a definite
// answer, or not known (a timeout, a broken connection, any 5xx: the
// router may have committed the op before failing).
func do(ctx context.Context, cl *client.Client, op Op, cd codec) (Result, bool) {
	var err error
	switch op.Kind {
	case OpWrite:
		b := cd.encode(op.Value)
		_, err = cl.Put(ctx, op.Path, bytes.NewReader(b), int64(len(b)))
	case OpRead:
		var b []byte
		b, err = cl.ReadFile(ctx, op.Path)
		if err == nil {
			return Found(cd.decode(b)), true
		}
	case OpDelete:
		err = cl.Delete(ctx, op.Path, false)
	case OpExists:
		var ok bool
		ok, err = cl.Exists(ctx, op.Path)
		if err == nil {
			return Present(ok), true
		}
	case OpRename:
		err = cl.Rename(ctx, op.Path, op.To)
	case OpCopy:
		err = cl.Copy(ctx, op.Path, op.To)
	}
	if err == nil {
		return OK(), true
	}
	if errors.Is(err, client.ErrUnreachable) {
		return Failed(err.Error()), true // no connection: the request was never sent
	}
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status >= 500 {
		return Result{}, false
	}
	if ae.Status == 404 {
		return NotFound(), true
	}
	return Failed(ae.Error()), true
}

// finalReads reads every path once the cluster is healthy, retrying until
// each read gets a definite answer.
func finalReads(t *testing.T, c *Cluster, cd codec, paths []string) map[string]FinalState {
	t.Helper()
	cl, err := c.Client(5*time.Second, -1)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]FinalState{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+time.Duration(len(paths))*50*time.Millisecond)
	defer cancel()
	for _, p := range paths {
		err := harness.WaitFor(ctx, "a definite answer to the final read of "+p, func() bool {
			res, known := do(context.Background(), cl, Read(p), cd)
			if known {
				out[p] = FinalState{Present: res.Status != StatusNotFound, Value: res.Value}
			}
			return known
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkConvergence stops the nodes once they had time to apply the last
// commit and compares their stores.
func checkConvergence(t *testing.T, c *Cluster) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		sleep(500 * time.Millisecond) // heartbeats carry the commit index every 100ms
		digests, applied := map[string]string{}, map[string]uint64{}
		c.Stop(0)
		for _, p := range c.Nodes {
			db, err := store.Open(c.DataDir(p))
			if err != nil {
				t.Fatalf("open %s's store: %v", p.Name, err)
			}
			d, derr := store.Digest(db)
			s, serr := db.State()
			db.Close()
			if derr != nil || serr != nil {
				t.Fatalf("%s: digest %v, state %v", p.Name, derr, serr)
			}
			digests[p.Name], applied[p.Name] = d, s.Applied
		}
		same := true
		for _, p := range c.Nodes[1:] {
			same = same && digests[p.Name] == digests[c.Nodes[0].Name]
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members did not converge: applied %v, digests %v", applied, digests)
		}
		// A member may have stopped before applying the last entries:
		// start everyone again and let the primary bring it up to date.
		if err := c.Restore(); err != nil {
			t.Fatal(err)
		}
		hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := c.WaitHealthy(hctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func reportDir(t *testing.T, seed uint64) string {
	dir := os.Getenv("SHOAL_NEMESIS_REPORTS")
	if dir == "" {
		dir = os.TempDir()
	}
	dir = fmt.Sprintf("%s/shoal-nemesis-seed-%d", dir, seed)
	os.MkdirAll(dir, 0o755)
	return dir
}
