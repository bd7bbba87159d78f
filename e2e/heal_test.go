package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
	"shoal/store"
)

// writeFiles writes n files of size bytes under dir and returns them.
func writeFiles(t *testing.T, c *cluster, dir string, n, size int, seed uint64) map[string][]byte {
	t.Helper()
	cl := c.client()
	files := map[string][]byte{}
	for i := range n {
		p := fmt.Sprintf("%s/f%03d", dir, i)
		data := randomBytes(seed+uint64(i), size)
		if _, err := cl.Put(context.Background(), p, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
		files[p] = data
	}
	return files
}

func checkFiles(t *testing.T, c *cluster, files map[string][]byte) {
	t.Helper()
	cl := c.client()
	for p, want := range files {
		got, err := cl.ReadFile(context.Background(), p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes (err %v), want the %d written", p, len(got), err, len(want))
		}
	}
}

// aReplica waits for g1 to be whole and returns it and a member that is
// not its primary.
func (c *cluster) aReplica() (client.Group, *harness.Proc) {
	c.t.Helper()
	g := c.waitGroup(3, "")
	for _, p := range c.groupNodes("g1") {
		if p.Name != g.Primary {
			return g, p
		}
	}
	c.t.Fatal("g1 has no replica")
	return g, nil
}

// union of the chunk files held by nodes.
func (c *cluster) chunkUnion(nodes []*harness.Proc) map[string]bool {
	u := map[string]bool{}
	for _, p := range nodes {
		for h := range c.chunkFiles(p) {
			u[h] = true
		}
	}
	return u
}

func bytesOf(c *cluster, p *harness.Proc) int64 {
	var n int64
	for h := range c.chunkFiles(p) {
		path, err := c.chunkFile(p, h)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(path); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestStandbyReplacesDeadReplica: kill -9 a replica; after --replace-after
// the group removes it and claims the standby, which ends holding every
// chunk of its group; the group then survives losing another member.
func TestStandbyReplacesDeadReplica(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		Standbys:    1,
		NodeFlags:   []string{"--replace-after", "2s"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk)},
	})
	// SHOAL_HEAL_MIB=N writes N MiB first, to measure the time to full
	// redundancy for more data.
	n, size := 12, 5*testChunk+17
	if mib, err := strconv.Atoi(os.Getenv("SHOAL_HEAL_MIB")); err == nil && mib > 0 {
		n, size = mib, 1<<20
	}
	files := writeFiles(t, c, "/data", n, size, 100)
	members := c.groupNodes("g1")
	want := c.chunkUnion(members)
	standby := c.node("standby0")
	g, victim := c.aReplica()
	victim.Kill()
	killed := time.Now()
	harness.Await(t, 60*time.Second, "the standby holding every chunk of g1", func() bool {
		cs, ok := c.clusterView()
		if !ok {
			return false
		}
		for _, nd := range cs.Nodes {
			if nd.Name == standby.Name && nd.Group == "g1" && nd.InSync {
				return sameSet(c.chunkFiles(standby), want)
			}
		}
		return false
	})
	took := time.Since(killed)
	t.Logf("replica death to full redundancy: %v, %d chunks (%d bytes) copied to the standby",
		took.Round(time.Millisecond), len(want), bytesOf(c, standby))
	checkFiles(t, c, files)
	// The replaced node is no longer listed as a failed member of g1 but
	// as departed, saying when and why; shoal status agrees and is healthy.
	harness.Await(t, 10*time.Second, victim.Name+" listed as departed", func() (bool, error) {
		cs, ok := c.clusterView()
		if !ok {
			return false, nil
		}
		for _, nd := range cs.Nodes {
			if nd.Name == victim.Name {
				return false, fmt.Errorf("%s is still among the nodes, %s", nd.Name, nd.Status)
			}
		}
		for _, d := range cs.Departed {
			if d.Name == victim.Name && d.Group == "g1" && !d.Since.IsZero() && strings.Contains(d.Why, "declared failed") {
				return true, nil
			}
		}
		return false, fmt.Errorf("departed: %+v", cs.Departed)
	})
	if out, errOut, code := c.run("status"); code != 0 || !regexp.MustCompile(`(?m)^`+victim.Name+` +g1 +\d{4}-\d\d-\d\d .*declared failed`).MatchString(out) {
		t.Fatalf("shoal status exits %d and does not list %s as departed:\n%s%s", code, victim.Name, out, errOut)
	}
	// The standby now counts: losing another original member keeps the
	// group writable and every file readable.
	for _, p := range members {
		if p != victim && p.Name != g.Primary {
			p.Kill()
		}
	}
	more := writeFiles(t, c, "/after", 3, testChunk+1, 900)
	checkFiles(t, c, files)
	checkFiles(t, c, more)
}

