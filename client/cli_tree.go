package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// defaultParallel is how many files put -r and get -r move at once.
const defaultParallel = 8

// treeEntry is one file, directory or symlink of a tree being copied.
type treeEntry struct {
	local, remote string
	typ           string // TypeFile, TypeDir or TypeSymlink
	size          int64
	mode          uint32 // permission bits, setuid, setgid and sticky
	mtime         time.Time
	target        string // a symlink's
}

// treeCopy runs the copy of one tree: directories first (as they are
// met, parents before children), files and symlinks by parallel workers,
// then each directory's mode and time, deepest first, since writing into
// a directory changes its time. A failed entry is reported on stderr and
// the rest go on; the command fails at the end, saying how many failed.
type treeCopy struct {
	s        *session
	parallel int
	work     chan treeEntry
	wg       sync.WaitGroup
	dirs     []treeEntry
	failed   atomic.Int64
	entries  atomic.Int64
	done     transferSummary // counted under mu
	mu       sync.Mutex
	p        *progress                                    // nil: no progress line
	copyOne  func(ctx context.Context, e treeEntry) error // a file or symlink
	finalDir func(ctx context.Context, e treeEntry) error // a directory's mode and time
}

func (t *treeCopy) start(verb string) {
	t.p = t.s.newProgress(verb)
	t.p.setCounting(true) // until the walk ends: see walked
	t.work = make(chan treeEntry)
	for range max(t.parallel, 1) {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for e := range t.work {
				t.report(e, t.copyOne(t.s.ctx, e))
			}
		}()
	}
}

// report counts e and tells of its failure, if it failed.
func (t *treeCopy) report(e treeEntry, err error) {
	t.entries.Add(1)
	if err == nil {
		if e.typ == TypeFile {
			t.p.fileDone()
		}
		t.mu.Lock()
		t.done.add(e)
		t.mu.Unlock()
		return
	}
	t.failed.Add(1)
	t.s.fail(err)
}

// transferSummary counts what a copy moved: what put -r, get -r and get
// print with --json.
type transferSummary struct {
	Files    int64 `json:"files"`
	Dirs     int64 `json:"dirs"`
	Symlinks int64 `json:"symlinks"`
	Bytes    int64 `json:"bytes"` // of the files
	Failed   int64 `json:"failed"`
}

func (t *transferSummary) add(e treeEntry) {
	switch e.typ {
	case TypeFile:
		t.Files++
		t.Bytes += e.size
	case TypeDir:
		t.Dirs++
	case TypeSymlink:
		t.Symlinks++
	}
}

// send hands e to a worker, unless the copy was interrupted.
func (t *treeCopy) send(e treeEntry) bool {
	if e.typ == TypeFile {
		t.p.add(1, e.size)
	}
	select {
	case t.work <- e:
		return true
	case <-t.s.ctx.Done():
		return false
	}
}

// printSummary prints what the copy moved, with --json.
func (t *treeCopy) printSummary() error {
	if !t.s.json {
		return nil
	}
	t.done.Failed = t.failed.Load()
	return t.s.printJSON(t.done)
}

// finish waits for the workers, sets the directories' modes and times
// (deepest first), and says how the copy went.
func (t *treeCopy) finish() error {
	close(t.work)
	t.wg.Wait()
	t.p.finish()
	if err := t.s.ctx.Err(); err != nil {
		return err
	}
	for _, d := range slices.Backward(t.dirs) {
		if err := t.finalDir(t.s.ctx, d); err != nil {
			t.failed.Add(1)
			t.s.fail(err)
		} else {
			t.done.add(d)
		}
	}
	if n := t.failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d entries not copied (see above)", n, t.entries.Load())
	}
	return nil
}

