package e2e

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// randomTree makes a tree of nested directories, files of assorted sizes
// (some across chunk boundaries), modes and times, symlinks, an empty
// directory and a FIFO under root, and returns how many files it made.
func randomTree(t *testing.T, root string, seed uint64) int {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	dirs := []string{root}
	files := 0
	for i := range 12 {
		parent := dirs[r.IntN(len(dirs))]
		d := filepath.Join(parent, fmt.Sprintf("dir %d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	modes := []fs.FileMode{0o644, 0o600, 0o755, 0o640, 0o444}
	sizes := []int{0, 1, 100, 4096, 70_000, 4<<20 + 17}
	for i := range 40 {
		dir := dirs[r.IntN(len(dirs))]
		p := filepath.Join(dir, fmt.Sprintf("file-%02d.bin", i))
		data := make([]byte, sizes[r.IntN(len(sizes))])
		for j := range data {
			data[j] = byte(r.UintN(256))
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, modes[r.IntN(len(modes))]); err != nil {
			t.Fatal(err)
		}
		mt := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(5 * 365 * 24 * time.Hour))))
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		files++
	}
	for i, target := range []string{"file-00.bin", "../elsewhere", "/absolute/path"} {
		if err := os.Symlink(target, filepath.Join(dirs[r.IntN(len(dirs))], fmt.Sprintf("link-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Directory modes and times last: writing into a directory changes
	// its time.
	for i, d := range dirs[1:] {
		if i%3 == 0 {
			if err := os.Chmod(d, 0o750); err != nil {
				t.Fatal(err)
			}
		}
		mt := time.Date(2021, 6, 1, 0, 0, i, 0, time.UTC)
		if err := os.Chtimes(d, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// sameTree compares every entry under a and b but the one named skip at
// the top: type, mode, size, modification time (to the second: what tar
// and rsync keep), a symlink's target, and a file's bytes (with diff -r).
func sameTree(t *testing.T, a, b, skip string) {
	t.Helper()
	if out, err := exec.Command("diff", "-r", "--no-dereference", "--exclude", skip, a, b).CombinedOutput(); err != nil {
		t.Errorf("diff -r %s %s: %v\n%s", a, b, err, out)
	}
	seen := 0
	filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel, _ := filepath.Rel(a, p)
		if rel == skip {
			return nil
		}
		seen++
		ai, _ := os.Lstat(p)
		bi, err := os.Lstat(filepath.Join(b, rel))
		if err != nil {
			t.Errorf("%s: missing from the copy: %v", rel, err)
			return nil
		}
		if ai.Mode() != bi.Mode() {
			t.Errorf("%s: mode %v, copy %v", rel, ai.Mode(), bi.Mode())
		}
		if ai.Mode().IsRegular() && ai.Size() != bi.Size() {
			t.Errorf("%s: size %d, copy %d", rel, ai.Size(), bi.Size())
		}
		if ai.Mode()&fs.ModeSymlink == 0 && rel != "." && !ai.ModTime().Truncate(time.Second).Equal(bi.ModTime().Truncate(time.Second)) {
			t.Errorf("%s: modified %v, copy %v", rel, ai.ModTime(), bi.ModTime())
		}
		if ai.Mode()&fs.ModeSymlink != 0 {
			at, _ := os.Readlink(p)
			bt, _ := os.Readlink(filepath.Join(b, rel))
			if at != bt {
				t.Errorf("%s: symlink to %q, copy to %q", rel, at, bt)
			}
		}
		return nil
	})
	if seen < 10 {
		t.Errorf("compared only %d entries", seen)
	}
}

// put -r then get -r of a random tree gives back the same tree: bytes,
// modes, times, symlinks and empty directories; the FIFO is skipped with
// a warning, as the help says.
func TestPutGetTree(t *testing.T) {
	c := newCluster(t, 3)
	dir := t.TempDir()
	src := filepath.Join(dir, "photos")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	randomTree(t, src, uint64(time.Now().UnixNano()))

	if _, errOut, code := c.run("mkdir", "/backup"); code != 0 {
		t.Fatalf("mkdir: %s", errOut)
	}
	// Into an existing directory: the tree goes under its name.
	out, errOut, code := c.run("put", "-r", src, "/backup")
	if code != 0 || out != "" || !strings.Contains(errOut, "fifo: skipped: a FIFO is not copied") {
		t.Fatalf("put -r: exit %d, stdout %q, stderr %q; want exit 0, the FIFO skipped", code, out, errOut)
	}
	if _, errOut, code := c.run("stat", "/backup/photos/empty"); code != 0 {
		t.Fatalf("the empty directory was not uploaded: %s", errOut)
	}

	dst := filepath.Join(dir, "restored")
	if _, errOut, code := c.run("get", "-r", "/backup/photos", dst); code != 0 || errOut != "" {
		t.Fatalf("get -r: exit %d, stderr %q", code, errOut)
	}
	sameTree(t, src, dst, "fifo")

	// Again onto the existing copy: files replaced, symlinks remade,
	// still the same tree.
	if _, errOut, code := c.run("put", "-r", src, "/backup"); code != 0 {
		t.Fatalf("second put -r: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := c.run("get", "-r", "/backup/photos", dir); code != 0 || errOut != "" {
		t.Fatalf("get -r into a directory: exit %d, stderr %q", code, errOut)
	}
	sameTree(t, src, filepath.Join(dir, "photos"), "fifo")
}

// Bad input to put -r and get -r: one clear line, nothing copied.
func TestPutGetTreeRefusals(t *testing.T) {
	c := newCluster(t, 3)
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("x"), 0o644)
	c.run("put", file, "/f")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"put", "-r", file, "/x"}, "is not a directory; put -r copies a directory tree"},
		{[]string{"put", "-r", dir, "/f"}, "/f exists and is not a directory"},
		{[]string{"put", "-r", filepath.Join(dir, "missing"), "/x"}, "no such file or directory"},
		{[]string{"put", "-r", "-", "/x"}, "stdin is not one"},
		{[]string{"get", "-r", "/f", dir}, "/f is not a directory; get -r copies a directory tree"},
		{[]string{"get", "-r", "/missing", dir}, "no such file"},
	} {
		_, errOut, code := c.run(tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("shoal %s: exit %d, stderr %q; want exit 1 and one line with %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
	if out, _, _ := c.run("ls", "/"); strings.Contains(out, " x\n") {
		t.Errorf("a refused put -r made /x:\n%s", out)
	}
}

// A file that keeps changing while put reads it is tried again, then
// given up, and the cluster keeps no torn copy of it.
func TestPutOfAChangingFile(t *testing.T) {
	c := newCluster(t, 3)
	// Large (sent by chunks) and small (sent whole, so committed torn
	// before the change is seen; with --no-clobber, whose later tries
	// replace only their own torn copy).
	for _, tc := range []struct {
		size  int
		flags []string
	}{{32 << 20, nil}, {8 << 10, []string{"--no-clobber"}}} {
		p := filepath.Join(t.TempDir(), "growing.log")
		if err := os.WriteFile(p, make([]byte, tc.size), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() { // a writer that never lets the file hold still
			defer close(stopped)
			for i := int64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f.WriteAt([]byte{byte(i)}, i%int64(tc.size))
				f.Sync()
			}
		}()
		_, errOut, code := c.run(append(append([]string{"put"}, tc.flags...), p, "/logs/growing.log")...)
		close(stop)
		<-stopped
		f.Close()
		if code != 1 || !strings.Contains(errOut, "changed while it was read 3 times; not copied") {
			t.Fatalf("put %v of a changing file of %d bytes: exit %d, stderr %q", tc.flags, tc.size, code, errOut)
		}
		if _, _, code := c.run("exists", "/logs/growing.log"); code != 1 {
			t.Fatalf("a torn copy of the changing file was left in the cluster")
		}
		if _, _, code := c.run("exists", "/logs/.growing.log.shoal-part"); code != 1 {
			t.Fatalf("the partial file of the changing file was left in the cluster")
		}
		// Once it holds still, it is copied whole.
		if _, errOut, code := c.run("put", p, "/logs/growing.log"); code != 0 {
			t.Fatalf("put of the file at rest: exit %d %s", code, errOut)
		}
		out, _, _ := c.run("stat", "/logs/growing.log")
		want, _ := os.ReadFile(p)
		if !strings.Contains(out, fmt.Sprintf("size:  %d", len(want))) {
			t.Fatalf("stat after put: %s", out)
		}
		c.run("rm", "/logs/growing.log")
	}
}
