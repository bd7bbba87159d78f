package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/wire"
)

// fakePrimary answers a readBatcher's calls: a read of path /N gets inode
// N, one of /bad an error of its own; a call waits while held.
type fakePrimary struct {
	mu      sync.Mutex
	alone   []string   // paths read alone, in call order
	batches [][]string // paths of each batch, in call order
	hold    chan struct{}
	failAll error // every batch fails with this
	inMany  func(ctx context.Context)
}

func (f *fakePrimary) answer(m *wire.Read) (wire.ReadResp, *wire.ErrorMsg) {
	if m.Path == "/bad" {
		return wire.ReadResp{}, wire.BatchError(fmt.Errorf("%w: /bad", meta.ErrInvalid))
	}
	var ino uint64
	fmt.Sscanf(m.Path, "/%d", &ino)
	return wire.ReadResp{Inode: meta.Inode{Ino: ino}}, nil
}

func (f *fakePrimary) wait(ctx context.Context) error {
	if f.hold == nil {
		return nil
	}
	select {
	case <-f.hold:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakePrimary) one(ctx context.Context, m *wire.Read) (*wire.ReadResp, error) {
	f.mu.Lock()
	f.alone = append(f.alone, m.Path)
	f.mu.Unlock()
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	r, e := f.answer(m)
	if e != nil {
		return nil, errors.New(e.Message)
	}
	return &r, nil
}

func (f *fakePrimary) many(ctx context.Context, reads []*wire.Read) ([]*wire.ReadResp, []error, error) {
	paths := make([]string, len(reads))
	for i := range reads {
		paths[i] = reads[i].Path
	}
	f.mu.Lock()
	f.batches = append(f.batches, paths)
	f.mu.Unlock()
	if f.inMany != nil {
		f.inMany(ctx)
	}
	if f.failAll != nil {
		return nil, nil, f.failAll
	}
	resp := &wire.ReadBatchResp{Resps: make([]wire.ReadResp, len(reads))}
	for i := range reads {
		var e *wire.ErrorMsg
		if resp.Resps[i], e = f.answer(reads[i]); e != nil {
			if resp.Errs == nil {
				resp.Errs = make([]*wire.ErrorMsg, len(reads))
			}
			resp.Errs[i] = e
		}
	}
	as := make([]*wire.ReadResp, len(reads))
	for i := range as {
		as[i] = &resp.Resps[i]
	}
	return as, wire.BatchErrors(resp.Errs), nil
}

func (f *fakePrimary) calls() (alone []string, batches [][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.alone), slices.Clone(f.batches)
}

func newTestBatcher(f *fakePrimary, flights int) (*readBatcher, *[]int) {
	var mu sync.Mutex
	var sent []int
	return &readBatcher{flights: flights, max: wire.MaxReadBatch, timeout: time.Minute, one: f.one, many: f.many, sent: func(n int) {
		mu.Lock()
		sent = append(sent, n)
		mu.Unlock()
	}}, &sent
}

// waitQueued waits until n reads wait in b's queue.
func waitQueued(t *testing.T, b *readBatcher, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := harness.WaitFor(ctx, fmt.Sprintf("%d reads waiting for a call to come back", n), func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queue) == n
	}); err != nil {
		t.Fatal(err)
	}
}

func outNow(b *readBatcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out
}

// waitOut waits until n calls of b are out.
func waitOut(t *testing.T, b *readBatcher, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := harness.WaitFor(ctx, fmt.Sprintf("%d calls out", n), func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.out == n
	}); err != nil {
		t.Fatal(err)
	}
}

// oneOut returns a batcher allowed one call at a time, with that call
// out: a read of /0 that f holds until release, which then waits for
// its answer.
func oneOut(t *testing.T, f *fakePrimary) (b *readBatcher, sent *[]int, release func()) {
	t.Helper()
	f.hold = make(chan struct{})
	b, sent = newTestBatcher(f, 1)
	first := startReads(context.Background(), b, "/0")
	waitOut(t, b, 1)
	return b, sent, func() {
		close(f.hold)
		if r := <-first; r.err != nil || r.resp.Inode.Ino != 0 {
			t.Errorf("the read held first: %+v", r)
		}
	}
}