// TestWipedNodeRebuilt: a node whose data directory is wiped comes back
// empty and is rebuilt from its peers: metadata and every chunk.
func TestWipedNodeRebuilt(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk)},
	})
	files := writeFiles(t, c, "/w", 10, 3*testChunk+5, 200)
	members := c.groupNodes("g1")
	g, victim := c.aReplica()
	want := c.chunkUnion(members)
	victim.Kill()
	if err := os.RemoveAll(c.DataDir(victim)); err != nil {
		t.Fatal(err)
	}
	c.start(victim)
	harness.Await(t, 60*time.Second, "the wiped node rebuilt with every chunk and in sync", func() bool {
		cs, ok := c.clusterView()
		if !ok {
			return false
		}
		for _, nd := range cs.Nodes {
			if nd.Name == victim.Name && nd.InSync && nd.Status == "alive" {
				return sameSet(c.chunkFiles(victim), want)
			}
		}
		return false
	})
	// With the other replica gone, the rebuilt node and the primary are
	// a majority: they must have everything.
	for _, p := range members {
		if p != victim && p.Name != g.Primary {
			p.Kill()
		}
	}
	checkFiles(t, c, files)
}

// waitChunkOn waits until every node of nodes holds chunk h intact.
func (c *cluster) waitChunkOn(nodes []*harness.Proc, h string) {
	c.t.Helper()
	harness.Await(c.t, 20*time.Second, "every member holding the chunk "+h, func() bool {
		for _, p := range nodes {
			if !c.chunkFiles(p)[h] {
				return false
			}
		}
		return true
	})
}

// corrupt flips a byte in the middle of a chunk file on p.
func (c *cluster) corrupt(p *harness.Proc, h string) {
	c.t.Helper()
	path, err := c.chunkFile(p, h)
	if err != nil {
		c.t.Fatalf("corrupt %s on %s: %v", h, p.Name, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatalf("corrupt %s on %s: %v", h, p.Name, err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// TestCorruptChunkRepairedOnRead: two of three copies of a chunk are
// corrupted on disk (the scrubber is off); reads still return the right
// bytes and rewrite the bad copies.
func TestCorruptChunkRepairedOnRead(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:    []harness.Group{{Name: "g1", Size: 3}},
		NodeFlags: []string{"--scrub-rate", "0"},
		// No chunk cache: reads it served would reach no member, and the
		// read repair this test is about happens on the members' reads.
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk), "--cache-size", "0"},
	})
	files := writeFiles(t, c, "/c", 1, 4*testChunk, 300)
	var name string
	for p := range files {
		name = p
	}
	h := c.fileChunks(name)[2]
	members := c.groupNodes("g1")
	c.waitChunkOn(members, h)
	c.corrupt(members[0], h)
	c.corrupt(members[1], h)
	harness.Await(t, 30*time.Second, "reads to repair both corrupt copies", func() bool {
		checkFiles(t, c, files)
		for _, p := range members {
			if !c.chunkFiles(p)[h] {
				return false
			}
		}
		return true
	})
}

// TestScrubberRepairsAtRest: a corrupt copy nobody reads is found by the
// scrubber and replaced.
func TestScrubberRepairsAtRest(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		NodeFlags:   []string{"--scrub-rate", "64MiB"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk)},
	})
	files := writeFiles(t, c, "/s", 3, 2*testChunk, 400)
	members := c.groupNodes("g1")
	var h string
	harness.Await(t, 20*time.Second, "the members holding the same chunks", func() bool {
		a, b := c.chunkFiles(members[0]), c.chunkFiles(members[2])
		for k := range a {
			h = k
		}
		return len(a) == 6 && sameSet(a, b)
	})
	c.corrupt(members[2], h)
	harness.Await(t, 30*time.Second, "the scrubber to replace the corrupt copy", func() bool {
		return c.chunkFiles(members[2])[h]
	})
	checkFiles(t, c, files)
}

// TestNonVotersNeverLead: after every member of a group stops, the two
// with the highest IDs come back with wiped disks, first and alone. They
// were voters, but hold no configuration now, so neither may take over:
// leading with an empty log, it would overwrite the member that holds
// the group's files once that one returned. Nobody leads until it does;
// then it leads, and every file reads back.
func TestNonVotersNeverLead(t *testing.T) {
	c := newCluster(t, 3)
	files := writeFiles(t, c, "/keep", 5, 300, 300)
	for _, p := range c.Nodes {
		p.Kill()
	}
	keeper, wiped := c.Nodes[0], c.Nodes[1:] // IDs 100, then 101 and 102
	for _, p := range wiped {
		if err := os.RemoveAll(c.DataDir(p)); err != nil {
			t.Fatal(err)
		}
		c.start(p)
	}
	// Past the startup grace and the leaderless fallback's wait (2 s
	// each, running side by side), a wiped member would have promoted
	// itself: watch for that for 8 s, which must end without it.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	leader := ""
	if harness.WaitFor(ctx, "a wiped member to lead g1", func() bool {
		cs, ok := c.clusterView()
		if !ok {
			return false
		}
		for _, g := range cs.Groups {
			if g.Name == "g1" && (g.Primary == wiped[0].Name || g.Primary == wiped[1].Name) {
				leader = g.Primary
				return true
			}
		}
		return false
	}) == nil {
		t.Fatalf("%s leads g1 with a wiped disk", leader)
	}
	c.start(keeper)
	c.waitGroup(3, "")
	checkFiles(t, c, files)
}

