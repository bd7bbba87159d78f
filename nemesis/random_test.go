package nemesis

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// simStore is an in-memory namespace of files that applies each operation
// atomically under its lock, so it is linearizable by construction,
// unless staleP > 0: then a read returns, with that probability, what the
// path held before its latest change (a lagging replica's answer).
// It is written apart from the model on purpose, so a mistake in one is
// not copied into the other.
type simStore struct {
	mu     sync.Mutex
	files  map[string]string
	before map[string]*string // a path's content before its latest change; nil: absent
	staleP float64
	rng    *rand.Rand // guarded by mu
}

func newSimStore(seed uint64, staleP float64) *simStore {
	return &simStore{files: map[string]string{}, before: map[string]*string{},
		staleP: staleP, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// set changes path, remembering what it held.
func (s *simStore) set(path string, value *string) {
	if old, ok := s.files[path]; ok {
		s.before[path] = &old
	} else {
		s.before[path] = nil
	}
	if value == nil {
		delete(s.files, path)
	} else {
		s.files[path] = *value
	}
}

func (s *simStore) do(op Op) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.files[op.Path]
	switch op.Kind {
	case OpWrite:
		s.set(op.Path, &op.Value)
		return OK()
	case OpRead:
		if old, changed := s.before[op.Path]; changed && s.staleP > 0 && s.rng.Float64() < s.staleP {
			v, ok = "", old != nil
			if ok {
				v = *old
			}
		}
		if !ok {
			return NotFound()
		}
		return Found(v)
	case OpExists:
		return Present(ok)
	}
	if !ok {
		return NotFound() // delete, rename and copy of an absent file
	}
	switch op.Kind {
	case OpDelete:
		s.set(op.Path, nil)
	case OpRename:
		if op.To != op.Path {
			s.set(op.To, &v)
			s.set(op.Path, nil)
		}
	case OpCopy:
		s.set(op.To, &v)
	}
	return OK()
}

// snapshot is the store's content as final reads would see it.
func (s *simStore) snapshot(paths []string) map[string]FinalState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]FinalState{}
	for _, p := range paths {
		v, ok := s.files[p]
		out[p] = FinalState{Present: ok, Value: v}
	}
	return out
}

// simPaths are three independent pairs: renames and copies stay within a
// pair, so a history splits into three partitions.
var simPaths = [][2]string{{"/p0/a", "/p0/b"}, {"/p1/a", "/p1/b"}, {"/p2/a", "/p2/b"}}

func allSimPaths() []string {
	var out []string
	for _, pair := range simPaths {
		out = append(out, pair[0], pair[1])
	}
	return out
}

func randomOp(rng *rand.Rand, client, i int) Op {
	pair := simPaths[rng.IntN(len(simPaths))]
	from, to := pair[0], pair[1]
	if rng.IntN(2) == 0 {
		from, to = to, from
	}
	switch x := rng.IntN(100); {
	case x < 30:
		return Write(from, fmt.Sprintf("c%d.%d", client, i))
	case x < 65:
		return Read(from)
	case x < 75:
		return Delete(from)
	case x < 85:
		return Exists(from)
	case x < 93:
		return Rename(from, to)
	default:
		return Copy(from, to)
	}
}

// runSim runs clients goroutines of ops operations each against s,
// recording the history. About one operation in twenty has an unknown
// outcome: its request lost (never applied), its answer lost (applied),
// or applied late, after the client gave up.
func runSim(seed uint64, s *simStore, clients, ops int) []Event {
	rec := NewRecorder(nil)
	var wg, late sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			for i := range ops {
				op := randomOp(rng, c, i)
				p := rec.Invoke(c, op)
				runtime.Gosched() // widen the window for other clients
				switch x := rng.IntN(100); {
				case x < 2:
					p.Unknown()
				case x < 4:
					s.do(op)
					p.Unknown()
				case x < 5:
					p.Unknown()
					late.Go(func() {
						runtime.Gosched()
						s.do(op)
					})
				default:
					res := s.do(op)
					runtime.Gosched()
					p.Complete(res)
				}
			}
		})
	}
	wg.Wait()
	late.Wait()
	return rec.History()
}

const (
	simClients = 4
	simOps     = 150
	simTimeout = 20 * time.Second
)

func TestRandomLinearizableStorePasses(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		s := newSimStore(seed, 0)
		events := runSim(seed, s, simClients, simOps)
		start := time.Now()
		res, err := CheckFinal(events, s.snapshot(allSimPaths()), simTimeout)
		t.Logf("seed %d: %s in %v", seed, res, time.Since(start).Round(time.Millisecond))
		if err != nil {
			paths, werr := res.WriteReport(t.ArtifactDir())
			t.Fatalf("seed %d: a linearizable store failed the check: %v (report %v %v)", seed, err, paths, werr)
		}
	}
}

func TestRandomStaleStoreCaught(t *testing.T) {
	const seeds = 20
	for seed := uint64(1); seed <= seeds; seed++ {
		events := runSim(seed, newSimStore(seed, 0.1), simClients, simOps)
		start := time.Now()
		res, err := Check(events, simTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %s in %v", seed, res, time.Since(start).Round(time.Millisecond))
		if res.Verdict == VerdictIllegal {
			paths, err := res.WriteReport(t.ArtifactDir())
			if err != nil || len(paths) != 2 {
				t.Fatalf("report %v: %v", paths, err)
			}
			return
		}
	}
	t.Fatalf("a store that serves stale reads passed %d seeds", seeds)
}