// runPutTree uploads the local directory local to remote, as cp -r does:
// into remote/NAME when remote is an existing directory, else as remote.
// Files keep their mode and modification time, directories too, and
// symlinks stay symlinks (their targets as they are). Sockets, FIFOs and
// devices are skipped with a warning.
func runPutTree(s *session, local, remote string) error {
	info, err := os.Stat(local)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a directory; put -r copies a directory tree (put copies one file)", local)
	}
	st, err := s.c.Stat(s.ctx, remote)
	switch {
	case err == nil && st.Type == TypeDir:
		remote = path.Join(remote, filepath.Base(filepath.Clean(local)))
	case err == nil:
		return fmt.Errorf("%s exists and is not a directory", remote)
	case !errors.Is(err, ErrNotFound):
		return onPath(remote, err)
	}
	t := &treeCopy{s: s, parallel: s.parallel}
	t.copyOne = func(ctx context.Context, e treeEntry) error {
		var err error
		if e.typ == TypeSymlink {
			err = putSymlink(ctx, s.c, e)
		} else {
			_, err = uploadFile(ctx, s.c, e.local, e.remote, s.put, t.p, true)
		}
		return onPath(e.local, err)
	}
	t.finalDir = func(ctx context.Context, e treeEntry) error {
		_, err := s.c.SetAttrPath(ctx, e.remote, SetAttr{Mode: &e.mode, MTime: &e.mtime})
		return onPath(e.remote, err)
	}
	t.start("put")
	root := filepath.Clean(local)
	walkErr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.report(treeEntry{local: p}, onPath(p, err))
			if d != nil && d.IsDir() && p != root {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		e := treeEntry{local: p, remote: path.Join(remote, filepath.ToSlash(rel))}
		info, err := d.Info()
		if err != nil {
			t.report(e, onPath(p, err))
			return nil
		}
		e.mode, e.mtime, e.size = unixMode(info.Mode()), info.ModTime(), info.Size()
		switch {
		case info.IsDir():
			e.typ = TypeDir
			if err := s.c.Mkdir(s.ctx, e.remote, true); err != nil {
				t.report(e, onPath(e.remote, err))
				return fs.SkipDir
			}
			t.dirs = append(t.dirs, e)
			t.entries.Add(1)
			return nil
		case info.Mode()&fs.ModeSymlink != 0:
			e.typ = TypeSymlink
			if e.target, err = os.Readlink(p); err != nil {
				t.report(e, onPath(p, err))
				return nil
			}
		case info.Mode().IsRegular():
			e.typ = TypeFile
		default:
			fmt.Fprintf(s.stderr, "shoal %s: %s: skipped: a %s is not copied\n", s.name, p, kindOf(info.Mode()))
			return nil
		}
		if !t.send(e) {
			return s.ctx.Err()
		}
		return nil
	})
	t.p.setCounting(false)
	err = t.finish()
	if perr := t.printSummary(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	return walkErr
}

// uploadTries is how many times a file that changes while it is read is
// sent before it is given up.
const uploadTries = 3

// errChanging: a local file kept changing while it was read.
var errChanging = errors.New("changed while it was read")

// uploadFile uploads the regular file at local to remote with o, its
// bytes counted by p. A file of more than one chunk goes by chunks, those
// the cluster already holds staying where they are (see chunkedUpload).
// A file that changes while it is read (its size or modification time
// moves) is sent again, up to uploadTries times; one that never holds
// still is not put (sent whole, it is removed from the cluster rather
// than left there torn) and is reported. With keepAttrs the copy gets the
// file's mode and modification time, in the same request but for a mode
// of 0, which a put cannot set.
func uploadFile(ctx context.Context, c *Client, local, remote string, o PutOptions, p *progress, keepAttrs bool) (Stat, error) {
	for try := 1; ; try++ {
		st, torn, err := uploadOnce(ctx, c, local, remote, o, p, keepAttrs)
		switch {
		case err != nil:
			return st, err
		case torn == "":
			return st, nil
		case try == uploadTries:
			// Only the torn copy this put made: a file someone else put
			// there since stays.
			del := func() error { return c.Delete(ctx, torn, false) }
			if torn == remote && st.Hash != "" {
				del = func() error { return c.DeleteIfMatch(ctx, torn, st.Hash) }
			}
			if err := del(); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrPrecondition) {
				return st, fmt.Errorf("%w %d times, and its torn copy at %s could not be removed: %w", errChanging, try, torn, err)
			}
			return st, fmt.Errorf("%w %d times; not copied", errChanging, try)
		case torn == remote && st.Hash != "":
			// The next try replaces the torn copy this one put, and only
			// it: --no-clobber and --if-match held for this one.
			o.IfAbsent, o.IfMatch = false, st.Hash
		}
	}
}

// uploadOnce sends local once. When it changed meanwhile, torn names the
// file in the cluster that holds the mix: remote itself, or the partial
// file of a chunked upload (remote is then as it was).
func uploadOnce(ctx context.Context, c *Client, local, remote string, o PutOptions, p *progress, keepAttrs bool) (st Stat, torn string, err error) {
	f, err := os.Open(local)
	if err != nil {
		return Stat{}, "", err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return Stat{}, "", err
	}
	mode := unixMode(before.Mode())
	mtime := before.ModTime()
	if keepAttrs {
		o.Mode, o.MTime = &mode, &mtime
	}
	chunked := false
	if before.Mode().IsRegular() {
		var changed bool
		st, chunked, changed, err = chunkedUpload(ctx, c, f, before, remote, o, p)
		if err != nil {
			return st, "", err
		}
		if changed {
			return st, partName(remote), nil
		}
	}
	if !chunked {
		if st, _, err = c.PutWith(ctx, remote, p.reader(f), before.Size(), o); err != nil {
			return st, "", err
		}
		after, err := f.Stat()
		if err != nil {
			return st, "", err
		}
		if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
			return st, remote, nil
		}
	}
	if keepAttrs && mode == 0 {
		_, err = c.SetAttrPath(ctx, remote, SetAttr{Mode: &mode})
	}
	return st, "", err
}

