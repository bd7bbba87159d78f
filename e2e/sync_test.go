package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mutate changes a tree the way a user's working directory changes: new,
// rewritten, removed and retouched files, modes, removed directories, a
// file become a directory and back, symlinks pointing elsewhere.
func mutate(t *testing.T, root string, r *rand.Rand, round int) {
	t.Helper()
	var files, dirs, links []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil || p == root:
		case d.Type()&fs.ModeSymlink != 0:
			links = append(links, p)
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular():
			files = append(files, p)
		}
		return nil
	})
	pick := func(list []string) string {
		if len(list) == 0 {
			return ""
		}
		return list[r.IntN(len(list))]
	}
	write := func(p string, size int) {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(r.UintN(256))
		}
		if os.WriteFile(p, data, 0o644) != nil {
			return // p was under something this round removed
		}
		mt := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
		os.Chtimes(p, mt, mt)
	}
	for i := range 12 {
		op := r.IntN(9)
		if (op == 3 || op == 7) && i%6 != 0 {
			op = 0 // directories go now and then; the tree keeps growing
		}
		switch {
		case op == 0: // a new file, in a new directory now and then
			parent := append(dirs, root)[r.IntN(len(dirs)+1)]
			if i%4 == 0 {
				parent = filepath.Join(parent, fmt.Sprintf("newdir-%d-%d", round, i))
				os.Mkdir(parent, 0o755)
			}
			write(filepath.Join(parent, fmt.Sprintf("new-%d-%d", round, i)), r.IntN(100_000))
		case op == 1 && len(files) > 0: // rewritten
			write(pick(files), r.IntN(100_000))
		case op == 2 && len(files) > 0: // removed
			os.Remove(pick(files))
		case op == 3 && len(dirs) > 2: // a directory removed
			os.RemoveAll(pick(dirs))
		case op == 4 && len(files) > 0: // a new mode
			os.Chmod(pick(files), []fs.FileMode{0o600, 0o755, 0o640}[r.IntN(3)])
		case op == 5 && len(files) > 0: // touched: same bytes, new time
			mt := time.Date(2023, 3, 3, 3, 3, r.IntN(60), 0, time.UTC)
			os.Chtimes(pick(files), mt, mt)
		case op == 6 && len(files) > 0: // a file become a directory
			p := pick(files)
			os.Remove(p)
			os.Mkdir(p, 0o755)
			write(filepath.Join(p, "inside"), 10)
		case op == 7 && len(dirs) > 2: // a directory become a file
			p := pick(dirs)
			os.RemoveAll(p)
			write(p, 77)
		case op == 8 && len(links) > 0: // a symlink pointing elsewhere
			p := pick(links)
			os.Remove(p)
			os.Symlink(fmt.Sprintf("elsewhere-%d", round), p)
		}
	}
}

// syncJSON runs shoal sync --json and returns its summary.
func (c *cluster) syncJSON(args ...string) map[string]int64 {
	c.t.Helper()
	out, errOut, code := c.run(append([]string{"sync", "--json"}, args...)...)
	var sum map[string]int64
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil {
		c.t.Fatalf("shoal sync %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errOut)
	}
	return sum
}

// shoal sync keeps a cluster's copy of a changing tree, and a local copy
// of that, the same as rsync -a --delete keeps a local one: after every
// round of changes the tree synced to the cluster and back equals
// rsync's (bytes, modes, times, symlinks, empty directories), and a
// second sync finds nothing to do.
func TestSyncAgainstRsync(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		t.Skip("SKIPPED: rsync is not installed (apt-get install rsync); sync is not compared with it")
	}
	c := newCluster(t, 3)
	dir := t.TempDir()
	src, ref, out := filepath.Join(dir, "src"), filepath.Join(dir, "rsync"), filepath.Join(dir, "back")
	os.Mkdir(src, 0o755)
	randomTree(t, src, 7)
	os.Remove(filepath.Join(src, "fifo")) // rsync copies FIFOs, sync skips them (put -r's test checks the warning)
	r := rand.New(rand.NewPCG(7, 7))
	for round := range 4 {
		if round > 0 {
			mutate(t, src, r, round)
		}
		c.syncJSON("--delete", src, ":/mirror")
		if b, err := exec.Command(rsync, "-a", "--delete", src+"/", ref+"/").CombinedOutput(); err != nil {
			t.Fatalf("rsync: %v %s", err, b)
		}
		c.syncJSON("--delete", ":/mirror", out)
		sameTree(t, ref, out, "")
		sameTree(t, out, ref, "") // nothing extra either
		for _, dir := range [][2]string{{src, ":/mirror"}, {":/mirror", out}} {
			if sum := c.syncJSON("--delete", dir[0], dir[1]); sum["copied"] != 0 || sum["deleted"] != 0 || sum["unchanged"] == 0 {
				t.Fatalf("round %d: sync %s %s again: %v, want nothing to do", round, dir[0], dir[1], sum)
			}
		}
		if t.Failed() {
			t.Fatalf("round %d: the trees differ", round)
		}
	}

	// Same size, same time, other bytes: only --checksum sees it, as with
	// rsync -c.
	var victim string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && victim == "" {
			if info, _ := d.Info(); info.Size() > 10 {
				victim = p
			}
		}
		return nil
	})
	info, _ := os.Stat(victim)
	data, _ := os.ReadFile(victim)
	data[0] ^= 0xff
	os.WriteFile(victim, data, info.Mode())
	os.Chtimes(victim, info.ModTime(), info.ModTime())
	if sum := c.syncJSON(src, ":/mirror"); sum["copied"] != 0 {
		t.Fatalf("sync without --checksum copied %v: size and time match", sum)
	}
	if sum := c.syncJSON("--checksum", src, ":/mirror"); sum["copied"] != 1 {
		t.Fatalf("sync --checksum: %v, want the one file whose bytes differ copied", sum)
	}
	rel, _ := filepath.Rel(src, victim)
	got, _, _ := c.run("cat", "/mirror/"+filepath.ToSlash(rel))
	if got != string(data) {
		t.Fatalf("after sync --checksum the cluster's copy differs from the file")
	}
}

