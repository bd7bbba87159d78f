package store

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// fsCases are the FS implementations every FS test runs against, each
// with a directory to work in.
func fsCases(t *testing.T) map[string]func() (FS, string) {
	return map[string]func() (FS, string){
		"os":  func() (FS, string) { return OSFS{}, t.TempDir() },
		"mem": func() (FS, string) { return NewMemFS(), "/data" },
		// Failing nothing, a FailFS is the FS beneath it.
		"fail": func() (FS, string) { return NewFailFS(NewMemFS()), "/data" },
	}
}

// TestFSConformance holds the implementations to the behaviour of the os
// package that the store relies on.
func TestFSConformance(t *testing.T) {
	for name, open := range fsCases(t) {
		t.Run(name, func(t *testing.T) {
			fsys, dir := open()
			sub := filepath.Join(dir, "a", "b")
			if err := fsys.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := fsys.MkdirAll(sub, 0o755); err != nil {
				t.Fatalf("MkdirAll of an existing directory: %v", err)
			}
			p := filepath.Join(sub, "f")
			f, err := fsys.Create(p, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if f.Name() != p {
				t.Errorf("Name() = %q, want %q", f.Name(), p)
			}
			for _, s := range []string{"hello, ", "world"} {
				if n, err := f.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("write %q: %d, %v", s, n, err)
				}
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if fi, err := f.Stat(); err != nil || fi.Size() != 12 || !fi.Mode().IsRegular() {
				t.Errorf("stat of the open file: %v, %v", fi, err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if b, err := readFile(fsys, p); err != nil || string(b) != "hello, world" {
				t.Errorf("readFile = %q, %v", b, err)
			}

			r, err := fsys.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if n, err := r.ReadAt(buf, 7); n != 5 || err != nil && err != io.EOF || string(buf) != "world" {
				t.Errorf("ReadAt(7) = %d %q, %v", n, buf, err)
			}
			if n, err := r.ReadAt(buf, 12); n != 0 || err != io.EOF {
				t.Errorf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
			}
			if _, err := r.Write([]byte("x")); err == nil {
				t.Error("write to a file opened for reading succeeded")
			}
			r.Close()

			// Create truncates.
			f, err = fsys.Create(p, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("new"))
			f.Close()
			if b, err := readFile(fsys, p); err != nil || string(b) != "new" {
				t.Errorf("after re-create: %q, %v", b, err)
			}

			when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			if err := fsys.Chtimes(p, when, when); err != nil {
				t.Fatal(err)
			}
			q := filepath.Join(sub, "g")
			if err := fsys.Rename(p, q); err != nil {
				t.Fatal(err)
			}
			if fi, err := fsys.Stat(q); err != nil || !fi.ModTime().Equal(when) || fi.Size() != 3 || fi.Name() != "g" {
				t.Errorf("stat after rename: %v, %v; want the mtime kept", fi, err)
			}
			if _, err := fsys.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("old name after rename: %v, want ErrNotExist", err)
			}

			tmp, err := fsys.CreateTemp(sub, ".tmp-*")
			if err != nil {
				t.Fatal(err)
			}
			tmp.Close()
			if filepath.Dir(tmp.Name()) != sub || len(filepath.Base(tmp.Name())) <= len(".tmp-") {
				t.Errorf("CreateTemp made %q", tmp.Name())
			}
			entries, err := fsys.ReadDir(sub)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
				if e.IsDir() || !e.Type().IsRegular() {
					t.Errorf("entry %s: type %v", e.Name(), e.Type())
				}
			}
			if want := []string{filepath.Base(tmp.Name()), "g"}; !slices.Equal(names, want) {
				t.Errorf("ReadDir = %q, want %q", names, want)
			}
			if err := fsys.SyncDir(sub); err != nil {
				t.Fatal(err)
			}

			if err := fsys.Remove(filepath.Join(dir, "a")); err == nil {
				t.Error("removed a directory that is not empty")
			}
			for _, n := range []string{q, tmp.Name()} {
				if err := fsys.Remove(n); err != nil {
					t.Fatal(err)
				}
			}
			if err := fsys.Remove(q); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("remove of a missing file: %v, want ErrNotExist", err)
			}
			if _, err := fsys.Open(q); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("open of a missing file: %v, want ErrNotExist", err)
			}
			if _, err := readFile(fsys, sub); err == nil {
				t.Error("readFile of a directory succeeded")
			}
			if err := fsys.Remove(sub); err != nil {
				t.Errorf("remove of an empty directory: %v", err)
			}
		})
	}
}

// memWrite creates p on m with data, synced or not.
func memWrite(t *testing.T, m *MemFS, p, data string, sync bool) {
	t.Helper()
	f, err := m.Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
}

// memContent is the content of p on m, or "-" if it does not exist.
func memContent(t *testing.T, m *MemFS, p string) string {
	t.Helper()
	b, err := readFile(m, p)
	if errors.Is(err, fs.ErrNotExist) {
		return "-"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMemFSCrash checks what a crash keeps: synced content under synced
// names, and nothing else.
func TestMemFSCrash(t *testing.T) {
	m := NewMemFS()
	if err := m.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	memWrite(t, m, "/d/lost", "no dir sync", true)
	if got := memContent(t, m.CrashClone(), "/d/lost"); got != "-" {
		t.Errorf("file in a directory never synced into its parent: %q, want lost", got)
	}
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	memWrite(t, m, "/d/unsynced", "content", false)
	memWrite(t, m, "/d/synced", "content", true)
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	memWrite(t, m, "/d/late", "after the dir sync", true)
	c := m.CrashClone()
	for p, want := range map[string]string{"/d/lost": "no dir sync", "/d/unsynced": "", "/d/synced": "content", "/d/late": "-"} {
		if got := memContent(t, c, p); got != want {
			t.Errorf("after a crash, %s = %q, want %q", p, got, want)
		}
	}

	// A rename is durable with its directory's sync; content written
	// after the last file sync is not.
	f, err := m.Create("/d/synced", 0o644) // truncates, unsynced
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("rewritten"))
	f.Close()
	if err := m.Rename("/d/late", "/d/moved"); err != nil {
		t.Fatal(err)
	}
	c = m.CrashClone()
	for p, want := range map[string]string{"/d/synced": "content", "/d/late": "-", "/d/moved": "-"} {
		if got := memContent(t, c, p); got != want {
			t.Errorf("after a crash before the dir sync, %s = %q, want %q", p, got, want)
		}
	}
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("/d/lost"); err != nil {
		t.Fatal(err)
	}
	c = m.CrashClone()
	for p, want := range map[string]string{"/d/late": "-", "/d/moved": "after the dir sync", "/d/lost": "no dir sync"} {
		if got := memContent(t, c, p); got != want {
			t.Errorf("after a crash, %s = %q, want %q", p, got, want)
		}
	}
	// The clone is a machine after restart: all it holds is durable.
	if got := memContent(t, c.CrashClone(), "/d/moved"); got != "after the dir sync" {
		t.Errorf("second crash lost what the first kept: %q", got)
	}
	// The original goes on as if nothing happened.
	if got := memContent(t, m, "/d/synced"); got != "rewritten" {
		t.Errorf("original after CrashClone: %q", got)
	}
}
