package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/api"
	"shoal/client"
	"shoal/harness"
)

// TestFullDisks: every member of the meta group has a small disk of its
// own (a 64 MiB ext4 image on a loop device), and clients fill them, with
// files cut into chunks until those are refused, then with small files
// kept inline until those are too. Every refusal is a clear 507, never a
// 503 or a 500; every file acknowledged reads back and is listed; the
// cluster's room shows the disks full; nobody's disk counts as failed
// and the group keeps its primary (the term barely moves); a restart of
// every node with its disk full comes back and serves reads; deletes go
// through and free the room for new writes.
func TestFullDisks(t *testing.T) {
	const disk = 64 << 20
	dir := t.TempDir()
	for i := range 3 {
		mountImage(t, filepath.Join(dir, fmt.Sprintf("g1-n%d", i)), "full disks need small loop-mounted file systems", fmt.Sprint(disk),
			[]string{"-m", "0"}, "loop")
	}
	c := startCluster(t, harness.Spec{Dir: dir, Groups: []harness.Group{{Name: "g1", Size: 3}},
		NodeFlags:   []string{"--gc-interval", "300ms", "--gc-grace", "2s"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(1 << 20), "--space-wait", "2s"},
	})
	cl, err := c.Client(time.Minute, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	term := c.metaTerm()

	files := map[string][]byte{}
	fillUntilRefused(ctx, t, cl, "/big", 2<<20, 1000, 200, files)
	big := len(files)
	fillUntilRefused(ctx, t, cl, "/small", 8<<10, 5000, 20000, files)
	if big < 15 {
		t.Fatalf("%d files of 2 MiB fit on %d-byte disks; want them filled", big, disk)
	}

	checkFullCluster(ctx, t, c, cl, files, disk)
	if now := c.metaTerm(); now > term+2 {
		t.Errorf("g1's term went from %d to %d while its disks filled: elections churned", term, now)
	}

	// Every node is killed and restarts with its disk full.
	nodes := c.groupNodes("g1")
	for _, p := range nodes {
		p.Kill()
	}
	for _, p := range nodes {
		c.start(p)
	}
	c.waitGroup(3, "")
	term = c.metaTerm()
	checkFullCluster(ctx, t, c, cl, files, disk)

	// Deletes free room, and writes go through again.
	if err := cl.Delete(ctx, "/big", true); err != nil {
		t.Fatalf("delete on full disks: %v", err)
	}
	for p := range files {
		if strings.HasPrefix(p, "/big/") {
			delete(files, p)
		}
	}
	data := randomBytes(7, 2<<20)
	harness.Await(t, 60*time.Second, "a 2 MiB file written once deletes freed the disks", func() bool {
		_, err := cl.Put(ctx, "/after/big", bytes.NewReader(data), int64(len(data)))
		var ae *client.Error
		if err != nil && (!errors.As(err, &ae) || ae.Status != 507) {
			t.Fatalf("a write while garbage collection frees the disks: %v; want 507 until it succeeds", err)
		}
		return err == nil
	})
	files["/after/big"] = data
	small := randomBytes(8, 8<<10)
	if _, err := cl.Put(ctx, "/after/small", bytes.NewReader(small), int64(len(small))); err != nil {
		t.Fatalf("a small file once deletes freed the disks: %v", err)
	}
	files["/after/small"] = small
	checkFiles(t, c, files)
	if now := c.metaTerm(); now > term+2 {
		t.Errorf("g1's term went from %d to %d after the restart: elections churned", term, now)
	}
	for _, p := range nodes {
		b, err := os.ReadFile(filepath.Join(c.Dir, p.Name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "the disk refused a write") {
			t.Errorf("%s counted its full disk as failed: its log says the disk refused a write", p.Name)
		}
	}
}

// fillUntilRefused uploads files of size bytes under dir until one is
// refused, which must be with a 507, and adds each acknowledged one to
// files. A refusal of another kind is an error, and ends the filling: the
// test goes on to what still works.
func fillUntilRefused(ctx context.Context, t *testing.T, cl *client.Client, dir string, size int, most int, seed uint64, files map[string][]byte) {
	t.Helper()
	for i := range most {
		p := fmt.Sprintf("%s/f%05d", dir, i)
		data := randomBytes(seed+uint64(i), size)
		_, err := cl.Put(ctx, p, bytes.NewReader(data), int64(len(data)))
		if err == nil {
			files[p] = data
			continue
		}
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != 507 || ae.Code != string(api.CodeNoSpace) {
			t.Errorf("upload %s into filling disks: %v; want 507 no_space", p, err)
			return
		}
		t.Logf("files of %d bytes refused after %d: %s", size, i, ae.Message)
		return
	}
	t.Fatalf("%d files of %d bytes fit under %s: the disks never filled", most, size, dir)
}

// checkFullCluster checks a cluster whose disks are full: every file
// reads back and is listed, and the cluster's room shows the disks full.
func checkFullCluster(ctx context.Context, t *testing.T, c *cluster, cl *client.Client, files map[string][]byte, disk int64) {
	t.Helper()
	checkFiles(t, c, files)
	for _, dir := range []string{"/big", "/small"} {
		es, err := cl.List(ctx, dir)
		if err != nil {
			t.Fatalf("list %s on full disks: %v", dir, err)
		}
		var got, want []string
		for _, e := range es {
			got = append(got, dir+"/"+e.Name)
		}
		for p := range files {
			if strings.HasPrefix(p, dir+"/") {
				want = append(want, p)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %d files, want the %d acknowledged", dir, len(got), len(want))
		}
	}
	harness.Await(t, 10*time.Second, "/v1/statfs to show the disks full", func() bool {
		st, err := cl.Statfs(ctx)
		if err != nil {
			t.Fatalf("statfs: %v", err)
		}
		full := st.Groups == 1 && st.Used > disk/2 && st.Free >= 0 && st.Free < 2<<20 && st.Capacity == st.Used+st.Free
		if full {
			t.Logf("statfs on full disks: %+v", st)
		}
		return full
	})
}

// metaTerm is g1's term as the router sees it.
func (c *cluster) metaTerm() uint64 {
	c.t.Helper()
	view, ok := c.clusterView()
	if !ok {
		c.t.Fatal("no /v1/cluster from the router")
	}
	for _, g := range view.Groups {
		if g.Name == "g1" {
			return g.Term
		}
	}
	c.t.Fatal("no group g1 in /v1/cluster")
	return 0
}
