package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// What people do in a mounted directory, timed through the mount and in a
// local directory on the same machine in the same rep: unpack a tree with
// tar, commit it with git, copy it with rsync, remove it with rm -rf. The
// slowdown (mount time ÷ local time) is the figure; a tool missing from
// the machine is reported as skipped, not measured.

// ToolRow is one tool run through the mount and locally.
type ToolRow struct {
	Op string `json:"op"`
	// Mount and Local are wall times in milliseconds.
	Mount Figure `json:"mount_ms"`
	Local Figure `json:"local_ms"`
	// Slowdown is mount ÷ local per rep: 1 is as fast as the local disk.
	Slowdown Figure `json:"slowdown"`
}

// toolSteps are the tools in the order they run: each works on what the
// one before left (tar makes the tree, git commits it, rsync copies the
// source beside it, rm removes both).
var toolSteps = []struct {
	op   string
	tool string
	args func(src, tarball, dir string) [][]string
}{
	{"tar -x", "tar", func(_, tarball, dir string) [][]string {
		return [][]string{{"tar", "-xf", tarball, "-C", filepath.Join(dir, "tree")}}
	}},
	{"git init, add, commit", "git", func(_, _, dir string) [][]string {
		d := filepath.Join(dir, "tree")
		return [][]string{
			{"git", "-C", d, "init", "-q"},
			{"git", "-C", d, "add", "-A"},
			{"git", "-C", d, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "tree"},
		}
	}},
	{"rsync -a", "rsync", func(src, _, dir string) [][]string {
		return [][]string{{"rsync", "-a", src + "/", filepath.Join(dir, "copy") + "/"}}
	}},
	{"rm -rf", "rm", func(_, _, dir string) [][]string {
		return [][]string{{"rm", "-rf", filepath.Join(dir, "tree"), filepath.Join(dir, "copy")}}
	}},
}

// runTools times the tools through the mount at dir and in a local
// directory, rep by rep, and checks that tar unpacked the same tree
// through the mount as it was made.
func (e *env) runTools(ctx context.Context, dir string) (rows []ToolRow, skipped []string, err error) {
	scratch, err := os.MkdirTemp(e.cfg.DataDir, "shoal-bench-tools-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(scratch)
	src := filepath.Join(scratch, "src")
	if err := makeTree(src, e.cfg.TreeFiles, seedOf(7)); err != nil {
		return nil, nil, err
	}
	tarball := filepath.Join(scratch, "tree.tar")
	if _, err := exec.LookPath("tar"); err != nil {
		return nil, []string{"every tool: tar is not installed (it makes the tree the others use)"}, nil
	}
	if out, err := exec.CommandContext(ctx, "tar", "-cf", tarball, "-C", src, ".").CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("make the tree's tarball: %w: %s", err, out)
	}
	type times struct{ mount, local, ratio []float64 }
	got := make([]times, len(toolSteps))
	missing := map[string]bool{}
	for rep := range e.cfg.Reps {
		places := map[string]string{
			"mount": filepath.Join(dir, fmt.Sprintf("%s/mount/tools%d", e.root, rep)),
			"local": filepath.Join(scratch, fmt.Sprintf("local%d", rep)),
		}
		for _, p := range places {
			if err := os.MkdirAll(filepath.Join(p, "tree"), 0o755); err != nil {
				return nil, nil, err
			}
		}
		for i, st := range toolSteps {
			if missing[st.tool] {
				continue
			}
			if _, err := exec.LookPath(st.tool); err != nil {
				missing[st.tool] = true
				skipped = append(skipped, fmt.Sprintf("%s: %s is not installed", st.op, st.tool))
				continue
			}
			e.prog.start(fmt.Sprintf("mount: %s (rep %d/%d)", st.op, rep+1, e.cfg.Reps))
			var d [2]time.Duration
			for j, where := range []string{"mount", "local"} {
				if d[j], err = runTimed(ctx, st.args(src, tarball, places[where])); err != nil {
					return nil, nil, fmt.Errorf("%s (%s): %w", st.op, where, err)
				}
			}
			m, l := float64(d[0])/1e6, float64(d[1])/1e6
			got[i].mount, got[i].local, got[i].ratio = append(got[i].mount, m), append(got[i].local, l), append(got[i].ratio, m/l)
			if st.tool == "tar" {
				if err := sameTree(src, filepath.Join(places["mount"], "tree")); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	for i, st := range toolSteps {
		if len(got[i].mount) == 0 {
			continue
		}
		rows = append(rows, ToolRow{Op: st.op, Mount: figureOf(got[i].mount), Local: figureOf(got[i].local), Slowdown: figureOf(got[i].ratio)})
	}
	return rows, skipped, nil
}

// runTimed runs the commands one after the other and returns how long
// they took together.
func runTimed(ctx context.Context, cmds [][]string) (time.Duration, error) {
	start := time.Now()
	for _, c := range cmds {
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.Env = append(os.Environ(), "LC_ALL=C", "GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return time.Since(start), nil
}

// treeDirs is how many directories a tree of files files has: one for
// every 15 files, as in a small source tree.
func treeDirs(files int) int { return max(1, files/15) }

// makeTree writes files files of 100 B to 32 KiB (most of them small, as
// in a source tree) into treeDirs directories under dir, and a symlink
// for every 50 files, all from seed.
func makeTree(dir string, files int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0))
	dirs := treeDirs(files)
	for d := range dirs {
		p := filepath.Join(dir, fmt.Sprintf("pkg%02d", d/4), fmt.Sprintf("sub%02d", d))
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	for i := range files {
		d := i % dirs
		p := filepath.Join(dir, fmt.Sprintf("pkg%02d", d/4), fmt.Sprintf("sub%02d", d), fmt.Sprintf("file%03d.txt", i))
		size := 100 + rng.IntN(4000)
		if i%10 == 0 {
			size = 4096 + rng.IntN(28*1024)
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		if i%50 == 0 {
			if err := os.Symlink(filepath.Base(p), p+".link"); err != nil {
				return err
			}
		}
	}
	return nil
}

// sameTree checks that got holds every file of want with its content:
// what the tools did through the mount must be what they did locally.
func sameTree(want, got string) error {
	return filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		if d.Type()&os.ModeSymlink != 0 {
			a, _ := os.Readlink(p)
			b, err := os.Readlink(filepath.Join(got, rel))
			if err != nil || a != b {
				return fmt.Errorf("%w: symlink %s through the mount: %q, %v (want %q)", ErrMismatch, rel, b, err, a)
			}
			return nil
		}
		a, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || string(a) != string(b) {
			return errors.Join(fmt.Errorf("%w: %s differs through the mount", ErrMismatch, rel), err)
		}
		return nil
	})
}
