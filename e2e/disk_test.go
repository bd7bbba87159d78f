package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/harness"
)

// readOnlyDisk is a file system of its own for one node's data directory:
// an ext4 image on a loop device, mounted so that an error makes the
// kernel turn it read-only (errors=remount-ro), as it does when a disk
// fails under a running node.
type readOnlyDisk struct {
	dir     string // the mount point: the node's data directory
	trigger string // the sysfs file that makes ext4 report an error
}

// mountDisk mounts a fresh ext4 image at dir, and unmounts it when the
// test ends (after the cluster, whose cleanup registers later). It skips
// the test, saying why, where that cannot be done: it needs root, loop
// devices, mkfs.ext4 and ext4's error trigger.
func mountDisk(t *testing.T, dir string) *readOnlyDisk {
	t.Helper()
	const why = "a node's disk turning read-only needs a loop-mounted ext4 file system"
	src, ok := mountImage(t, dir, why, "128M", nil, "loop,errors=remount-ro")
	if !ok {
		return nil
	}
	d := &readOnlyDisk{dir: dir, trigger: filepath.Join("/sys/fs/ext4", filepath.Base(src), "trigger_fs_error")}
	if _, err := os.Stat(d.trigger); err != nil {
		msg := fmt.Sprintf("this kernel's ext4 has no error trigger: %v", err)
		t.Logf("SKIPPED: %s: %s", why, msg)
		t.Skip(msg)
		return nil
	}
	return d
}

// mountImage makes an ext4 image of size (as truncate(1) takes it) beside
// dir with mkfs.ext4 and extra, mounts it at dir with options, and
// unmounts it when the test ends (after the cluster, whose cleanup
// registers later). It returns the device. Where that cannot be done (not
// root; no loop devices, mkfs.ext4 or mount) it skips the test, logging
// why, and returns false.
func mountImage(t *testing.T, dir, why, size string, extra []string, options string) (string, bool) {
	t.Helper()
	skip := func(format string, args ...any) (string, bool) {
		msg := fmt.Sprintf(format, args...)
		t.Logf("SKIPPED: %s: %s", why, msg)
		t.Skip(msg)
		return "", false
	}
	if os.Geteuid() != 0 {
		return skip("not root")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount", "findmnt"} {
		if _, err := exec.LookPath(tool); err != nil {
			return skip("no %s", tool)
		}
	}
	image := dir + ".img"
	if out, err := exec.Command("truncate", "-s", size, image).CombinedOutput(); err != nil {
		return skip("make the image: %v: %s", err, out)
	}
	args := append(append([]string{"-q", "-F"}, extra...), image)
	if out, err := exec.Command("mkfs.ext4", args...).CombinedOutput(); err != nil {
		return skip("mkfs.ext4: %v: %s", err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", options, image, dir).CombinedOutput(); err != nil {
		return skip("mount is not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	src, err := exec.Command("findmnt", "-no", "SOURCE", dir).Output()
	if err != nil {
		t.Fatalf("find the device of %s: %v", dir, err)
	}
	return strings.TrimSpace(string(src)), true
}

// fail makes the kernel find an error on the disk: it turns the file
// system read-only under the node, which gets EROFS from then on.
func (d *readOnlyDisk) fail(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(d.trigger, []byte("shoal e2e: the disk fails"), 0o200); err != nil {
		t.Fatalf("trigger an error on %s: %v", d.dir, err)
	}
	// The kernel shows "emergency_ro" (newer ext4) or "ro" first.
	out, err := exec.Command("findmnt", "-no", "OPTIONS", d.dir).Output()
	if opts := string(out); err != nil || !strings.HasPrefix(opts, "ro") && !strings.Contains(opts, "emergency_ro") {
		t.Fatalf("%s after the error: options %q, %v; want read-only", d.dir, opts, err)
	}
}

// TestPrimaryDiskTurnsReadOnly: the file system under the meta group's
// primary turns read-only while clients write. The primary steps down
// and counts itself out of sync, another member leads, and a client
// writing meanwhile sees no error: the router answers 503 during the
// failover, never 500, and the client retries. The cluster's status shows
// the member out of sync with its disk's error.
func TestPrimaryDiskTurnsReadOnly(t *testing.T) {
	dir := t.TempDir()
	disk := mountDisk(t, filepath.Join(dir, "g1-n0"))
	c := startCluster(t, harness.Spec{Dir: dir, Groups: []harness.Group{{Name: "g1", Size: 3}}})
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := randomBytes(11, 300<<10)
	if _, err := cl.Put(ctx, "/before.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}

	disk.fail(t)
	written := map[string][]byte{"/before.bin": data}
	for i := range 5 {
		p, b := fmt.Sprintf("/after-%d.bin", i), randomBytes(uint64(20+i), 200<<10)
		if _, err := cl.Put(ctx, p, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatalf("upload %s after the primary's disk turned read-only: %v", p, err)
		}
		written[p] = b
	}
	c.waitGroup(2, "g1-n0")
	harness.Await(t, 30*time.Second, "the status to show g1-n0 out of sync with its disk's error", func() bool {
		view, ok := c.clusterView()
		if !ok || len(view.Groups) == 0 {
			return false
		}
		for _, n := range view.Nodes {
			if n.Name == "g1-n0" && n.InSync {
				return false
			}
		}
		for _, m := range view.Groups[0].MemberDetails {
			if m.Name == "g1-n0" {
				return !m.Synced && strings.Contains(m.DiskError, "read-only file system")
			}
		}
		return false
	})
	out, _, code := c.run("status")
	t.Logf("shoal status:\n%s", out)
	if code != 3 || !strings.Contains(out, "read-only file system") || !strings.Contains(out, "HEALTH: degraded") {
		t.Errorf("shoal status (exit %d) does not show the disk's error, or does not judge the cluster degraded (exit 3):\n%s", code, out)
	}
	for p, want := range written {
		rc, _, err := cl.Get(ctx, p)
		if err != nil {
			t.Errorf("read %s back: %v", p, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s read back: %d bytes, %v; want the %d written", p, len(got), err, len(want))
		}
	}
}