// The choices sync leaves to flags, and what it refuses.
func TestSyncOptionsAndRefusals(t *testing.T) {
	c := newCluster(t, 3)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for p, content := range map[string]string{"a.txt": "a", "b.tmp": "b", "keep/c.txt": "c", "build/out.o": "o"} {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte(content), 0o644)
	}
	// --exclude leaves names out on both sides; --dry-run changes nothing.
	out, errOut, code := c.run("sync", "--dry-run", "--exclude", "*.tmp", "--exclude", "build", src, ":/s")
	if code != 0 || !strings.Contains(out, "copy /s/a.txt") || strings.Contains(out, "b.tmp") || strings.Contains(out, "out.o") ||
		!strings.Contains(errOut, "dry run") {
		t.Fatalf("sync --dry-run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, _, code := c.run("exists", "/s"); code != 1 {
		t.Fatal("a dry run made the destination")
	}
	if sum := c.syncJSON("--exclude", "*.tmp", "--exclude", "build", src, ":/s"); sum["copied"] != 2 {
		t.Fatalf("sync with excludes: %v, want a.txt and keep/c.txt", sum)
	}
	// An excluded name in the destination is not deleted.
	c.run("put", filepath.Join(src, "b.tmp"), "/s/b.tmp")
	os.Remove(filepath.Join(src, "a.txt"))
	if sum := c.syncJSON("--delete", "--exclude", "*.tmp", "--exclude", "build", src, ":/s"); sum["deleted"] != 1 {
		t.Fatalf("sync --delete with excludes: %v, want a.txt deleted", sum)
	}
	if _, _, code := c.run("exists", "/s/b.tmp"); code != 0 {
		t.Fatal("sync --delete removed an excluded name")
	}
	// Without --delete, nothing goes, and a type clash is reported.
	os.Remove(filepath.Join(src, "keep", "c.txt"))
	os.Remove(filepath.Join(src, "keep"))
	os.WriteFile(filepath.Join(src, "keep"), []byte("now a file"), 0o644)
	out, errOut, code = c.run("sync", src, ":/s")
	if code != 1 || !strings.Contains(errOut, "add --delete to replace it") {
		t.Fatalf("sync over a type clash: exit %d %q %q", code, out, errOut)
	}
	if _, _, code := c.run("exists", "/s/keep/c.txt"); code != 0 {
		t.Fatal("sync without --delete removed a file")
	}

	for _, bad := range [][]string{
		{"sync", ":/s", ":/s/sub"},             // into itself
		{"sync", ":/s/keep", ":/s"},            // onto its parent
		{"sync", src, filepath.Join(dir, "x")}, // no cluster side
		{"sync", filepath.Join(dir, "missing"), ":/t"},
		{"sync", ":/missing", filepath.Join(dir, "t")},
		{"sync", "nowhere:/x", filepath.Join(dir, "t")}, // no such named cluster
		{"sync", "--exclude", "[", src, ":/t"},
	} {
		_, errOut, code := c.run(bad...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("shoal %s: exit %d, stderr %q; want a failure in one line", strings.Join(bad, " "), code, errOut)
		}
	}
	if _, _, code := c.run("exists", "/t"); code != 1 {
		t.Fatal("a refused sync made its destination")
	}
}
