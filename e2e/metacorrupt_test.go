package e2e

import (
	"bytes"
	be "encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"

	"shoal/harness"
)

// TestCorruptMetaRebuiltFromPeers: two bytes of one member's meta.db
// change on disk while it is down (the name of one acknowledged file in
// its directory entry, and a chunk hash of another file in its inode).
// The member comes back, and then leads: the others' primary is killed,
// and later the other replica, as a real outage would take them. Every
// acknowledged file must still read back whole through the router, and
// the member must have found the damage and rebuilt its metadata from its
// peers. bbolt checks no data page, so without checksums of its own the
// member would serve the damaged records as the truth.
func TestCorruptMetaRebuiltFromPeers(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups: []harness.Group{{Name: "g1", Size: 3}},
		// A short log: the rebuilt member catches up by snapshot.
		NodeFlags:   []string{"--log-retain", "2"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk)},
	})
	files := writeFiles(t, c, "/data", 6, 2*testChunk+17, 700)
	members := c.groupNodes("g1") // IDs 100 (the primary), 101, 102
	n0, n1, n2 := members[0], members[1], members[2]
	want := c.chunkUnion(members)
	harness.Await(t, 30*time.Second, "every member holding every chunk", func() bool {
		for _, p := range members {
			if !sameSet(c.chunkFiles(p), want) {
				return false
			}
		}
		return true
	})
	if g := c.waitGroup(3, ""); g.Primary != n0.Name {
		t.Fatalf("g1 is led by %s, want %s", g.Primary, n0.Name)
	}
	renamed := "/data/f001"
	hashes := c.fileChunks("/data/f002")

	if err := n2.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(c.DataDir(n2), "meta.db")
	data := metaIno(t, db, 1, "data")
	f002 := metaIno(t, db, data, "f002")
	flipMeta(t, db, "dentries", append(be.BigEndian.AppendUint64(nil, data), "f001"...), func(k, _ []byte) int {
		return 8 // the name's first byte: f001 becomes g001
	}, true)
	h, err := hex.DecodeString(hashes[0])
	if err != nil {
		t.Fatal(err)
	}
	flipMeta(t, db, "inodes", be.BigEndian.AppendUint64(nil, f002), func(_, v []byte) int {
		i := bytes.Index(v, h)
		if i < 0 {
			t.Fatalf("inode %d does not hold its chunk hash %x", f002, h)
		}
		return i + 16 // a byte in the middle of the hash
	}, false)
	c.start(n2)
	harness.Await(t, 60*time.Second, n2.Name+" alive, in sync and holding every chunk", func() bool {
		cs, ok := c.clusterView()
		if !ok {
			return false
		}
		for _, nd := range cs.Nodes {
			if nd.Name == n2.Name && nd.InSync && nd.Status == "alive" {
				return sameSet(c.chunkFiles(n2), want)
			}
		}
		return false
	})

	// The damaged member leads: it has the highest ID of the survivors.
	n0.Kill()
	if g := c.waitGroup(2, n0.Name); g.Primary != n2.Name {
		t.Fatalf("after %s died, g1 is led by %s, want %s", n0.Name, g.Primary, n2.Name)
	}
	checkFilesNamed(t, c, files, renamed)
	// Then the outage moves on: the old primary returns, the other
	// replica dies.
	c.start(n0)
	c.waitGroup(3, "")
	n1.Kill()
	if g := c.waitGroup(2, n1.Name); g.Primary != n2.Name {
		t.Logf("after %s died, g1 is led by %s", n1.Name, g.Primary)
	}
	checkFilesNamed(t, c, files, renamed)

	// The member found the damage and rebuilt from its peers.
	log, err := os.ReadFile(n2.Log)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte("meta.db is corrupt")) || !bytes.Contains(log, []byte("bucket dentries")) {
		t.Errorf("%s's log does not report the corrupt dentry:\n%s", n2.Name, n2.Tail(40))
	}
	if !bytes.Contains(log, []byte("installed snapshot")) {
		t.Errorf("%s did not catch up by snapshot:\n%s", n2.Name, n2.Tail(40))
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "corrupt") || strings.Contains(line, "snapshot") {
			t.Logf("%s: %s", n2.Name, line)
		}
	}
	moved, _ := filepath.Glob(filepath.Join(c.DataDir(n2), "meta.db.corrupt-*"))
	if len(moved) != 1 {
		t.Errorf("%s's corrupt meta.db moved aside to %q, want one file", n2.Name, moved)
	}
}

