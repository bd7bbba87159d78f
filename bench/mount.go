package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"shoal/harness"
	"shoal/mount"
)

// The mount workload compares the FUSE mount with the HTTP API on the same
// cluster, rep by rep: each rep measures both, one after the other, and
// the ratio of the two is what a noisy machine reports reliably.

// MountResult is the mount workload's report.
type MountResult struct {
	Dir  string     `json:"dir"`
	Rows []MountRow `json:"rows"`
	// Tools are tar, git, rsync and rm through the mount against a local
	// directory; Skipped says which could not run and why.
	Tools     []ToolRow `json:"tools"`
	TreeFiles int       `json:"tree_files"`
	Skipped   []string  `json:"skipped,omitempty"`
}

// MountRow is one operation through the mount and through the API.
type MountRow struct {
	Op    string `json:"op"`
	Unit  string `json:"unit"`
	Mount Figure `json:"mount"`
	API   Figure `json:"api"`
	// Ratio is mount / API per rep: above 1, the mount is faster.
	Ratio Figure `json:"ratio"`
}

// pair is one rep's figure through the mount and through the API.
type pair struct{ mount, api float64 }

func (e *env) runMount(ctx context.Context) (*MountResult, error) {
	dir := e.cfg.MountDir
	if dir == "" {
		var err error
		if dir, err = e.local.mount(ctx); err != nil {
			return nil, err
		}
	}
	res := &MountResult{Dir: dir, TreeFiles: e.cfg.TreeFiles}
	size, files := e.cfg.MountSize, e.cfg.MountFiles
	steps := []struct {
		op, unit string
		run      func(rep int) (pair, error)
	}{
		{"write " + sizeLabel(size), "MB/s", func(rep int) (pair, error) { return e.mountLarge(ctx, dir, size, rep, true) }},
		{"read " + sizeLabel(size), "MB/s", func(rep int) (pair, error) { return e.mountLarge(ctx, dir, size, rep, false) }},
		{fmt.Sprintf("create %d files of 1 KiB", files), "files/s", func(rep int) (pair, error) { return e.mountSmall(ctx, dir, files, rep) }},
		{fmt.Sprintf("list %d files with attributes", files), "files/s", func(rep int) (pair, error) { return e.mountList(ctx, dir, files, rep) }},
	}
	for _, st := range steps {
		var m, a, r []float64
		for rep := range e.cfg.Reps {
			e.prog.start(fmt.Sprintf("mount: %s (rep %d/%d)", st.op, rep+1, e.cfg.Reps))
			p, err := st.run(rep)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", st.op, err)
			}
			m, a, r = append(m, p.mount), append(a, p.api), append(r, p.mount/p.api)
		}
		res.Rows = append(res.Rows, MountRow{Op: st.op, Unit: st.unit, Mount: figureOf(m), API: figureOf(a), Ratio: figureOf(r)})
	}
	var err error
	if res.Tools, res.Skipped, err = e.runTools(ctx, dir); err != nil {
		return nil, fmt.Errorf("tools: %w", err)
	}
	return res, nil
}

// mountLarge writes (or reads back) a file of size bytes through the
// mount, close included, and one through the API, both checked by SHA-256.
func (e *env) mountLarge(ctx context.Context, dir string, size int64, rep int, write bool) (pair, error) {
	rel := fmt.Sprintf("%s/mount/r%d", e.root, rep)
	if err := e.cl.Mkdir(ctx, rel, true); err != nil {
		return pair{}, err
	}
	viaMount := filepath.Join(dir, rel, "large-mount")
	viaAPI := rel + "/large-api"
	seedM, seedA := seedOf(4, uint64(rep), uint64(size)), seedOf(5, uint64(rep), uint64(size))
	if write {
		start := time.Now()
		f, err := os.Create(viaMount)
		if err != nil {
			return pair{}, err
		}
		_, err = io.CopyBuffer(f, newStream(seedM, size), make([]byte, 1<<20))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return pair{}, fmt.Errorf("write %s: %w", viaMount, err)
		}
		m := megabytesPerSecond(size, time.Since(start))
		start = time.Now()
		if _, err := e.cl.Put(ctx, viaAPI, newStream(seedA, size), size); err != nil {
			return pair{}, err
		}
		return pair{m, megabytesPerSecond(size, time.Since(start))}, nil
	}
	start := time.Now()
	f, err := os.Open(viaMount)
	if err != nil {
		return pair{}, err
	}
	err = checkStream(f, seedM, size)
	f.Close()
	if err != nil {
		return pair{}, fmt.Errorf("read %s: %w", viaMount, err)
	}
	m := megabytesPerSecond(size, time.Since(start))
	start = time.Now()
	rc, _, err := e.cl.Get(ctx, viaAPI)
	if err != nil {
		return pair{}, err
	}
	err = checkStream(rc, seedA, size)
	rc.Close()
	if err != nil {
		return pair{}, fmt.Errorf("read %s: %w", viaAPI, err)
	}
	return pair{m, megabytesPerSecond(size, time.Since(start))}, nil
}

// checkStream reads r whole and compares it with the stream it was
// written from.
func checkStream(r io.Reader, seed uint64, size int64) error {
	got, want := sha256.New(), sha256.New()
	n, err := io.CopyBuffer(got, r, make([]byte, 1<<20))
	if err != nil {
		return err
	}
	io.Copy(want, newStream(seed, size))
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		return fmt.Errorf("%w: %d bytes back of %d", ErrMismatch, n, size)
	}
	return nil
}

// mountSmall creates files of 1 KiB one after the other, through the
// mount (open, write, close) and through the API (one PUT each).
func (e *env) mountSmall(ctx context.Context, dir string, files, rep int) (pair, error) {
	rel := fmt.Sprintf("%s/mount/r%d", e.root, rep)
	for _, sub := range []string{"/small-mount", "/small-api"} {
		if err := e.cl.Mkdir(ctx, rel+sub, true); err != nil {
			return pair{}, err
		}
	}
	body := bytes.Repeat([]byte{'s'}, 1024)
	start := time.Now()
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, rel, "small-mount", fmt.Sprintf("f%05d", i)), body, 0o644); err != nil {
			return pair{}, err
		}
	}
	m := perSecond(files, time.Since(start))
	start = time.Now()
	for i := range files {
		if _, err := e.cl.Put(ctx, fmt.Sprintf("%s/small-api/f%05d", rel, i), bytes.NewReader(body), int64(len(body))); err != nil {
			return pair{}, err
		}
	}
	return pair{m, perSecond(files, time.Since(start))}, nil
}

// mountList lists the small files with their attributes: readdir and a
// stat of each through the mount (ls -l), one listing through the API.
func (e *env) mountList(ctx context.Context, dir string, files, rep int) (pair, error) {
	rel := fmt.Sprintf("%s/mount/r%d", e.root, rep)
	// Past the kernel's attribute cache, so the mount is asked.
	time.Sleep(1100 * time.Millisecond)
	start := time.Now()
	entries, err := os.ReadDir(filepath.Join(dir, rel, "small-mount"))
	if err != nil {
		return pair{}, err
	}
	for _, en := range entries {
		if _, err := en.Info(); err != nil {
			return pair{}, err
		}
	}
	if len(entries) != files {
		return pair{}, fmt.Errorf("%w: the mount lists %d files, want %d", ErrMismatch, len(entries), files)
	}
	m := perSecond(files, time.Since(start))
	start = time.Now()
	list, err := e.cl.List(ctx, rel+"/small-api")
	if err != nil {
		return pair{}, err
	}
	if len(list) != files {
		return pair{}, fmt.Errorf("%w: the API lists %d files, want %d", ErrMismatch, len(list), files)
	}
	return pair{m, perSecond(files, time.Since(start))}, nil
}

// mount mounts the local cluster with 'shoal mount --foreground' and
// waits until the kernel shows the mount.
func (c *localCluster) mount(ctx context.Context) (string, error) {
	dir := filepath.Join(c.Dir, "mnt")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := c.NewProc("mount", append([]string{"mount", dir, "--router", c.API, "--foreground"}, c.Creds.Flags()...)...)
	if err := p.Start(); err != nil {
		return "", fmt.Errorf("mount workload: %w", err)
	}
	c.mountProc, c.mountDir = p, dir
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := harness.WaitFor(wctx, fmt.Sprintf("the mount at %s (see %s)", dir, p.Log), func() (bool, error) {
		if !p.Running() {
			return true, fmt.Errorf("shoal mount exited (it needs /dev/fuse and fusermount3)")
		}
		return mount.IsMounted(dir), nil
	})
	if err != nil {
		return "", fmt.Errorf("mount workload: %w", err)
	}
	return dir, nil
}

// unmount detaches the local cluster's mount, if there is one.
func (c *localCluster) unmount() {
	if c.mountProc == nil {
		return
	}
	if err := mount.Unmount(c.mountDir, true); err != nil {
		c.log.Warn("unmount the benchmark's mount", "dir", c.mountDir, "err", err)
	}
	c.mountProc.Kill()
	c.mountProc = nil
}
