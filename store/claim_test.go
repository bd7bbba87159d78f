package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClaimRoundTrip(t *testing.T) {
	for _, c := range []Claim{{Group: "g2"}, {Group: "g-2a", Boot: true}} {
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
