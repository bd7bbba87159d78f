package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/client"
)

// The lock campaign: clients take one lock, read a counter, write it
// back one higher with the lease's fencing token and release, while the
// nemesis kills, pauses and cuts off primaries and the router. One time
// in six a client stalls past its lease before writing, as a paused
// process would, and writes anyway. The checks, from what each client saw and when:
//
//   - no two holders at once: the spans in which clients held the lock,
//     each from the grant's answer to the release's sending or the end
//     of the lease as the client counts it, never overlap;
//   - no fenced write accepted after a newer grant: no write with token T
//     was acknowledged if it was sent after a grant of a token above T
//     had been answered;
//   - no lost increment: no two acknowledged writes wrote the same value,
//     and the final counter is at least the highest of them.
func TestLockCampaign(t *testing.T) {
	needCampaign(t)
	seeds := []uint64{11, 12}
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
	for i, seed := range seeds {
		if !t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			runLockSchedule(t, 60+i%40, seed, time.Duration(secs)*time.Second)
		}) {
			break
		}
	}
}

// lockSpan is one grant as its client saw it.
type lockSpan struct {
	client   int
	token    uint64
	from, to time.Time // the grant's answer; the release sent, or the lease's end as counted
}

// fencedWrite is one write sent with a token.
type fencedWrite struct {
	client int
	token  uint64
	value  int
	sent   time.Time
	acked  bool
	fenced bool // refused: its lease was over
}

type lockLog struct {
	mu     sync.Mutex
	spans  []lockSpan
	writes []fencedWrite
	grants []lockSpan // every grant, by when its answer came
}

const (
	lockTTL  = 1500 * time.Millisecond
	lockPath = "/lock"
	counter  = "/counter"
)

func runLockSchedule(t *testing.T, k int, seed uint64, faultTime time.Duration) {
	t.Logf("seed %d (replay: SHOAL_NEMESIS=1 go test ./nemesis -run 'TestLockCampaign/seed-%d$')", seed, seed)
	c := newTestCluster(t, k, 3, []string{"--replace-after", "-1s", "--rpc-timeout", "1s"}, []string{"--request-timeout", "2s"})
	setup, err := c.Client(10*time.Second, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{lockPath, counter} {
		if _, err := setup.Put(ctx, p, strings.NewReader("0"), 1); err != nil {
			t.Fatal(err)
		}
	}
	log := &lockLog{}
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for id := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lockClient(cctx, c, log, id, seed)
		}()
	}
	dealt := schedule{seed: seed, stream: 0x10c4, faultTime: faultTime, gap: 500 * time.Millisecond, hold: 1500 * time.Millisecond,
		inject: injectInto(c)}.deal(t, ctx, stop)
	faults := 0
	for _, n := range dealt {
		faults += n
	}
	stop()
	wg.Wait()
	if err := c.Net.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := c.Restore(); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.WaitHealthy(hctx); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	var final []byte
	for {
		if final, err = setup.ReadFile(hctx, counter); err == nil || hctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("read the counter after the faults: %v", err)
	}
	finalValue, _ := strconv.Atoi(string(final))
	if msg := checkLocks(log, finalValue); msg != "" {
		t.Fatal(msg)
	}
	acked, fenced := 0, 0
	for _, w := range log.writes {
		if w.acked {
			acked++
		}
		if w.fenced {
			fenced++
		}
	}
	t.Logf("seed %d: %d faults, %d grants, %d fenced writes sent, %d acknowledged, %d refused as fenced, final counter %d; no two holders at once, no fenced write after a newer grant, no lost increment",
		seed, faults, len(log.grants), len(log.writes), acked, fenced, finalValue)
	if len(log.grants) < 3 || acked < 2 {
		t.Fatalf("too little got through to check anything: %d grants, %d acknowledged writes", len(log.grants), acked)
	}
}

// lockClient takes the lock, increments the counter under it and lets
// it go, over and over until ctx ends.
func lockClient(ctx context.Context, c *Cluster, log *lockLog, id int, seed uint64) {
	cl, err := c.Client(3*time.Second, -1)
	if err != nil {
		return
	}
	r := rand.New(rand.NewPCG(seed, uint64(id)+100))
	for ctx.Err() == nil {
		lease, err := cl.Lock(ctx, lockPath, client.LockOptions{TTL: lockTTL, Wait: 2 * time.Second, Owner: fmt.Sprint("client-", id)})
		if err != nil {
			sleep(20 * time.Millisecond)
			continue
		}
		got := time.Now()
		log.mu.Lock()
		log.grants = append(log.grants, lockSpan{client: id, token: lease.Token, from: got})
		log.mu.Unlock()
		held := lockSpan{client: id, token: lease.Token, from: got, to: lease.ValidUntil()}
		fctx := client.WithFence(ctx, lease.Token)
		b, err := cl.ReadFile(fctx, counter)
		stalled := err == nil && r.IntN(6) == 0
		if stalled {
			// A stall past the lease, as a paused process has: the write
			// that follows must be refused if the lock moved on.
			sleep(lockTTL + 500*time.Millisecond)
		}
		if err == nil && (lease.Valid() || stalled) {
			v, _ := strconv.Atoi(string(b))
			w := fencedWrite{client: id, token: lease.Token, value: v + 1, sent: time.Now()}
			_, err = cl.Put(fctx, counter, bytes.NewReader([]byte(strconv.Itoa(v+1))), -1)
			w.acked, w.fenced = err == nil, errors.Is(err, client.ErrFenced)
			log.mu.Lock()
			log.writes = append(log.writes, w)
			log.mu.Unlock()
			if err != nil && !errors.Is(err, client.ErrFenced) {
				sleep(20 * time.Millisecond)
			}
		}
		if released := time.Now(); released.Before(held.to) {
			held.to = released
		}
		log.mu.Lock()
		log.spans = append(log.spans, held)
		log.mu.Unlock()
		lease.Release(ctx)
	}
}

// checkLocks returns what the log shows went wrong, "" if nothing.
func checkLocks(log *lockLog, final int) string {
	spans := slices.Clone(log.spans)
	slices.SortFunc(spans, func(a, b lockSpan) int { return a.from.Compare(b.from) })
	for i := 1; i < len(spans); i++ {
		for j := range i {
			if a, b := spans[j], spans[i]; a.to.After(b.from) && b.to.After(a.from) {
				return fmt.Sprintf("two holders at once: client %d with token %d held it %v–%v, client %d with token %d from %v",
					a.client, a.token, a.from.Format(time.StampMicro), a.to.Format(time.StampMicro), b.client, b.token, b.from.Format(time.StampMicro))
			}
		}
	}
	for _, w := range log.writes {
		if !w.acked {
			continue
		}
		for _, g := range log.grants {
			if g.token > w.token && g.from.Before(w.sent) {
				return fmt.Sprintf("a fenced write with token %d (client %d, sent %v) was accepted after token %d had been granted (at %v)",
					w.token, w.client, w.sent.Format(time.StampMicro), g.token, g.from.Format(time.StampMicro))
			}
		}
	}
	seen := map[int]fencedWrite{}
	highest := 0
	for _, w := range log.writes {
		if !w.acked {
			continue
		}
		if o, dup := seen[w.value]; dup {
			return fmt.Sprintf("lost increment: tokens %d (client %d) and %d (client %d) both wrote %d", o.token, o.client, w.token, w.client, w.value)
		}
		seen[w.value] = w
		highest = max(highest, w.value)
	}
	if final < highest {
		return fmt.Sprintf("the counter ends at %d, below the acknowledged write of %d", final, highest)
	}
	return ""
}
