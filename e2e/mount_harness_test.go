package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/harness"
	"shoal/mount"
)

// needFUSE skips a mount test where FUSE cannot work (not root, no
// /dev/fuse, no fusermount3), saying what is missing. With
// SHOAL_REQUIRE_FUSE set (as CI sets it) the test fails instead, so a
// machine without FUSE cannot pass the mount tests by skipping them.
func needFUSE(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the tests mount with allow_other and switch users)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		missing = append(missing, "/dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		missing = append(missing, "fusermount3 (apt-get install fuse3)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "FUSE mount tests need " + strings.Join(missing, ", ")
	if os.Getenv("SHOAL_REQUIRE_FUSE") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// mount serves the cluster at a new directory with `shoal mount
// --foreground` (as a process of the cluster, so its log is shown when
// the test fails) and returns the directory once it is mounted.
func (c *cluster) mount(extra ...string) string {
	c.t.Helper()
	dir, err := os.MkdirTemp("", "shoal-mnt")
	if err != nil {
		c.t.Fatal(err)
	}
	p := c.NewProc("mount-"+filepath.Base(dir), append(append([]string{
		"mount", dir, "--router", c.API, "--foreground", "--allow-other", "--log-level", "debug",
	}, c.Creds.Flags()...), extra...)...)
	c.t.Cleanup(func() {
		unmount(dir)
		p.Kill()
		os.Remove(dir)
	})
	c.start(p)
	harness.Await(c.t, 30*time.Second, "the mount at "+dir, func() bool {
		if !p.Running() {
			c.t.Fatalf("shoal mount exited:\n%s", p.Tail(100))
		}
		return mount.IsMounted(dir)
	})
	return dir
}

// unmount detaches a mount even if something still uses it.
func unmount(dir string) {
	if err := exec.Command("fusermount3", "-u", "-z", dir).Run(); err != nil {
		syscall.Unmount(dir, syscall.MNT_DETACH)
	}
}

// sh runs a shell script in dir, as root or (with uid > 0) as that user,
// and returns its output and exit code.
func sh(t *testing.T, dir string, uid int, script string) (string, int) {
	t.Helper()
	args := []string{"sh", "-c", script}
	if uid > 0 {
		args = append([]string{"setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("run %q: %v", script, err)
	}
	return string(out), 0
}

// wantErrno fails the test unless err is the errno want.
func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %v (%s)", what, err, want, want.Error())
	}
}
