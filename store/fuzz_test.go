package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shoal/meta"
)

// FuzzChunkStoreLoad opens a chunk directory holding one file of any name
// in any fan-out directory: the index takes it only if it sits where the
// store would write the chunk its name spells, and opening removes only
// leftover temporary files.
func FuzzChunkStoreLoad(f *testing.F) {
	h := meta.HashOf([]byte("chunk"))
	x := h.String()
	for _, s := range [][2]string{
		{x[:2], x}, {x[2:4], x}, {x[:2], strings.ToUpper(x)}, {x[:2], x[:63]}, {x[:2], tempPrefix + "1"},
		{"", x}, {x[:2], x + ".bak"}, {"zz", "zz"}, {x[:2] + "/" + x[:2], x},
	} {
		f.Add(s[0], s[1], []byte("chunk"))
	}
	f.Fuzz(func(t *testing.T, sub, name string, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, sub, name)
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			return // climbs out of dir, or is dir itself
		}
		name = filepath.Base(p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return // NUL, too long, or a component that is not a directory name
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return
		}
		s, err := OpenChunkStore(OSFS{}, dir)
		if err != nil {
			t.Fatalf("open with a file %q: %v", p, err)
		}
		want, perr := meta.ParseHash(name)
		ours := perr == nil && p == s.path(want)
		if got := s.ListAll(); ours != (len(got) == 1) || ours && got[0] != want {
			t.Fatalf("file %q: index %v, want it taken: %v", p, got, ours)
		}
		if ours && s.Used() != int64(len(data)) {
			t.Fatalf("file %q of %d bytes: used %d", p, len(data), s.Used())
		}
		after, rerr := os.ReadFile(p)
		switch temp := strings.HasPrefix(name, tempPrefix); {
		case temp && rerr == nil:
			t.Fatalf("leftover temporary file %q kept", p)
		case !temp && (rerr != nil || !bytes.Equal(after, data)):
			t.Fatalf("file %q changed or removed by open: %v", p, rerr)
		}
	})
}
