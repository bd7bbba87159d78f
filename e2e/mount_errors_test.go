package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"shoal/harness"
)

// TestMountFullClusterIsENOSPC: with every group full and no standby to
// form a new one, writing through the mount fails with ENOSPC (by close
// at the latest), and the files already there still read.
func TestMountFullClusterIsENOSPC(t *testing.T) {
	needFUSE(t)
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		NodeFlags:   []string{"--capacity", "1MiB"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(mountChunk), "--inline-max", "0", "--space-wait", "500ms"},
	})
	mnt := c.mount()
	small := randomBytes(1, mountChunk)
	if err := os.WriteFile(filepath.Join(mnt, "fits"), small, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(mnt, "too-big"))
	if err != nil {
		t.Fatal(err)
	}
	_, werr := f.Write(randomBytes(2, 40*mountChunk))
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	wantErrno(t, "writing past the cluster's capacity", werr, syscall.ENOSPC)
	if got, err := os.ReadFile(filepath.Join(mnt, "fits")); err != nil || string(got) != string(small) {
		t.Fatalf("a file written before the cluster filled: %d bytes, %v", len(got), err)
	}
}

// TestMountUnreadableIsEIO: a chunk whose every copy is corrupt cannot be
// read from any replica, which is EIO; the rest of the file still reads.
func TestMountUnreadableIsEIO(t *testing.T) {
	needFUSE(t)
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		NodeFlags:   []string{"--scrub-rate", "0"},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(mountChunk), "--inline-max", "0"},
	})
	mnt := c.mount("--retry", "1s")
	data := randomBytes(3, 4*mountChunk)
	if err := os.WriteFile(filepath.Join(mnt, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	h := c.fileChunks("/f")[2]
	members := c.groupNodes("g1")
	c.waitChunkOn(members, h)
	for _, p := range members {
		c.corrupt(p, h)
	}
	// A fresh mount, so no window of the file is cached.
	other := c.mount("--retry", "1s")
	f, err := os.Open(filepath.Join(other, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, mountChunk)
	if _, err := f.ReadAt(head, 0); err != nil || string(head) != string(data[:mountChunk]) {
		t.Fatalf("an intact chunk: %v", err)
	}
	_, err = f.ReadAt(make([]byte, mountChunk), 2*mountChunk)
	wantErrno(t, "reading a chunk no replica holds intact", err, syscall.EIO)
}