// TestCorruptMetaFoundWhileServing: a byte of a running replica's
// meta.db changes under it (a file's name). The replica's verifier finds
// it at rest without a restart; the replica stops serving, moves the file
// aside, rebuilds from its peers, and then leads with every file.
func TestCorruptMetaFoundWhileServing(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		NodeFlags:   []string{"--scrub-rate", "64MiB", "--meta-scrub-every", "1s"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk)},
	})
	files := writeFiles(t, c, "/data", 4, testChunk+17, 800)
	members := c.groupNodes("g1")
	n0, n2 := members[0], members[2]
	c.waitGroup(3, "")
	renameInPlace(t, c, n2, "f002", "f003")
	awaitRebuilt(t, c, n2)
	c.waitGroup(3, "")
	n0.Kill()
	if g := c.waitGroup(2, n0.Name); g.Primary != n2.Name {
		t.Fatalf("after %s died, g1 is led by %s, want %s", n0.Name, g.Primary, n2.Name)
	}
	checkFilesNamed(t, c, files, "/data/f002")
	log, err := os.ReadFile(n2.Log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "corrupt") {
			t.Logf("%s: %s", n2.Name, line)
		}
	}
}

// TestCorruptPrimaryStepsDown: the primary's meta.db changes under it (a
// file's name). It finds the damage, stops leading at once, and the group
// elects another primary which serves every file; the old primary
// rebuilds from its peers and counts again.
func TestCorruptPrimaryStepsDown(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		NodeFlags:   []string{"--scrub-rate", "64MiB", "--meta-scrub-every", "1s"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk)},
	})
	files := writeFiles(t, c, "/data", 4, testChunk+17, 900)
	n0 := c.groupNodes("g1")[0]
	if g := c.waitGroup(3, ""); g.Primary != n0.Name {
		t.Fatalf("g1 is led by %s, want %s", g.Primary, n0.Name)
	}
	renameInPlace(t, c, n0, "f001", "f003")
	c.waitGroup(2, n0.Name)
	checkFilesNamed(t, c, files, "/data/f001")
	awaitRebuilt(t, c, n0)
	c.waitGroup(3, "")
	more := writeFiles(t, c, "/after", 2, testChunk+1, 950)
	checkFilesNamed(t, c, files, "/data/f001")
	checkFiles(t, c, more)
}

// renameInPlace changes the first byte of the name of file in /data
// (inode 2, the first directory made) wherever the running node p's
// meta.db holds it: its directory entry and the entry's index. The node
// holds the file locked, so this goes around bbolt, as a disk would.
// last is the last file written to /data: the change is made once
// meta.db holds it too, so that no transaction still to commit a write
// to /data (a primary holds its apply open for a moment, a replica
// applies in rounds) writes the changed page again from its own copy.
func renameInPlace(t *testing.T, c *cluster, p *harness.Proc, file, last string) {
	t.Helper()
	db := filepath.Join(c.DataDir(p), "meta.db")
	name := append(be.BigEndian.AppendUint64(nil, 2), file...)
	lastName := append(be.BigEndian.AppendUint64(nil, 2), last...)
	var b []byte
	// A replica applies what its group committed in rounds, a moment
	// after it learns of it.
	harness.Await(t, 10*time.Second, fmt.Sprintf("%s holding the entries %s and %s of directory 2", db, file, last), func() bool {
		var err error
		if b, err = os.ReadFile(db); err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(b, name) && bytes.Contains(b, lastName)
	})
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; ; {
		j := bytes.Index(b[i:], name)
		if j < 0 {
			return
		}
		if _, err := f.WriteAt([]byte{file[0] ^ 0x01}, int64(i+j+8)); err != nil {
			t.Fatal(err)
		}
		i += j + 1
	}
}

