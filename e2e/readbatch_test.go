package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
)

// Many clients reading small files at once through one router: their
// lookups reach the primary in batches (the router's metrics count fewer
// calls than reads), and each read still gets its own answer: every file
// its content, a missing name not found, and a file read right after its
// writer wrote it the new content.
func TestManySmallReadsAtOnce(t *testing.T) {
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}},
		RouterFlags: []string{"--metrics", "127.0.0.1:0"}})
	metrics := metricsURL(t, c.Router) + "/metrics"
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const files, clients, reads = 60, 24, 40
	for i := range files {
		data := randomBytes(uint64(i), 1000)
		if _, err := cl.Put(ctx, fmt.Sprintf("/rb/f%d", i), bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	before := routerReads(t, metrics)

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
	after := routerReads(t, metrics)
	sent, calls := after.reads-before.reads, after.calls-before.calls
	t.Logf("%d quick reads sent to the primary in %d calls (%.2f per call)", int(sent), int(calls), sent/calls)
	if sent < clients*reads {
		t.Errorf("%v quick reads counted by the router, want at least the %d files read", sent, clients*reads)
	}
	if calls >= sent {
		t.Errorf("%v reads in %v calls: %d clients reading at once never shared a call", sent, calls, clients)
	}
}

type readCounts struct{ reads, calls float64 }

// routerReads scrapes the router's counts of quick reads sent to the
// meta group's primary and of the calls that carried them.
func routerReads(t *testing.T, url string) readCounts {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c readCounts
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
		case "shoal_router_meta_reads_total":
			into = &c.reads
		case "shoal_router_meta_read_calls_total":
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
		t.Fatalf("%s: %d of the two read counters", url, found)
	}
	return c
}
