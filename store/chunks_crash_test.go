package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"shoal/meta"
)

const crashDir = "/data/chunks"

// crashSetup returns a MemFS for a chunk store in crashDir: empty, or
// with the chunk directory and the fan-out directory of h already there
// and durable.
func crashSetup(t *testing.T, h meta.Hash, fresh bool) *MemFS {
	t.Helper()
	m := NewMemFS()
	if fresh {
		return m
	}
	fan := filepath.Dir((&ChunkStore{dir: crashDir}).path(h))
	if err := m.MkdirAll(fan, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/", "/data", crashDir} {
		if err := m.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// crashSetups names the two setups of crashSetup.
var crashSetups = map[string]bool{"existing directories": false, "new directories": true}

// memFiles lists every file under dir on m.
func memFiles(t *testing.T, m *MemFS, dir string) []string {
	t.Helper()
	entries, err := m.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			out = append(out, memFiles(t, m, p)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// checkChunkAfterCrash opens the store on image and checks that chunk h
// is whole or absent, on disk and in the index alike; it reports which.
func checkChunkAfterCrash(t *testing.T, image *MemFS, h meta.Hash, data []byte) bool {
	t.Helper()
	s, err := OpenChunkStore(image, crashDir)
	if err != nil {
		t.Fatalf("open after the crash: %v", err)
	}
	for _, p := range memFiles(t, image, crashDir) {
		if strings.HasPrefix(filepath.Base(p), tempPrefix) {
			t.Errorf("temporary file %s survived open", p)
		}
	}
	b, err := readFile(image, s.path(h))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if s.Has(h) || s.Count() != 0 || s.Used() != 0 {
			t.Errorf("no chunk file, but the index has %v, count %d, used %d", s.Has(h), s.Count(), s.Used())
		}
		return false
	case err != nil:
		t.Fatal(err)
	case string(b) != string(data):
		t.Errorf("chunk file holds %q, want %q or no file", b, data)
	}
	if got, err := s.Get(h); err != nil || string(got) != string(data) {
		t.Errorf("get after the crash: %q, %v", got, err)
	}
	if s.Count() != 1 || s.Used() != int64(len(data)) {
		t.Errorf("count %d used %d, want 1 and %d", s.Count(), s.Used(), len(data))
	}
	return true
}

// A crash at any step of a Put, even between the write and the rename,
// leaves the chunk either whole or absent, and the store opens cleanly. A
// crash after the Put returned keeps the chunk, also when the Put (or the
// open before it) had to create its directory.
func TestChunkStoreCrashDuringPut(t *testing.T) {
	for name, fresh := range crashSetups {
		t.Run(name, func(t *testing.T) { testCrashDuringPut(t, fresh) })
	}
}

func testCrashDuringPut(t *testing.T, fresh bool) {
	h, data := csChunk(1)
	renamed := 0 // crashes that left the chunk under its name
	for at := 1; ; at++ {
		m := crashSetup(t, h, fresh)
		c := &crashPoint{mem: m}
		s, err := OpenChunkStore(&faultFS{mem: m, hook: c.hook}, crashDir)
		if err != nil {
			t.Fatal(err)
		}
		c.at = at
		err = s.Put(h, data)
		if c.image != nil {
			if err == nil {
				t.Errorf("crash before step %d (%s): put reported success", at, c.ops[at-1])
			}
			t.Run(fmt.Sprintf("before step %d %s", at, c.ops[at-1]), func(t *testing.T) {
				checkChunkAfterCrash(t, c.image, h, data)
				if checkChunkAfterCrash(t, c.named, h, data) {
					renamed++
				}
			})
			continue
		}
		if err != nil {
			t.Fatalf("put without a crash: %v", err)
		}
		t.Logf("crashed before each of the %d steps of a put: %s", at-1, strings.Join(c.ops, ", "))
		if renamed == 0 {
			t.Error("no crash left the chunk under its name before the put returned: no rename was checked against its content")
		}
		t.Run("after the put", func(t *testing.T) {
			if !checkChunkAfterCrash(t, m.CrashClone(), h, data) {
				t.Error("a stored chunk was lost in a crash")
			}
		})
		return
	}
}

// A process killed at any step of a Put, while the machine stays up,
// restarts with the chunk whole or absent; a chunk the restarted store
// has in its index survives a power loss that follows. (A Put of it now
// only touches it and reports it stored.)
func TestChunkStoreKilledDuringPut(t *testing.T) {
	h, data := csChunk(1)
	for at := 1; ; at++ {
		m := crashSetup(t, h, true)
		c := &crashPoint{mem: m}
		s, err := OpenChunkStore(&faultFS{mem: m, hook: c.hook}, crashDir)
		if err != nil {
			t.Fatal(err)
		}
		c.at = at
		if s.Put(h, data); c.image == nil {
			return // every step was a kill point
		}
		t.Run(fmt.Sprintf("before step %d %s", at, c.ops[at-1]), func(t *testing.T) {
			had := checkChunkAfterCrash(t, m, h, data) // the restart sees unsynced state too
			if had && !checkChunkAfterCrash(t, m.CrashClone(), h, data) {
				t.Error("the restarted store had the chunk; a power loss then lost it")
			}
		})
	}
}

// A full disk fails a Put with ErrNoSpace at whichever step it strikes, and
// leaves no temporary file behind.
func TestChunkStorePutNoSpace(t *testing.T) {
	h, data := csChunk(1)
	for _, op := range []string{"mkdirall", "createtemp", "write", "sync", "close"} {
		t.Run(op, func(t *testing.T) {
			m := NewMemFS()
			full := false
			fsys := &faultFS{mem: m, hook: func(o string) error {
				if full && o == op {
					return &fs.PathError{Op: o, Path: "chunk", Err: syscall.ENOSPC}
				}
				return nil
			}}
			s, err := OpenChunkStore(fsys, crashDir)
			if err != nil {
				t.Fatal(err)
			}
			full = true
			if err := s.Put(h, data); !errors.Is(err, meta.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("put on a full disk: %v, want ErrNoSpace wrapping ENOSPC", err)
			}
			if files := memFiles(t, m, crashDir); len(files) != 0 {
				t.Errorf("files left by a failed put: %v", files)
			}
			if s.Has(h) || s.Count() != 0 || s.Used() != 0 {
				t.Errorf("failed put counted: has %v, count %d, used %d", s.Has(h), s.Count(), s.Used())
			}
			full = false
			if err := s.Put(h, data); err != nil {
				t.Errorf("put once space is back: %v", err)
			}
		})
	}
}