// putSymlink makes the symlink e, replacing a symlink already there.
func putSymlink(ctx context.Context, c *Client, e treeEntry) error {
	_, err := c.Symlink(ctx, e.remote, e.target)
	if errors.Is(err, ErrExists) {
		st, serr := c.Stat(ctx, e.remote)
		if serr != nil || st.Type != TypeSymlink {
			return err
		}
		if err := c.Delete(ctx, e.remote, false); err != nil {
			return err
		}
		_, err = c.Symlink(ctx, e.remote, e.target)
	}
	return err
}

// runGetTree downloads the remote directory remote to local, as cp -r
// does: into local/NAME when local is an existing directory, else as
// local. Files keep their mode and modification time, directories too,
// and symlinks are made as symlinks. A file is written through a
// temporary file, so a failed one leaves nothing behind.
func runGetTree(s *session, remote, local string) error {
	st, err := s.c.Stat(s.ctx, remote)
	if err != nil {
		return onPath(remote, err)
	}
	if st.Type != TypeDir {
		return fmt.Errorf("%s is not a directory; get -r copies a directory tree (get copies one file)", remote)
	}
	if info, err := os.Stat(local); err == nil && info.IsDir() {
		if name := path.Base(path.Clean("/" + remote)); name != "/" {
			local = filepath.Join(local, name)
		}
	}
	t := &treeCopy{s: s, parallel: s.parallel}
	t.copyOne = func(ctx context.Context, e treeEntry) error {
		if e.typ == TypeSymlink {
			if fi, err := os.Lstat(e.local); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				os.Remove(e.local)
			}
			return os.Symlink(e.target, e.local)
		}
		body, info, err := s.c.Get(ctx, e.remote)
		if err != nil {
			return onPath(e.remote, err)
		}
		defer body.Close()
		if err := saveFile(e.local, t.p.reader(body), info.Size, e.remote); err != nil {
			return err
		}
		return setLocalAttrs(e)
	}
	t.finalDir = func(_ context.Context, e treeEntry) error { return setLocalAttrs(e) }
	t.start("get")
	root := treeEntry{local: local, remote: remote, typ: TypeDir, mode: st.Mode, mtime: st.MTime}
	walkErr := getDir(s, t, root)
	t.p.setCounting(false)
	err = t.finish()
	if perr := t.printSummary(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	return walkErr
}

// setLocalAttrs gives the local copy of e e's mode and modification time.
func setLocalAttrs(e treeEntry) error {
	if err := os.Chmod(e.local, fs.FileMode(e.mode&0o777)|goModeBits(e.mode)); err != nil {
		return err
	}
	return os.Chtimes(e.local, time.Time{}, e.mtime)
}

// getDir makes the local directory d, hands its files and symlinks to the
// workers and descends into its subdirectories. The directory is made
// writable for now; its own mode is set at the end.
func getDir(s *session, t *treeCopy, d treeEntry) error {
	if err := os.MkdirAll(d.local, 0o700); err != nil {
		t.report(d, err)
		return nil
	}
	t.dirs = append(t.dirs, d)
	t.entries.Add(1)
	entries, err := s.c.List(s.ctx, d.remote)
	if err != nil {
		t.report(d, onPath(d.remote, err))
		return nil
	}
	for _, de := range entries {
		e := treeEntry{local: filepath.Join(d.local, de.Name), remote: path.Join(d.remote, de.Name), typ: de.Type,
			size: de.Size, mode: de.Mode, mtime: de.MTime, target: de.Target}
		if e.typ == TypeDir {
			if err := getDir(s, t, e); err != nil {
				return err
			}
			continue
		}
		if special(e.typ) {
			fmt.Fprintf(s.stderr, "shoal %s: %s: skipped: a %s is not copied\n", s.name, e.remote, e.typ)
			continue
		}
		if e.typ == TypeSymlink && e.target == "" {
			st, err := s.c.Stat(s.ctx, e.remote)
			if err != nil {
				t.report(e, onPath(e.remote, err))
				continue
			}
			e.target = st.Target
		}
		if !t.send(e) {
			return s.ctx.Err()
		}
	}
	return nil
}

// unixMode is the permission, setuid, setgid and sticky bits of m as
// Unix numbers them.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// goModeBits is the setuid, setgid and sticky bits of a Unix mode as Go's
// fs.FileMode has them.
func goModeBits(u uint32) fs.FileMode {
	var m fs.FileMode
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// kindOf names a file type that is not copied.
func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