// TestRemovedMemberReturnsToStandbyPool: a replica that was replaced while
// it was down comes back to a group that has its full size without it.
// The primary releases it: it drops its copy of the group and serves as a
// standby (across a restart too, whatever its --group), and is claimed
// like any standby when the group next loses a member.
func TestRemovedMemberReturnsToStandbyPool(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		Standbys:    1,
		NodeFlags:   []string{"--replace-after", "2s"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk)},
	})
	files := writeFiles(t, c, "/data", 6, 3*testChunk+7, 100)
	standby := c.node("standby0")
	_, victim := c.aReplica()
	victim.Kill()
	role := func(name string) (string, string) {
		cs, ok := c.clusterView()
		if !ok {
			return "", ""
		}
		for _, nd := range cs.Nodes {
			if nd.Name == name && nd.Status == "alive" {
				return nd.Role, nd.Group
			}
		}
		return "", ""
	}
	harness.Await(t, 60*time.Second, "the standby to replace the killed replica", func() bool {
		r, g := role(standby.Name)
		return r == "replica" && g == "g1"
	})
	c.waitGroup(3, "")
	c.start(victim)
	harness.Await(t, 60*time.Second, "the removed replica to come back as a standby", func() bool {
		r, g := role(victim.Name)
		return r == "standby" && g == ""
	})
	if n := len(c.chunkFiles(victim)); n != 0 {
		t.Fatalf("released member still holds %d chunk files of g1", n)
	}
	checkFiles(t, c, files)
	// A restart keeps it in the pool, though its command line says
	// replica of g1.
	victim.Kill()
	c.start(victim)
	harness.Await(t, 30*time.Second, "the released member to restart as a standby", func() bool {
		r, g := role(victim.Name)
		return r == "standby" && g == ""
	})
	// It is a standby like any other: the next dead member is replaced
	// by it.
	g := c.waitGroup(3, "")
	for _, name := range g.Members {
		if name != g.Primary {
			c.node(name).Kill()
			break
		}
	}
	harness.Await(t, 60*time.Second, "the released member to be claimed back into g1 and catch up", func() bool {
		cs, ok := c.clusterView()
		if !ok {
			return false
		}
		for _, nd := range cs.Nodes {
			if nd.Name == victim.Name {
				return nd.Role == "replica" && nd.Group == "g1" && nd.InSync
			}
		}
		return false
	})
	checkFiles(t, c, files)
}

// TestChunksOfAnEarlierVersion: a cluster whose chunk files are named by
// their hash alone, as before members kept a checksum with each chunk,
// serves them after a restart, and its reads and scrubbers rename every
// one to carry its checksum.
func TestChunksOfAnEarlierVersion(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		NodeFlags:   []string{"--scrub-rate", "64MiB"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk), "--cache-size", "0"},
	})
	files := writeFiles(t, c, "/old", 3, 3*testChunk, 500)
	members := c.groupNodes("g1")
	harness.Await(t, 20*time.Second, "every member to hold all 9 chunks", func() bool {
		for _, p := range members {
			if len(c.chunkFiles(p)) != 9 {
				return false
			}
		}
		return true
	})
	for _, p := range members {
		p.Kill()
	}
	legacy := func(p *harness.Proc) (named, bare int) {
		filepath.WalkDir(filepath.Join(c.DataDir(p), "chunks"), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if h, ok := store.ChunkFileHash(d.Name()); ok {
				if d.Name() == h.String() {
					bare++
				} else {
					named++
				}
			}
			return nil
		})
		return named, bare
	}
	for _, p := range members {
		for h := range c.chunkFiles(p) {
			path, err := c.chunkFile(p, h)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path, filepath.Join(filepath.Dir(path), h)); err != nil {
				t.Fatal(err)
			}
		}
		if named, bare := legacy(p); named != 0 || bare != 9 {
			t.Fatalf("%s after renaming: %d files with a checksum, %d without; want 0 and 9", p.Name, named, bare)
		}
		c.start(p)
	}
	checkFiles(t, c, files)
	harness.Await(t, 30*time.Second, "reads and scrubbers to give every chunk file its checksum", func() bool {
		for _, p := range members {
			if named, bare := legacy(p); named != 9 || bare != 0 {
				return false
			}
		}
		return true
	})
	for _, p := range members {
		for h, ok := range c.chunkFiles(p) {
			if !ok {
				t.Errorf("%s: chunk %s does not match its hash or its checksum", p.Name, h)
			}
		}
	}
	checkFiles(t, c, files)
}
