package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shoal/meta"
)

func TestClaimRoundTrip(t *testing.T) {
	for _, c := range []Claim{{Group: "g2"}, {Group: "g-2a", Boot: true}, {Released: "g7"}} {
		dir := t.TempDir()
		if err := SaveClaim(dir, c); err != nil {
			t.Fatalf("save %+v: %v", c, err)
		}
		got, ok, err := LoadClaim(dir)
		if err != nil || !ok || got != c {
			t.Errorf("load after saving %+v = %+v, %v, %v", c, got, ok, err)
		}
	}
}

// The file format is documented in claim.go; a saved claim replaces the
// previous one whole.
func TestClaimFileFormat(t *testing.T) {
	dir := t.TempDir()
	if err := SaveClaim(dir, Claim{Group: "g3", Boot: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, claimFile)); err != nil || string(b) != "group=g3\nboot=1\n" {
		t.Errorf("claim file = %q, %v", b, err)
	}
	if err := SaveClaim(dir, Claim{Group: "g4"}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := LoadClaim(dir); err != nil || !ok || got != (Claim{Group: "g4"}) {
		t.Errorf("load after overwrite = %+v, %v, %v; want group g4 without boot", got, ok, err)
	}
}

func TestLoadClaimMissing(t *testing.T) {
	got, ok, err := LoadClaim(t.TempDir())
	if err != nil || ok || got != (Claim{}) {
		t.Errorf("load with no claim file = %+v, %v, %v; want nothing and no error", got, ok, err)
	}
}

func TestLoadClaimCorrupt(t *testing.T) {
	for _, content := range []string{"", "garbage\n", "boot=1\n", "group=\nboot=1\n", "\x00\x01\x02"} {
		dir := t.TempDir()
		p := filepath.Join(dir, claimFile)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, ok, err := LoadClaim(dir)
		if err == nil || ok {
			t.Errorf("load of %q: ok %v, err %v; want an error", content, ok, err)
			continue
		}
		// The error names the file and says how to recover.
		if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, "remove it") {
			t.Errorf("load of %q: error %q does not name %s and the way out", content, msg, p)
		}
	}
}

func TestLoadClaimUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, claimFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := LoadClaim(dir); err == nil || ok || !strings.Contains(err.Error(), "read claim") {
		t.Errorf("load of a claim path that is a directory: ok %v, err %v; want a read error", ok, err)
	}
}

func TestSaveClaimError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	err := SaveClaim(dir, Claim{Group: "g5"})
	if err == nil || !strings.Contains(err.Error(), "g5") {
		t.Errorf("save into a missing directory: %v; want an error naming the group", err)
	}
}

// Wipe leaves the state of a node that never served a group: no log, no
// promise, an empty namespace and no chunks, so a claim can be accepted.
func TestWipe(t *testing.T) {
	d := crOpen(t, t.TempDir())
	if err := d.Chunks.Put(meta.HashOf([]byte("x")), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Append([]meta.Entry{{Index: 1, Ballot: meta.Ballot{Term: 1, Node: 1}, Op: meta.Op{Kind: meta.OpMkdir, Path: "/d"}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Apply(1); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPromised(meta.Ballot{Term: 3, Node: 2}); err != nil {
		t.Fatal(err)
	}
	if err := d.Wipe(); err != nil {
		t.Fatal(err)
	}
	st, err := d.State()
	if err != nil || st.LastIndex != 0 || st.Applied != 0 {
		t.Fatalf("after wipe: %+v, %v; want an empty log", st, err)
	}
	if p, err := d.Promised(); err != nil || p != (meta.Ballot{}) {
		t.Fatalf("after wipe the promise is %s, %v", p, err)
	}
	if n := d.Chunks.Count(); n != 0 || d.Chunks.Used() != 0 {
		t.Fatalf("after wipe %d chunks (%d bytes) remain", n, d.Chunks.Used())
	}
	if _, err := d.Reader().LookupAt(0, "/d", nil, 0); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("after wipe /d: %v, want not found", err)
	}
}