type readResult struct {
	path string
	resp *wire.ReadResp
	err  error
}

// startReads starts a read of each path through b and returns a channel of
// their results.
func startReads(ctx context.Context, b *readBatcher, paths ...string) chan readResult {
	out := make(chan readResult, len(paths))
	for _, p := range paths {
		go func() {
			resp, err := b.do(ctx, &wire.Read{Kind: wire.ReadLookup, Path: p})
			out <- readResult{p, resp, err}
		}()
	}
	return out
}

// A read that finds a call free goes alone and at once: one client never
// waits for another.
func TestLoneReadGoesAlone(t *testing.T) {
	f := &fakePrimary{}
	b, sent := newTestBatcher(f, 2)
	for i := range 3 {
		resp, err := b.do(context.Background(), &wire.Read{Kind: wire.ReadLookup, Path: fmt.Sprintf("/%d", 7+i)})
		if err != nil || resp.Inode.Ino != uint64(7+i) {
			t.Fatalf("read %d: %+v, %v", i, resp, err)
		}
	}
	if alone, batches := f.calls(); len(alone) != 3 || len(batches) != 0 {
		t.Errorf("three reads one after the other: %d calls alone, %d batches; want 3 alone", len(alone), len(batches))
	}
	if !slices.Equal(*sent, []int{1, 1, 1}) || outNow(b) != 0 {
		t.Errorf("calls counted %v, %d still out; want three of one read and none out", *sent, outNow(b))
	}
}

// Reads that arrive while every call is out wait, and go together in one
// batch when a call comes back; each gets its own answer, or its own
// error.
func TestWaitingReadsGoInOneBatch(t *testing.T) {
	f := &fakePrimary{}
	b, sent, release := oneOut(t, f)
	ctx := context.Background()
	rest := startReads(ctx, b, "/2", "/3", "/bad", "/5")
	waitQueued(t, b, 4)
	release()
	for range 4 {
		r := <-rest
		switch {
		case r.path == "/bad":
			if !errors.Is(r.err, meta.ErrInvalid) {
				t.Errorf("/bad in a batch: %v, want its own error", r.err)
			}
		case r.err != nil:
			t.Errorf("%s in a batch with a read that failed: %v", r.path, r.err)
		case fmt.Sprintf("/%d", r.resp.Inode.Ino) != r.path:
			t.Errorf("%s answered with inode %d", r.path, r.resp.Inode.Ino)
		}
	}
	alone, batches := f.calls()
	if len(alone) != 1 || len(batches) != 1 || len(batches[0]) != 4 {
		t.Fatalf("calls alone %v, batches %v: want /0 alone and the four others in one batch", alone, batches)
	}
	if got := slices.Sorted(slices.Values(batches[0])); !slices.Equal(got, []string{"/2", "/3", "/5", "/bad"}) {
		t.Errorf("the batch held %v", got)
	}
	waitOut(t, b, 0)
	if !slices.Equal(*sent, []int{1, 4}) {
		t.Errorf("calls counted %v: want one of 1 read, one of 4", *sent)
	}
}

