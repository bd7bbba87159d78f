package e2e

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"shoal/harness"
	"shoal/secure"
)

// TestGossipKeyRotation rotates the gossip key of a running cluster with
// the CLI (install, use, remove), then restarts a storage node started
// with the old key only: its keyring file brings it back, and the group
// serves on.
func TestGossipKeyRotation(t *testing.T) {
	c := newCluster(t, 3)
	c.expect("PUT", "/v1/fs/before", strings.NewReader("x"), 201)
	old, err := secure.LoadKeys(secure.Dir(c.Secrets).GossipKey())
	if err != nil {
		t.Fatal(err)
	}
	next := secure.NewKey()
	for _, args := range [][]string{{"keyring", "install", next}, {"keyring", "use", next}} {
		out, errOut, code := c.run(args...)
		if code != 0 || !strings.Contains(out, "4 of 4 members answered, 0 failed") {
			t.Fatalf("shoal %v: %d\n%s%s", args[:2], code, out, errOut)
		}
	}
	oldKey := encodeKey(old[0])
	out, errOut, code := c.run("keyring", "remove", oldKey)
	if code != 0 {
		t.Fatalf("remove the old key: %d\n%s%s", code, out, errOut)
	}
	out, _, code = c.run("keyring", "list")
	if code != 0 || strings.Contains(out, oldKey) || !strings.Contains(out, next+"  held by 4, in use by 4") {
		t.Fatalf("keyring list after the rotation: %d\n%s", code, out)
	}
	// A member restarted with only the old key in --secrets still speaks
	// the new one, from its data directory.
	if err := c.Nodes[2].Restart(); err != nil {
		t.Fatal(err)
	}
	c.waitGroup(3, "")
	harness.Await(t, 20*time.Second, "a write after the restart", func() bool {
		st, _, _ := c.do("PUT", "/v1/fs/after", strings.NewReader("y"))
		return st == 201 || st == 204
	})
	// A non-admin may not touch the keys.
	if _, errOut, code := c.runAs(c.addUser("alice"), "keyring", "list"); code == 0 || !strings.Contains(errOut, "admins") {
		t.Fatalf("alice listed the keys: %d %s", code, errOut)
	}
}

func encodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }
