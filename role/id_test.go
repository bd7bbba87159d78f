package role

import (
	"path/filepath"
	"strings"
	"testing"
)

// LoadID derives an ID once and keeps it; an ID asked for is kept, and a
// directory that belongs to another ID is refused.
func TestLoadID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id, err := LoadID(dir, 0)
	if err != nil || id == 0 || id >= 1<<53 {
		t.Fatalf("first LoadID = %d, %v; want a non-zero ID below 2^53", id, err)
	}
	if again, err := LoadID(dir, 0); err != nil || again != id {
		t.Errorf("LoadID after a restart = %d, %v; want %d", again, err, id)
	}
	if again, err := LoadID(dir, id); err != nil || again != id {
		t.Errorf("LoadID asking for the kept ID = %d, %v; want %d", again, err, id)
	}
	if _, err := LoadID(dir, id+1); err == nil || !strings.Contains(err.Error(), "belongs to node") {
		t.Errorf("LoadID asking for another ID: %v; want the directory refused", err)
	}
	other := t.TempDir()
	if got, err := LoadID(other, 9); err != nil || got != 9 {
		t.Errorf("LoadID(9) on a fresh directory = %d, %v", got, err)
	}
	if got, err := LoadID(other, 0); err != nil || got != 9 {
		t.Errorf("LoadID after keeping 9 = %d, %v", got, err)
	}
}
