package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMountDifferential applies one random sequence of file-system calls
// to the mount and to a local directory, and after every call compares
// the errors and then the whole trees: types, sizes, modes, link counts,
// which names share an inode, file contents and symlink targets.
//
// SHOAL_MOUNT_DIFF_SEED replays one seed; SHOAL_MOUNT_DIFF_SEEDS and
// SHOAL_MOUNT_DIFF_STEPS run more.
func TestMountDifferential(t *testing.T) {
	// A write buffer smaller than most writes, so writes are sent in the
	// background while the next ones gather.
	_, mnt := mountCluster(t, "--write-buffer", "16KiB")
	seeds := []uint64{uint64(time.Now().UnixNano()), 1}
	if s := os.Getenv("SHOAL_MOUNT_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SHOAL_MOUNT_DIFF_SEED=%q", s)
		}
		seeds = []uint64{v}
	} else if n := envInt(t, "SHOAL_MOUNT_DIFF_SEEDS", 0); n > 0 {
		seeds = seeds[:0]
		for i := range n {
			seeds = append(seeds, uint64(time.Now().UnixNano())+uint64(i))
		}
	}
	steps := envInt(t, "SHOAL_MOUNT_DIFF_STEPS", 150)
	for i, seed := range seeds {
		local := t.TempDir()
		remote := filepath.Join(mnt, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(remote, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d (replay with SHOAL_MOUNT_DIFF_SEED=%d)", seed, seed)
		runDifferential(t, seed, steps, local, remote)
	}
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: want a number", name, s)
	}
	return v
}

// diffPaths are the names the random calls use: few, so that calls meet
// (a rename onto a name in use, an rmdir of a directory with files).
var diffPaths = []string{"f", "g", "a", "b", "a/f", "a/g", "a/c", "a/c/f", "b/f", "b/a", "f/x"}

// fsCall is one random call, applied to a root.
type fsCall struct {
	desc string
	do   func(root string) error
}

