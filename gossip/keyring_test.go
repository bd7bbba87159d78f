package gossip

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/harness"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// lockedBuffer is a log sink read while gossip writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWrongKeyIsNotSeen: a process with another gossip key, or none,
// trying to join an encrypted cluster is in nobody's view, and both sides
// say why in their logs.
func TestWrongKeyIsNotSeen(t *testing.T) {
	key := newKey(t)
	logs := &lockedBuffer{}
	cfg := testConfig(t, "a", tagsA)
	cfg.Keys, cfg.Logger = [][]byte{key}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a := startNode(t, cfg)
	cfg = testConfig(t, "b", tagsB, a.GossipAddr())
	cfg.Keys = [][]byte{key}
	b := startNode(t, cfg)
	harness.Await(t, 5*time.Second, "a and b to see each other", func() bool { _, ok := find(a, "b"); return ok })

	intruderLogs := &lockedBuffer{}
	evil := tagsB
	evil.ID, evil.Term = 99, 1<<40
	cfg = testConfig(t, "intruder", evil, a.GossipAddr())
	cfg.Keys = [][]byte{newKey(t)}
	cfg.Logger = slog.New(slog.NewTextHandler(intruderLogs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	startNode(t, cfg)
	cfg = testConfig(t, "plain", evil, a.GossipAddr())
	startNode(t, cfg)

	harness.Await(t, 10*time.Second, "the intruder to log that its join was refused", func() bool {
		return strings.Contains(intruderLogs.String(), "gossip join refused")
	})
	harness.Await(t, 10*time.Second, "a to log a message no key opens", func() bool {
		return strings.Contains(logs.String(), "no gossip key opens")
	})
	for _, n := range []*Node{a, b} {
		for _, m := range n.Members() {
			if m.Name != "a" && m.Name != "b" {
				t.Errorf("%s sees %s (%+v)", n.Local().Name, m.Name, m.Tags)
			}
		}
		if p := Elect(n.Members(), "g1").Primary; p == nil || p.Name != "a" {
			t.Errorf("%s elects %v", n.Local().Name, p)
		}
	}
}

// TestKeyRotation installs a new key on a running cluster, makes it the
// one in use, removes the old one, and restarts a member with only the
// old key configured: its keyring file brings it back.
func TestKeyRotation(t *testing.T) {
	old, next := newKey(t), newKey(t)
	dir := t.TempDir()
	mk := func(name string, tags Tags, join ...string) Config {
		cfg := testConfig(t, name, tags, join...)
		cfg.Keys, cfg.KeyringFile = [][]byte{old}, filepath.Join(dir, name+".keyring")
		return cfg
	}
	a := startNode(t, mk("a", tagsA))
	b := startNode(t, mk("b", tagsB, a.GossipAddr()))
	harness.Await(t, 5*time.Second, "a and b to see each other", func() bool { _, ok := find(b, "a"); return ok })
	enc := base64.StdEncoding.EncodeToString(next)
	for _, op := range []KeyringOp{KeyInstall, KeyUse, KeyRemove} {
		key := enc
		if op == KeyRemove {
			key = base64.StdEncoding.EncodeToString(old)
		}
		res, err := a.Keyring(op, key)
		if err != nil || res.Errors != 0 || res.Responses != 2 {
			t.Fatalf("keyring %s: %+v, %v", op, res, err)
		}
	}
	res, err := b.Keyring(KeyList, "")
	if err != nil || len(res.Keys) != 1 || res.Primary[enc] != 2 {
		t.Fatalf("after rotation: %+v, %v", res, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startNode(t, mk("b", tagsB, a.GossipAddr()))
	harness.Await(t, 10*time.Second, "b, restarted with the old key configured, to rejoin", func() bool {
		m, ok := find(a, "b")
		return ok && m.Status == StatusAlive && len(b2.Members()) == 2
	})
	if _, err := startNode(t, testConfig(t, "x", tagsC)).Keyring(KeyList, ""); err == nil {
		t.Fatal("keyring of an unencrypted node answered")
	}
}