// A batch that fails fails each of its reads; a read that gives up while
// it waits leaves the queue and is never sent; a batch holds at most
// wire.MaxReadBatch reads, the rest going in the next.
func TestBatchFailuresAndBounds(t *testing.T) {
	t.Run("batch fails", func(t *testing.T) {
		f := &fakePrimary{failAll: fmt.Errorf("%w: elsewhere", wire.ErrNotPrimary)}
		b, _, release := oneOut(t, f)
		rest := startReads(context.Background(), b, "/2", "/3")
		waitQueued(t, b, 2)
		release()
		for range 2 {
			if r := <-rest; !errors.Is(r.err, wire.ErrNotPrimary) {
				t.Errorf("%s in a batch that failed: %+v, want the batch's error", r.path, r)
			}
		}
		waitOut(t, b, 0)
	})
	t.Run("reader gives up", func(t *testing.T) {
		f := &fakePrimary{}
		b, _, release := oneOut(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		gone := startReads(ctx, b, "/2")
		waitQueued(t, b, 1)
		cancel()
		if r := <-gone; !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, ErrUnavailable) {
			t.Errorf("a waiting read whose caller went away: %+v, want canceled and unavailable, as a lone call's", r)
		}
		waitQueued(t, b, 0)
		release()
		if alone, batches := f.calls(); len(alone) != 1 || len(batches) != 0 || outNow(b) != 0 {
			t.Errorf("calls alone %v, batches %v, %d out: want only /0 sent", alone, batches, outNow(b))
		}
	})
	t.Run("bounded", func(t *testing.T) {
		f := &fakePrimary{}
		b, _, release := oneOut(t, f)
		paths := make([]string, wire.MaxReadBatch+6)
		for i := range paths {
			paths[i] = fmt.Sprintf("/%d", i+1)
		}
		rest := startReads(context.Background(), b, paths...)
		waitQueued(t, b, len(paths))
		release()
		for range paths {
			if r := <-rest; r.err != nil || fmt.Sprintf("/%d", r.resp.Inode.Ino) != r.path {
				t.Errorf("%s: %+v", r.path, r)
			}
		}
		_, batches := f.calls()
		if len(batches) != 2 || len(batches[0]) != wire.MaxReadBatch || len(batches[1]) != 6 {
			t.Errorf("batches of %d reads: want one of %d, then one of 6", len(batches), wire.MaxReadBatch)
		}
	})
	t.Run("primary without batches", func(t *testing.T) {
		// A storage node of a version that knows no ReadBatch refuses
		// it as a bad message: each of its reads then goes alone.
		f := &fakePrimary{failAll: fmt.Errorf("%w: unknown message type 30", wire.ErrBadMessage)}
		b, _, release := oneOut(t, f)
		rest := startReads(context.Background(), b, "/2", "/3", "/bad")
		waitQueued(t, b, 3)
		release()
		for range 3 {
			r := <-rest
			if r.path == "/bad" {
				if r.err == nil {
					t.Errorf("/bad sent alone after the batch was refused: no error")
				}
			} else if r.err != nil || fmt.Sprintf("/%d", r.resp.Inode.Ino) != r.path {
				t.Errorf("%s sent alone after the batch was refused: %+v", r.path, r)
			}
		}
		waitOut(t, b, 0)
		alone, batches := f.calls()
		if len(batches) != 1 || len(alone) != 4 {
			t.Errorf("calls alone %v, batches %v: want the batch refused, then each of its reads alone", alone, batches)
		}
		// For a while, every read goes alone at once, whatever is out.
		f.hold = make(chan struct{})
		held := startReads(context.Background(), b, "/7", "/8", "/9")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := harness.WaitFor(ctx, "three more reads sent alone", func() bool { a, _ := f.calls(); return len(a) == 7 }); err != nil {
			t.Fatal(err)
		}
		close(f.hold)
		for range 3 {
			if r := <-held; r.err != nil {
				t.Errorf("%s sent alone to a primary that refused a batch: %v", r.path, r.err)
			}
		}
		if _, batches := f.calls(); len(batches) != 1 {
			t.Errorf("%d batches: want none tried again so soon after one was refused", len(batches))
		}
	})
	t.Run("reader in a batch gives up", func(t *testing.T) {
		// A read whose caller goes away once it is in a batch returns
		// at once; the batch goes on for the others.
		f := &fakePrimary{}
		b, _, release := oneOut(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		gone := startReads(ctx, b, "/2")
		waitQueued(t, b, 1)
		other := startReads(context.Background(), b, "/3")
		waitQueued(t, b, 2)
		f.inMany = func(ctx context.Context) {
			cancel()
			select {
			case r := <-gone:
				if !errors.Is(r.err, context.Canceled) {
					t.Errorf("/2, its caller gone while its batch was out: %+v, want canceled", r)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("/2, its caller gone while its batch was out, still waits for the batch after 10 s")
			}
			if ctx.Err() != nil {
				t.Errorf("the batch's call was canceled with the caller of one of its reads")
			}
		}
		release()
		if r := <-other; r.err != nil || r.resp.Inode.Ino != 3 {
			t.Errorf("/3, in the batch with /2: %+v", r)
		}
		waitOut(t, b, 0)
	})
	t.Run("out of time", func(t *testing.T) {
		// Reads that waited behind a call to a primary that did not
		// answer get no more than one read's time, and are told the
		// primary is unavailable.
		f := &fakePrimary{}
		b, _, release := oneOut(t, f)
		b.timeout = time.Millisecond
		rest := startReads(context.Background(), b, "/2", "/3")
		waitQueued(t, b, 2)
		f.inMany = func(ctx context.Context) {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Errorf("the batch's call had no deadline 10 s after its reads began to wait")
			}
		}
		f.failAll = context.DeadlineExceeded
		release()
		for range 2 {
			if r := <-rest; !errors.Is(r.err, ErrUnavailable) {
				t.Errorf("%s in a batch out of time: %+v, want unavailable", r.path, r)
			}
		}
		waitOut(t, b, 0)
	})
}

// An op of a batch that failed for a reason a lone call would retry (the
// primary stepped down before applying it) is sent again alone, its
// request ID making that safe, unless its caller has stopped waiting;
// one that failed for a reason of its own gets that error; the others
// their results.
func TestOpsSentAgainAlone(t *testing.T) {
	var mu sync.Mutex
	var alone []string
	var batches [][]string
	hold := make(chan struct{})
	// /gone's caller stops waiting while its batch is out.
	goneCtx, goneCancel := context.WithCancel(context.Background())
	goneDone := make(chan error, 1)
	answer := func(op meta.Op) meta.Result {
		var ino uint64
		fmt.Sscanf(op.Path, "/%d", &ino)
		return meta.Result{Inode: &meta.Inode{Ino: ino}}
	}
	b := &proposeBatcher{flights: 1, max: wire.MaxProposeBatch, timeout: time.Minute,
		again: func(err error) bool { return tryAgain(err, true) },
		one: func(ctx context.Context, op meta.Op) (meta.Result, error) {
			mu.Lock()
			alone = append(alone, op.Path)
			mu.Unlock()
			if op.Path == "/0" {
				<-hold
			}
			return answer(op), nil
		},
		many: func(ctx context.Context, ops []meta.Op) ([]meta.Result, []error, error) {
			paths := make([]string, len(ops))
			rs := make([]meta.Result, len(ops))
			errs := make([]*wire.ErrorMsg, len(ops))
			for i, op := range ops {
				paths[i] = op.Path
				switch op.Path {
				case "/lost":
					errs[i] = wire.BatchError(fmt.Errorf("%w: the primary stepped down before the entry was applied", wire.ErrDeposed))
				case "/full":
					errs[i] = wire.BatchError(fmt.Errorf("%w: the group has no room", meta.ErrNoSpace))
				case "/gone":
					goneCancel()
					if err := <-goneDone; !errors.Is(err, context.Canceled) {
						t.Errorf("/gone, its caller gone while its batch was out: %v, want canceled", err)
					}
					errs[i] = wire.BatchError(fmt.Errorf("%w: the primary stepped down before the entry was applied", wire.ErrDeposed))
				default:
					rs[i] = answer(op)
				}
			}
			mu.Lock()
			batches = append(batches, paths)
			mu.Unlock()
			resp := &wire.ProposeBatchResp{Results: rs, Errs: errs}
			return resp.Results, wire.BatchErrors(resp.Errs), nil
		}}
	type res struct {
		path string
		r    meta.Result
		err  error
	}
	start := func(paths ...string) chan res {
		out := make(chan res, len(paths))
		for _, p := range paths {
			go func() {
				r, err := b.do(context.Background(), meta.Op{Kind: meta.OpMkdir, Path: p, ReqID: "id" + p})
				out <- res{p, r, err}
			}()
		}
		return out
	}
	first := start("/0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := harness.WaitFor(ctx, "/0 sent alone", func() bool { mu.Lock(); defer mu.Unlock(); return len(alone) == 1 }); err != nil {
		t.Fatal(err)
	}
	rest := start("/2", "/lost", "/full", "/5")
	go func() {
		_, err := b.do(goneCtx, meta.Op{Kind: meta.OpMkdir, Path: "/gone", ReqID: "id/gone"})
		goneDone <- err
	}()
	if err := harness.WaitFor(ctx, "five ops waiting", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == 5 }); err != nil {
		t.Fatal(err)
	}
	close(hold)
	if r := <-first; r.err != nil || r.r.Inode.Ino != 0 {
		t.Errorf("/0: %+v", r)
	}
	for range 4 {
		r := <-rest
		switch r.path {
		case "/full":
			if !errors.Is(r.err, meta.ErrNoSpace) {
				t.Errorf("/full: %v, want its own error, no room", r.err)
			}
		case "/lost":
			if r.err != nil {
				t.Errorf("/lost, its primary deposed in the batch: %v, want it sent again and answered", r.err)
			}
		default:
			if r.err != nil || fmt.Sprintf("/%d", r.r.Inode.Ino) != r.path {
				t.Errorf("%s: %+v", r.path, r)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 1 || len(batches[0]) != 5 || !slices.Equal(alone, []string{"/0", "/lost"}) {
		t.Errorf("batches %v, alone %v: want the five in one batch, then /lost alone (not /gone, whose caller left)", batches, alone)
	}
}

// Only an op that is safe to send again and small goes in a batch: a
// file of many chunks alone comes near the largest frame.
func TestBatchableOps(t *testing.T) {
	chunks := func(n int) *meta.Inode { return &meta.Inode{Chunks: make([]meta.ChunkRef, n)} }
	for _, c := range []struct {
		why  string
		op   meta.Op
		want bool
	}{
		{"a mkdir with a request ID", meta.Op{Kind: meta.OpMkdir, Path: "/d", ReqID: "r"}, true},
		{"a mkdir without one", meta.Op{Kind: meta.OpMkdir, Path: "/d"}, false},
		{"a put of a file of 1024 chunks", meta.Op{Kind: meta.OpPut, Path: "/f", ReqID: "r", File: chunks(maxBatchedChunks)}, true},
		{"a put of a file of 1025 chunks", meta.Op{Kind: meta.OpPut, Path: "/f", ReqID: "r", File: chunks(maxBatchedChunks + 1)}, false},
		{"a rename", meta.Op{Kind: meta.OpRename, Path: "/d", To: "/e", ReqID: "r"}, true},
		{"a copy, which may copy a tree", meta.Op{Kind: meta.OpCopy, Path: "/d", To: "/e", ReqID: "r"}, false},
		{"a delete", meta.Op{Kind: meta.OpDelete, Path: "/d", ReqID: "r"}, true},
		{"a recursive delete", meta.Op{Kind: meta.OpDelete, Path: "/d", ReqID: "r", Recursive: true}, false},
	} {
		if got := batchable(c.op); got != c.want {
			t.Errorf("%s: batchable %v, want %v", c.why, got, c.want)
		}
	}
	// The largest batch of the largest ops that may go in one fits a
	// frame.
	op := meta.Op{Kind: meta.OpPut, Path: "/" + strings.Repeat("n", 4000), ReqID: strings.Repeat("r", meta.MaxRequestID),
		File: &meta.Inode{Chunks: make([]meta.ChunkRef, maxBatchedChunks), Data: make([]byte, MaxInline)}}
	for i := range op.File.Chunks {
		op.File.Chunks[i] = meta.ChunkRef{Hash: meta.HashOf([]byte{byte(i), byte(i >> 8)}), Size: 4 << 20,
			Group: strings.Repeat("g", 64), Key: 1 << 31, Tag: strings.Repeat("t", 16)}
	}
	ops := make([]meta.Op, wire.MaxProposeBatch)
	for i := range ops {
		ops[i] = op
	}
	b, err := wire.Encode(&wire.ProposeBatch{Group: "g1", Ops: ops})
	if err != nil || len(b) > wire.MaxFrame {
		t.Errorf("a batch of %d of the largest batchable ops: %d bytes, %v; want under %d", len(ops), len(b), err, wire.MaxFrame)
	}
}