// awaitRebuilt waits until p found its meta.db corrupt while serving,
// moved it aside and was found whole again by its primary.
func awaitRebuilt(t *testing.T, c *cluster, p *harness.Proc) {
	t.Helper()
	harness.Await(t, 60*time.Second, p.Name+" finding the damage, moving meta.db aside and rebuilding it", func() bool {
		moved, _ := filepath.Glob(filepath.Join(c.DataDir(p), "meta.db.corrupt-*"))
		log, _ := os.ReadFile(p.Log)
		_, after, found := bytes.Cut(log, []byte("stops serving its group"))
		return len(moved) == 1 && found && bytes.Contains(after, []byte("holds every committed entry again"))
	})
}

// checkFilesNamed reads every file back through the router, reporting
// all that fail (the renamed one by name) before it fails the test.
func checkFilesNamed(t *testing.T, c *cluster, files map[string][]byte, renamed string) {
	t.Helper()
	var bad []string
	for p, want := range files {
		got, err := c.client().ReadFile(t.Context(), p)
		if err != nil || !bytes.Equal(got, want) {
			note := ""
			if p == renamed {
				note = " (its name was changed on disk)"
			}
			bad = append(bad, fmt.Sprintf("%s%s: read %d bytes, err %v; want the %d written", p, note, len(got), err, len(want)))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("acknowledged files lost:\n%s", strings.Join(bad, "\n"))
	}
}

// metaIno reads, from the meta.db at path, the inode number of name in
// the directory with inode dir. The dentry's value starts with it,
// whatever follows.
func metaIno(t *testing.T, path string, dir uint64, name string) uint64 {
	t.Helper()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var ino uint64
	b.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte("dentries")).Get(append(be.BigEndian.AppendUint64(nil, dir), name...))
		if len(v) < 8 {
			t.Fatalf("no entry %q in directory %d of %s", name, dir, path)
		}
		ino = be.BigEndian.Uint64(v)
		return nil
	})
	return ino
}

// flipMeta changes one bit of the record key of bucket in the meta.db
// at path, in the file itself: byte at(k, v) of the key (inKey) or of the
// stored value. It finds the byte where bbolt's memory map shows it; a
// small bucket kept inside its parent's page is copied by reads when
// unaligned, and then every place in the file holding the record's bytes
// is changed (the live one and stale copies in free pages alike).
func flipMeta(t *testing.T, path, bucket string, key []byte, at func(k, v []byte) int, inKey bool) {
	t.Helper()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	err = b.View(func(tx *bbolt.Tx) error {
		k, v := tx.Bucket([]byte(bucket)).Cursor().Seek(key)
		if !bytes.Equal(k, key) {
			return fmt.Errorf("no key %x in bucket %s", key, bucket)
		}
		i := at(k, v)
		var p *byte
		if inKey {
			p = &k[i]
		} else {
			p = &v[i]
		}
		if off := int64(uintptr(unsafe.Pointer(p)) - b.Info().Data); off >= 0 && off < tx.Size() {
			offs = append(offs, off)
			return nil
		}
		file, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rec := append(bytes.Clone(k), v...)
		if !inKey {
			i += len(k)
		}
		for j := 0; ; {
			n := bytes.Index(file[j:], rec)
			if n < 0 {
				return nil
			}
			offs = append(offs, int64(j+n+i))
			j += n + 1
		}
	})
	b.Close()
	if err != nil || len(offs) == 0 {
		t.Fatalf("find key %x of bucket %s in %s: %v", key, bucket, path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range offs {
		one := make([]byte, 1)
		if _, err := f.ReadAt(one, off); err != nil {
			t.Fatal(err)
		}
		one[0] ^= 0x01
		if _, err := f.WriteAt(one, off); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("changed key %q of bucket %s at %d place(s) in %s", key, bucket, len(offs), path)
}
