package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
	"shoal/secure"
)

// TestScaleOutWhenFull: with every group full a write fails with 507
// after the router's bounded wait; with standbys in the pool, the meta
// group's primary forms a new group from them and a waiting write
// succeeds.
func TestScaleOutWhenFull(t *testing.T) {
	const chunk = 1 << 20
	c := startCluster(t, harness.Spec{
		Groups: []harness.Group{{Name: "g1", Size: 3}},
		// Room for four sealed chunks (each ChunkOverhead longer than its
		// content) on every member, and 512 KiB for its metadata: meta.db
		// and the log's files count against the capacity too. They take
		// 30 to 200 KiB here, depending on how many entries the log holds
		// before it is trimmed, so four chunks always fit, a fifth never
		// does (the headroom is under a chunk), and four take g1 past the
		// high water mark (85%, which four chunks alone pass).
		NodeFlags:   []string{"--capacity", fmt.Sprint(4*(chunk+secure.ChunkOverhead) + 512<<10), "--high-water", "0.85"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(chunk), "--space-wait", "2s"},
	})
	// Four chunks fill every member of g1.
	files := writeFiles(t, c, "/fill", 4, chunk, 500)
	cl := c.client()
	ctx := context.Background()
	data := randomBytes(77, chunk)
	harness.Await(t, 10*time.Second, "the router to see g1 full and answer 507", func() bool {
		_, err := cl.Put(ctx, "/overflow", bytes.NewReader(data), int64(len(data)))
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status == 507 {
			if !strings.Contains(ae.Message, "full") {
				t.Fatalf("507 without a clear message: %q", ae.Message)
			}
			return true
		}
		if err == nil {
			t.Fatal("a write into a full cluster succeeded")
		}
		return false
	})
	// A write that waits, then standbys join the pool.
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		slow, err := client.New(c.clientConfig(60*time.Second, 0))
		if err == nil {
			_, err = slow.Put(ctx, "/waited", bytes.NewReader(data), int64(len(data)))
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write finished before any standby existed: %v", err)
	default:
	}
	for i := range 3 {
		c.addStandby(fmt.Sprintf("spare%d", i), "--capacity", "64MiB")
	}
	var waited time.Duration
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the waiting write failed: %v", err)
		}
		waited = time.Since(start)
	case <-time.After(60 * time.Second):
		t.Fatal("the waiting write did not finish within 60s of standbys joining")
	}
	t.Logf("all groups full to the waiting write succeeding (standbys started right after): %v", waited.Round(time.Millisecond))
	cs, _ := c.clusterView()
	groups := map[string]bool{}
	for _, n := range cs.Nodes {
		if n.Group != "" {
			groups[n.Group] = true
		}
	}
	if len(groups) != 2 {
		t.Fatalf("want g1 and one new group, got %v", groups)
	}
	files["/waited"] = data
	checkFiles(t, c, files)
}

// TestNoChunkLeak: after overwrites, copies and deletes, garbage
// collection leaves exactly the chunks the surviving files reference, on
// every member.
func TestNoChunkLeak(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 3}},
		NodeFlags:   []string{"--gc-interval", "300ms", "--gc-grace", "2s"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk)},
	})
	cl := c.client()
	ctx := context.Background()
	files := writeFiles(t, c, "/g", 6, 3*testChunk+9, 600)
	// Overwrite two, one with the content of another (shared chunks).
	files["/g/f000"] = randomBytes(999, 2*testChunk)
	files["/g/f001"] = files["/g/f002"]
	for _, p := range []string{"/g/f000", "/g/f001"} {
		if _, err := cl.Put(ctx, p, bytes.NewReader(files[p]), int64(len(files[p]))); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Copy(ctx, "/g/f003", "/g/copy"); err != nil {
		t.Fatal(err)
	}
	files["/g/copy"] = files["/g/f003"]
	for _, p := range []string{"/g/f003", "/g/f004"} {
		if err := cl.Delete(ctx, p, false); err != nil {
			t.Fatal(err)
		}
		delete(files, p)
	}
	want := map[string]bool{}
	for p := range files {
		for _, h := range c.fileChunks(p) {
			want[h] = true
		}
	}
	nodes := append(c.groupNodes("g1"), c.groupNodes("g2")...)
	harness.Await(t, 30*time.Second, "garbage collection to leave exactly the referenced chunks", func() bool {
		u := c.chunkUnion(nodes)
		return sameSet(u, want)
	})
	// Every member of a group holds the same set.
	for _, g := range []string{"g1", "g2"} {
		ns := c.groupNodes(g)
		harness.Await(t, 20*time.Second, g+" members agreeing", func() bool {
			for _, p := range ns[1:] {
				if !sameSet(c.chunkFiles(ns[0]), c.chunkFiles(p)) {
					return false
				}
			}
			return true
		})
	}
	checkFiles(t, c, files)
}
