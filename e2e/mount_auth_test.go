package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"shoal/harness"
)

// TestMountTokens: a mount acts as its token's user, whoever runs the
// program on the host; a mount host's token with the mount capability and
// the host's certificate acts for each calling process instead; without
// the certificate it acts as its own user.
func TestMountTokens(t *testing.T) {
	needFUSE(t)
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.rootOnlyFile("/secret", "root only")
	alice := c.addUser("alice", "--uid", "1500", "--gid", "1500")
	bob := c.addUser("bob", "--uid", "1600", "--gid", "1600")
	host := c.addUser("host", "--mount")

	// Alice's mount: even local root acts as alice.
	mnt := c.mount("--token", alice, "--cert", "", "--key", "")
	out, code := sh(t, mnt, 0, `set -e
echo mine > home/alice/note
stat -c '%u:%g %a' home/alice/note
cat home/alice/note`)
	if code != 0 || out != "1500:1500 644\nmine\n" {
		t.Fatalf("root through alice's mount: %d\n%s", code, out)
	}
	if out, code := sh(t, mnt, 0, `cat secret`); code == 0 || !strings.Contains(out, "Permission denied") {
		t.Fatalf("root through alice's mount read a root-only file: %d %s", code, out)
	}
	if out, code := sh(t, mnt, 0, `ls home/bob`); code == 0 || !strings.Contains(out, "Permission denied") {
		t.Fatalf("alice's mount listed bob's home: %d %s", code, out)
	}

	// The host's mount with its certificate: each process as itself.
	hostCreds := c.Creds.Flags()
	hostMnt := c.mount(append(hostCreds, "--token", host)...)
	if out, code := sh(t, hostMnt, 1500, `cat home/alice/note && echo more >> home/alice/note && stat -c '%u' home/alice/note`); code != 0 || out != "mine\n1500\n" {
		t.Fatalf("uid 1500 through the host's mount: %d %s", code, out)
	}
	if out, code := sh(t, hostMnt, 1600, `echo b > home/bob/f && stat -c '%u:%g' home/bob/f`); code != 0 || out != "1600:1600\n" {
		t.Fatalf("uid 1600 through the host's mount: %d %s", code, out)
	}
	if _, code := sh(t, hostMnt, 1600, `cat home/alice/note`); code == 0 {
		t.Fatal("uid 1600 read alice's file through the host's mount")
	}
	if out, code := sh(t, hostMnt, 0, `cat secret`); code != 0 || out != "root only" {
		t.Fatalf("root through the host's mount: %d %s", code, out)
	}

	// The same token without the certificate acts as the host user only.
	noCert := c.mount("--token", host, "--cert", "", "--key", "")
	if out, code := sh(t, noCert, 0, `cat secret`); code == 0 {
		t.Fatalf("the host token without its certificate acted for root: %s", out)
	}
	if b, err := c.as(bob).ReadFile(ctx, "/home/bob/f"); err != nil || string(b) != "b\n" {
		t.Fatalf("bob's file through the API: %q %v", b, err)
	}
}
