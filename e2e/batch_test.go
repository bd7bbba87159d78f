package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
)

// Many clients through one router send their quick reads and their
// changes to the primary in batches (subtests below), each answered as
// it would be alone.
func TestManySmallCallsAtOnce(t *testing.T) {
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}},
		RouterFlags: []string{"--metrics", "127.0.0.1:0"}})
	metrics := metricsURL(t, c.Router) + "/metrics"
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Run("reads", func(t *testing.T) { manySmallReadsAtOnce(ctx, t, cl, metrics) })
	t.Run("changes", func(t *testing.T) { manySmallChangesAtOnce(ctx, t, cl, metrics) })
}

// Many clients reading small files at once through one router: their
// lookups reach the primary in batches (the router's metrics count fewer
// calls than reads), and each read still gets its own answer: every file
// its content, a missing name not found, and a file read right after its
// writer wrote it the new content.
func manySmallReadsAtOnce(ctx context.Context, t *testing.T, cl *client.Client, metrics string) {
	const files, clients, reads = 60, 24, 40
	for i := range files {
		data := randomBytes(uint64(i), 1000)
		if _, err := cl.Put(ctx, fmt.Sprintf("/rb/f%d", i), bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	before := routerCalls(t, metrics, "read")

	var wg sync.WaitGroup
	for g := range clients {
		wg.Go(func() {
			own := fmt.Sprintf("/rb/own%d", g)
			for j := range reads {
				i := (g*7 + j) % files
				p := fmt.Sprintf("/rb/f%d", i)
				got, err := cl.ReadFile(ctx, p)
				if err != nil || !bytes.Equal(got, randomBytes(uint64(i), 1000)) {
					t.Errorf("client %d: %s: %d bytes, %v; want its own 1000", g, p, len(got), err)
					return
				}
				switch j % 8 {
				case 3:
					if _, err := cl.Stat(ctx, fmt.Sprintf("/rb/missing%d", j)); !errors.Is(err, client.ErrNotFound) {
						t.Errorf("client %d: stat of a missing file: %v, want not found", g, err)
						return
					}
				case 5:
					want := fmt.Sprintf("client %d, round %d", g, j)
					if _, err := cl.Put(ctx, own, strings.NewReader(want), int64(len(want))); err != nil {
						t.Errorf("client %d: put %s: %v", g, own, err)
						return
					}
					if got, err := cl.ReadFile(ctx, own); err != nil || string(got) != want {
						t.Errorf("client %d: %s read right after it was written: %q, %v; want %q", g, own, got, err, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	after := routerCalls(t, metrics, "read")
	sent, calls := after.items-before.items, after.calls-before.calls
	t.Logf("%d quick reads sent to the primary in %d calls (%.2f per call)", int(sent), int(calls), sent/calls)
	if sent < clients*reads {
		t.Errorf("%v quick reads counted by the router, want at least the %d files read", sent, clients*reads)
	}
	if calls >= sent {
		t.Errorf("%v reads in %v calls: %d clients reading at once never shared a call", sent, calls, clients)
	}
}

// Many clients changing the namespace at once through one router: their
// ops reach the primary in batches (the router's metrics count fewer
// calls than ops), and each is committed as it would be alone: each
// client's own files made, renamed and removed as it asked, and of
// clients racing for one name exactly one winning and every other told
// why it lost.
func manySmallChangesAtOnce(ctx context.Context, t *testing.T, cl *client.Client, metrics string) {
	const clients, rounds = 24, 12
	if err := cl.Mkdir(ctx, "/pb", false); err != nil {
		t.Fatal(err)
	}
	before := routerCalls(t, metrics, "op")

	var won, lost [rounds]atomic.Int32
	var wg sync.WaitGroup
	for g := range clients {
		wg.Go(func() {
			dir := fmt.Sprintf("/pb/c%d", g)
			if err := cl.Mkdir(ctx, dir, false); err != nil {
				t.Errorf("client %d: mkdir %s: %v", g, dir, err)
				return
			}
			for j := range rounds {
				f := fmt.Sprintf("%s/f%d", dir, j)
				body := fmt.Sprintf("client %d, file %d", g, j)
				if _, err := cl.Put(ctx, f, strings.NewReader(body), int64(len(body))); err != nil {
					t.Errorf("client %d: put %s: %v", g, f, err)
					return
				}
				if j%3 == 1 {
					if err := cl.Rename(ctx, f, f+".moved"); err != nil {
						t.Errorf("client %d: rename %s: %v", g, f, err)
						return
					}
				}
				if j%3 == 2 {
					if err := cl.Delete(ctx, f, false); err != nil {
						t.Errorf("client %d: delete %s: %v", g, f, err)
						return
					}
				}
				// Every client races for the round's name.
				switch err := cl.Mkdir(ctx, fmt.Sprintf("/pb/race%d", j), false); {
				case err == nil:
					won[j].Add(1)
				case errors.Is(err, client.ErrExists):
					lost[j].Add(1)
				default:
					t.Errorf("client %d: mkdir /pb/race%d: %v, want made or already exists", g, j, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for j := range rounds {
		if won[j].Load() != 1 || lost[j].Load() != clients-1 {
			t.Errorf("/pb/race%d: made by %d clients, refused to %d; want 1 and %d", j, won[j].Load(), lost[j].Load(), clients-1)
		}
	}
	for g := range clients {
		dir := fmt.Sprintf("/pb/c%d", g)
		entries, err := cl.List(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, e := range entries {
			got = append(got, e.Name)
		}
		for j := range rounds {
			switch j % 3 {
			case 0:
				want = append(want, fmt.Sprintf("f%d", j))
			case 1:
				want = append(want, fmt.Sprintf("f%d.moved", j))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", dir, got, want)
		}
		if b, err := cl.ReadFile(ctx, dir+"/f3"); err != nil || string(b) != fmt.Sprintf("client %d, file 3", g) {
			t.Errorf("%s/f3: %q, %v", dir, b, err)
		}
	}
	after := routerCalls(t, metrics, "op")
	sent, calls := after.items-before.items, after.calls-before.calls
	t.Logf("%d ops sent to the primary in %d calls (%.2f per call)", int(sent), int(calls), sent/calls)
	if min := float64(clients * (1 + rounds*2)); sent < min {
		t.Errorf("%v ops counted by the router, want at least the %v made", sent, min)
	}
	if calls >= sent {
		t.Errorf("%v ops in %v calls: %d clients changing the namespace at once never shared a call", sent, calls, clients)
	}
}

type callCounts struct{ items, calls float64 }

// routerCalls scrapes the router's counts of quick reads (kind "read")
// or ops ("op") sent to the meta group's primary, and of the calls that
// carried them.
func routerCalls(t *testing.T, url, kind string) callCounts {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c callCounts
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		series, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(series, "{")
		var into *float64
		switch name {
		case "shoal_router_meta_" + kind + "s_total":
			into = &c.items
		case "shoal_router_meta_" + kind + "_calls_total":
			into = &c.calls
		default:
			continue
		}
		if *into, err = strconv.ParseFloat(value, 64); err != nil {
			t.Fatalf("%s: %q: %v", url, sc.Text(), err)
		}
		found++
	}
	if found != 2 {
		t.Fatalf("%s: %d of the two %s counters", url, found, kind)
	}
	return c
}