func randomCall(r *rand.Rand) fsCall {
	p := diffPaths[r.IntN(len(diffPaths))]
	q := diffPaths[r.IntN(len(diffPaths))]
	join := func(root, p string) string { return filepath.Join(root, p) }
	switch r.IntN(13) {
	case 0, 1:
		return fsCall{"create " + p, func(root string) error {
			f, err := os.OpenFile(join(root, p), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err == nil {
				err = f.Close()
			}
			return err
		}}
	case 2, 3:
		off := int64(r.IntN(3 * mountChunk))
		data := randomBytes(r.Uint64(), 1+r.IntN(mountChunk+200))
		return fsCall{fmt.Sprintf("write %d bytes at %d to %s", len(data), off, p), func(root string) error {
			f, err := os.OpenFile(join(root, p), os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteAt(data, off)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}}
	case 11:
		// Several writes through one open file, read back before close.
		offs := []int64{int64(r.IntN(2 * mountChunk)), int64(r.IntN(2 * mountChunk)), int64(r.IntN(2 * mountChunk))}
		datas := [][]byte{randomBytes(r.Uint64(), 1+r.IntN(40000)), randomBytes(r.Uint64(), 1+r.IntN(40000)), randomBytes(r.Uint64(), 1+r.IntN(40000))}
		return fsCall{fmt.Sprintf("write at %v and read back through one open %s", offs, p), func(root string) error {
			f, err := os.OpenFile(join(root, p), os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			for i := range offs {
				if _, err := f.WriteAt(datas[i], offs[i]); err != nil {
					return err
				}
			}
			got := make([]byte, len(datas[2]))
			if _, err := f.ReadAt(got, offs[2]); err != nil || !bytes.Equal(got, datas[2]) {
				return fmt.Errorf("read back before close: %v", err)
			}
			return f.Close()
		}}
	case 4:
		data := randomBytes(r.Uint64(), 1+r.IntN(300))
		return fsCall{fmt.Sprintf("append %d bytes to %s", len(data), p), func(root string) error {
			f, err := os.OpenFile(join(root, p), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.Write(data)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}}
	case 5:
		size := int64(r.IntN(3 * mountChunk))
		return fsCall{fmt.Sprintf("truncate %s to %d", p, size), func(root string) error {
			return syscall.Truncate(join(root, p), size)
		}}
	case 6:
		return fsCall{"rename " + p + " " + q, func(root string) error { return syscall.Rename(join(root, p), join(root, q)) }}
	case 7:
		return fsCall{"link " + p + " " + q, func(root string) error { return syscall.Link(join(root, p), join(root, q)) }}
	case 8:
		return fsCall{"unlink " + p, func(root string) error { return syscall.Unlink(join(root, p)) }}
	case 9:
		return fsCall{"mkdir " + p, func(root string) error { return syscall.Mkdir(join(root, p), 0o755) }}
	case 10:
		return fsCall{"rmdir " + p, func(root string) error { return syscall.Rmdir(join(root, p)) }}
	}
	target := []string{"f", "../g", "a/c", "nowhere"}[r.IntN(4)]
	return fsCall{"symlink " + target + " " + p, func(root string) error { return syscall.Symlink(target, join(root, p)) }}
}

func runDifferential(t *testing.T, seed uint64, steps int, local, remote string) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	var history []string
	for step := range steps {
		call := randomCall(r)
		history = append(history, call.desc)
		fail := func(format string, args ...any) {
			t.Fatalf("seed %d step %d (%s): %s\nsteps so far:\n  %s", seed, step, call.desc,
				fmt.Sprintf(format, args...), strings.Join(history, "\n  "))
		}
		want, got := errnoOf(call.do(local)), errnoOf(call.do(remote))
		if want != got {
			fail("the mount answered %v, the local directory %v", got, want)
		}
		lt, err := snapshotTree(local)
		if err != nil {
			fail("local tree: %v", err)
		}
		mt, err := snapshotTree(remote)
		if err != nil {
			fail("mounted tree: %v", err)
		}
		if d := diffTrees(lt, mt); d != "" {
			fail("the trees differ:\n%s", d)
		}
	}
}

// errnoOf reduces an error to its errno (0 for none), which both sides
// must agree on.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.Errno(0xffff)
}

// treeEntry is what the comparison sees of one name.
type treeEntry struct {
	kind    string // file, dir, symlink
	perm    os.FileMode
	nlink   uint64
	size    int64 // files and symlinks
	content string
	ino     uint64 // compared only as "which names share an inode"
}

func snapshotTree(root string) (map[string]treeEntry, error) {
	out := map[string]treeEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		e := treeEntry{perm: st.Mode().Perm(), nlink: uint64(sys.Nlink), ino: sys.Ino}
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			e.kind, e.size = "symlink", st.Size()
			e.content, err = os.Readlink(p)
		case st.IsDir():
			e.kind = "dir"
		default:
			e.kind, e.size = "file", st.Size()
			var b []byte
			b, err = os.ReadFile(p)
			e.content = string(b)
		}
		out[rel] = e
		return err
	})
	return out, err
}

func diffTrees(want, got map[string]treeEntry) string {
	var d []string
	names := map[string]bool{}
	for n := range want {
		names[n] = true
	}
	for n := range got {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		w, okw := want[n]
		g, okg := got[n]
		switch {
		case !okw:
			d = append(d, fmt.Sprintf("%s: only in the mount (%s)", n, g.kind))
		case !okg:
			d = append(d, fmt.Sprintf("%s: missing from the mount (%s)", n, w.kind))
		case w.kind != g.kind || w.perm != g.perm || w.nlink != g.nlink || w.size != g.size:
			d = append(d, fmt.Sprintf("%s: mount %s %v nlink %d size %d, local %s %v nlink %d size %d",
				n, g.kind, g.perm, g.nlink, g.size, w.kind, w.perm, w.nlink, w.size))
		case w.content != g.content:
			d = append(d, fmt.Sprintf("%s: contents differ (%d bytes in both): first difference at %d", n, len(w.content), firstDiff(w.content, g.content)))
		}
	}
	// Hard links: the same names must share an inode on both sides.
	for _, a := range sorted {
		for _, b := range sorted {
			wa, okwa := want[a]
			wb, okwb := want[b]
			ga, okga := got[a]
			gb, okgb := got[b]
			if a < b && okwa && okwb && okga && okgb && (wa.ino == wb.ino) != (ga.ino == gb.ino) {
				d = append(d, fmt.Sprintf("%s and %s: one inode locally %v, on the mount %v", a, b, wa.ino == wb.ino, ga.ino == gb.ino))
			}
		}
	}
	return strings.Join(d, "\n")
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
