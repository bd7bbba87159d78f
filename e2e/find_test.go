package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustDate(v string) time.Time {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		panic(err)
	}
	return t
}

// shoal find answers what a walk of the tree that was uploaded answers,
// and wildcards in rm and ls are expanded by the cluster.
func TestFindAndGlobs(t *testing.T) {
	c := newCluster(t, 3)
	local := filepath.Join(t.TempDir(), "t")
	os.Mkdir(local, 0o755)
	randomTree(t, local, 11)
	if _, errOut, code := c.run("put", "-r", local, "/t"); code != 0 && !strings.Contains(errOut, "FIFO") {
		t.Fatalf("put -r: exit %d %s", code, errOut)
	}
	// The brute force: the local tree, as uploaded (without the FIFO).
	type entry struct {
		path string
		info fs.FileInfo
	}
	var all []entry
	filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == local || d.Type()&fs.ModeNamedPipe != 0 {
			return nil
		}
		rel, _ := filepath.Rel(local, p)
		info, _ := d.Info()
		all = append(all, entry{"/t/" + filepath.ToSlash(rel), info})
		return nil
	})
	find := func(args ...string) []string {
		t.Helper()
		out, errOut, code := c.run(append([]string{"find", "/t", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("find %q: exit %d %s", args, code, errOut)
		}
		got := []string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var st struct{ Path string }
			if err := json.Unmarshal([]byte(line), &st); err != nil {
				t.Fatalf("find %q printed %q", args, line)
			}
			got = append(got, st.Path)
		}
		slices.Sort(got)
		return got
	}
	for _, tc := range []struct {
		args []string
		keep func(e entry) bool
	}{
		{nil, func(entry) bool { return true }},
		{[]string{"--name", "file-1*"}, func(e entry) bool { ok, _ := path.Match("file-1*", path.Base(e.path)); return ok }},
		{[]string{"--type", "d"}, func(e entry) bool { return e.info.IsDir() }},
		{[]string{"--type", "l"}, func(e entry) bool { return e.info.Mode()&fs.ModeSymlink != 0 }},
		{[]string{"--min-size", "4KiB"}, func(e entry) bool { return e.info.Mode().IsRegular() && e.info.Size() >= 4096 }},
		{[]string{"--max-size", "100", "--type", "f"}, func(e entry) bool { return e.info.Mode().IsRegular() && e.info.Size() <= 100 }},
		{[]string{"--newer", "2022-01-01"}, func(e entry) bool {
			return e.info.Mode()&fs.ModeSymlink == 0 && e.info.ModTime().After(mustDate("2022-01-01")) ||
				e.info.Mode()&fs.ModeSymlink != 0 // a symlink's time is when it was made here
		}},
	} {
		want := []string{}
		for _, e := range all {
			if tc.keep(e) {
				want = append(want, e.path)
			}
		}
		slices.Sort(want)
		if got := find(tc.args...); !slices.Equal(got, want) {
			t.Errorf("find %q: %d paths %q\nwant %d %q", tc.args, len(got), got, len(want), want)
		}
	}
	if out, _, code := c.run("find", "/t", "--name", "file-0*"); code != 0 || !strings.Contains(out, "/t/") || strings.Contains(out, "{") {
		t.Errorf("find without --json: exit %d %q; want one path per line", code, out)
	}
	for _, bad := range [][]string{{"find", "/t", "--type", "x"}, {"find", "/t", "--min-size", "lots"}, {"find", "/nothing"}, {"find", "/t", "--newer", "soon"}} {
		if _, errOut, code := c.run(bad...); code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("shoal %s: exit %d, stderr %q; want a failure in one line", strings.Join(bad, " "), code, errOut)
		}
	}

	// tree prints the same walk, indented, as deep as asked.
	treeOut, _, code := c.run("tree", "-L", "1", "/t")
	var top, dirs int
	for _, e := range all {
		if strings.Count(e.path, "/") == 2 {
			top++
			if e.info.IsDir() {
				dirs++
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(treeOut), "\n")
	if code != 0 || lines[0] != "/t" || len(lines) != top+3 || !strings.HasSuffix(treeOut, fmt.Sprintf("%d directories, %d files\n", dirs, top-dirs)) {
		t.Errorf("tree -L 1 /t: exit %d\n%s\nwant %d entries, %d of them directories", code, treeOut, top, dirs)
	}
	for _, l := range lines[1 : len(lines)-2] {
		if !strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "    ") {
			t.Errorf("tree -L 1: line %q is not one level deep", l)
		}
	}

	// Wildcards: ls lists the matches, rm deletes them, no match is an
	// error that deletes nothing.
	before := find("--name", "*.bin")
	out, errOut, code := c.run("ls", "/t/*/file-*.bin")
	if code != 0 || !strings.Contains(out, "/t/dir ") {
		t.Fatalf("ls of a pattern: exit %d %q %q", code, out, errOut)
	}
	if _, errOut, code := c.run("rm", "/t/nothing-*"); code != 1 || !strings.Contains(errOut, "no match") {
		t.Fatalf("rm of a pattern that matches nothing: exit %d %q", code, errOut)
	}
	if got := find("--name", "*.bin"); !slices.Equal(got, before) {
		t.Fatalf("a failed rm deleted files")
	}
	if _, errOut, code := c.run("rm", "/t/*.bin", "/t/*/*.bin"); code != 0 {
		t.Fatalf("rm of patterns: exit %d %q", code, errOut)
	}
	var left []string
	for _, p := range before {
		if strings.Count(p, "/") > 3 { // deeper than the patterns reach
			left = append(left, p)
		}
	}
	if got := find("--name", "*.bin"); !slices.Equal(got, left) {
		t.Fatalf("after rm of patterns: %q, want %q", got, left)
	}
	// A name that looks like a pattern but matches nothing as one is
	// that name, as in a shell.
	c.run("put", "-", "/t/lit/a[1].txt")
	if out, errOut, code := c.run("ls", "/t/lit/a[1].txt"); code != 0 || !strings.Contains(out, "a[1].txt") {
		t.Fatalf("ls of a literal name with brackets: exit %d %q %q", code, out, errOut)
	}
	if _, errOut, code := c.run("rm", "/t/lit/a[1].txt"); code != 0 {
		t.Fatalf("rm of a literal name with brackets: exit %d %q", code, errOut)
	}
	if _, _, code := c.run("exists", "/t/lit/a[1].txt"); code != 1 {
		t.Fatal("rm of a literal name with brackets left it")
	}
}
