package client

// shoal sync: make one tree a copy of another, in either direction
// between a local directory and the cluster, or between two places in
// clusters, moving only what differs.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// syncEntry is one file, directory or symlink of a tree, by its path
// relative to the tree's root ("" is the root).
type syncEntry struct {
	typ    string // TypeFile, TypeDir, TypeSymlink
	size   int64
	mode   uint32
	mtime  time.Time
	target string
}

// endpoint is one side of a sync: a local directory, or a directory in
// a cluster (c set).
type endpoint struct {
	spec   string // as given
	local  string
	c      *Client
	remote string
}

func (e endpoint) isRemote() bool { return e.c != nil }

// join is the path of rel under the endpoint's root.
func (e endpoint) join(rel string) string {
	if e.isRemote() {
		return path.Join(e.remote, rel)
	}
	return filepath.Join(e.local, filepath.FromSlash(rel))
}

// remoteSpec matches a cluster path: ":/path", or "NAME:/path" for a
// cluster named in the credentials file.
var remoteSpec = regexp.MustCompile(`^([A-Za-z0-9._-]*):(/.*)$`)

// endpointOf reads one side of a sync.
func (s *session) endpointOf(spec string) (endpoint, error) {
	m := remoteSpec.FindStringSubmatch(spec)
	if m == nil {
		abs, err := filepath.Abs(spec)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{spec: spec, local: abs}, nil
	}
	name, p := m[1], path.Clean(m[2])
	if name == "" {
		return endpoint{spec: spec, c: s.c, remote: p}, nil
	}
	given := Credentials{Cluster: name}
	creds, _, err := ResolveCredentials(given, s.getenv)
	if err != nil {
		return endpoint{}, err
	}
	cfg, err := creds.Config()
	if err != nil {
		return endpoint{}, err
	}
	cfg.Timeout = s.timeout
	c, err := New(cfg)
	if err != nil {
		return endpoint{}, err
	}
	if schemeless(creds.Router) {
		c = plainIfAsked(s.ctx, c, cfg)
	}
	return endpoint{spec: spec, c: c, remote: p}, nil
}

// sameTree reports whether a and b overlap: the same cluster or machine,
// and one root at or under the other.
func overlaps(a, b endpoint) bool {
	under := func(x, y, sep string) bool { return x == y || strings.HasPrefix(x, strings.TrimSuffix(y, sep)+sep) }
	switch {
	case a.isRemote() != b.isRemote():
		return false
	case a.isRemote():
		return a.c.Router() == b.c.Router() && (under(a.remote, b.remote, "/") || under(b.remote, a.remote, "/"))
	}
	ra, rb := resolved(a.local), resolved(b.local)
	sep := string(filepath.Separator)
	return under(ra, rb, sep) || under(rb, ra, sep)
}

// resolved is p with its symlinks resolved, as far as it exists.
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// syncOptions are sync's flags.
type syncOptions struct {
	delete, dryRun, checksum bool
	exclude                  []string
	// srcIncomplete: part of SRC could not be read, so --delete deletes
	// nothing.
	srcIncomplete bool
}

// excluded reports whether rel (of a tree) is left out by a pattern: one
// without a slash matches any name in the tree, one with a slash the
// path from the root (as rsync's do).
func (o syncOptions) excluded(rel string) bool {
	for _, pat := range o.exclude {
		pat = strings.TrimPrefix(pat, "/")
		target := path.Base(rel)
		if strings.Contains(pat, "/") {
			target = rel
		}
		if ok, _ := path.Match(pat, target); ok {
			return true
		}
	}
	return false
}

// index lists the tree at e: every entry by its relative path, none
// when the root does not exist. Entries excluded are left out, with
// everything under them.
func (s *session) index(e endpoint, o syncOptions) (map[string]syncEntry, error) {
	if e.isRemote() {
		return s.remoteIndex(e, o)
	}
	out := map[string]syncEntry{}
	info, err := os.Lstat(e.local)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return out, nil
	case err != nil:
		return nil, err
	case !info.IsDir():
		return nil, fmt.Errorf("%s is not a directory; sync copies directory trees", e.spec)
	}
	err = filepath.WalkDir(e.local, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == e.local {
				return err
			}
			s.fail(onPath(p, err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(e.local, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		if rel != "" && o.excluded(rel) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			s.fail(onPath(p, err))
			return nil
		}
		en := syncEntry{size: info.Size(), mode: unixMode(info.Mode()), mtime: info.ModTime()}
		switch {
		case info.IsDir():
			en.typ, en.size = TypeDir, 0
		case info.Mode()&fs.ModeSymlink != 0:
			en.typ = TypeSymlink
			if en.target, err = os.Readlink(p); err != nil {
				s.fail(onPath(p, err))
				return nil
			}
		case info.Mode().IsRegular():
			en.typ = TypeFile
		default:
			fmt.Fprintf(s.stderr, "shoal %s: %s: skipped: a %s is not copied\n", s.name, p, kindOf(info.Mode()))
			return nil
		}
		out[rel] = en
		return nil
	})
	return out, err
}

// remoteIndex lists the tree at e in the cluster, several directories at
// once.
func (s *session) remoteIndex(e endpoint, o syncOptions) (map[string]syncEntry, error) {
	out := map[string]syncEntry{}
	st, err := e.c.Stat(s.ctx, e.remote)
	switch {
	case errors.Is(err, ErrNotFound):
		return out, nil
	case err != nil:
		return nil, onPath(e.spec, err)
	case st.Type != TypeDir:
		return nil, fmt.Errorf("%s is not a directory; sync copies directory trees", e.spec)
	}
	out[""] = syncEntry{typ: TypeDir, mode: st.Mode, mtime: st.MTime}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, max(s.parallel, 1))
	)
	var list func(rel string)
	list = func(rel string) {
		defer wg.Done()
		slots <- struct{}{}
		entries, err := e.c.List(s.ctx, path.Join(e.remote, rel))
		<-slots
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = onPath(path.Join(e.remote, rel), err)
			}
			return
		}
		for _, de := range entries {
			r := path.Join(rel, de.Name)
			if o.excluded(r) || de.Type == TypeFile && isPartName(de.Name) {
				// An upload's partial file is not part of the tree: an
				// interrupted sync run again resumes from it.
				continue
			}
			if special(de.Type) {
				fmt.Fprintf(s.stderr, "shoal %s: %s: skipped: a %s is not copied\n", s.name, path.Join(e.remote, r), de.Type)
				continue
			}
			out[r] = syncEntry{typ: de.Type, size: de.Size, mode: de.Mode, mtime: de.MTime, target: de.Target}
			if de.Type == TypeDir {
				wg.Add(1)
				go list(r)
			}
		}
	}
	wg.Add(1)
	go list("")
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	for rel, en := range out { // symlinks listed before their targets were kept
		if en.typ == TypeSymlink && en.target == "" {
			st, err := e.c.Stat(s.ctx, path.Join(e.remote, rel))
			if err != nil {
				return nil, onPath(path.Join(e.remote, rel), err)
			}
			en.target = st.Target
			out[rel] = en
		}
	}
	return out, nil
}

// syncSummary is what a sync did (or, dry, would do).
type syncSummary struct {
	Copied    int64 `json:"copied"`
	Bytes     int64 `json:"bytes"`
	Unchanged int64 `json:"unchanged"`
	Deleted   int64 `json:"deleted"`
	Failed    int64 `json:"failed"`
	DryRun    bool  `json:"dry_run,omitempty"`
}

func runSync(s *session, args []string) error {
	src, err := s.endpointOf(args[0])
	if err != nil {
		return err
	}
	dst, err := s.endpointOf(args[1])
	if err != nil {
		return err
	}
	switch {
	case !src.isRemote() && !dst.isRemote():
		return errors.New("name a cluster side as :/path (or NAME:/path for a named cluster); for two local trees use rsync")
	case overlaps(src, dst):
		return fmt.Errorf("%s and %s overlap: a tree cannot be synced onto itself or into itself", src.spec, dst.spec)
	}
	o := s.sync
	for _, pat := range o.exclude {
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("--exclude %q: %w", pat, err)
		}
	}
	start := time.Now()
	from, err := s.index(src, o)
	if err != nil {
		return err
	}
	o.srcIncomplete = s.failed // an entry of SRC failed to be read
	if len(from) == 0 {
		return fmt.Errorf("%s: %w", src.spec, ErrNotFound)
	}
	to, err := s.index(dst, o)
	if err != nil {
		return err
	}
	sum, err := s.applySync(src, dst, from, to, o)
	if err != nil {
		return err
	}
	took := time.Since(start).Round(time.Millisecond)
	if s.json {
		if err := s.printJSON(sum); err != nil {
			return err
		}
	} else if !s.quiet {
		dry := ""
		if sum.DryRun {
			dry = " (dry run: nothing changed)"
		}
		fmt.Fprintf(s.stderr, "sync: %d copied (%s), %d unchanged, %d deleted, %d failed in %s%s\n",
			sum.Copied, humanBytes(sum.Bytes), sum.Unchanged, sum.Deleted, sum.Failed, took, dry)
	}
	if sum.Failed > 0 {
		return exitStatus(exitFail)
	}
	return nil
}

// applySync makes dst's tree (to) a copy of src's (from).
func (s *session) applySync(src, dst endpoint, from, to map[string]syncEntry, o syncOptions) (syncSummary, error) {
	sum := syncSummary{DryRun: o.dryRun}
	rels := slices.Sorted(func(yield func(string) bool) {
		for r := range from {
			if !yield(r) {
				return
			}
		}
	})
	say := func(verb, rel string) {
		if o.dryRun {
			fmt.Fprintf(s.stdout, "%s %s\n", verb, dst.join(rel))
		}
	}
	failed := func(err error) {
		sum.Failed++
		s.fail(err)
	}
	// touched: the directories a change is made in, whose times the change
	// moves and which get theirs back at the end.
	touched := map[string]bool{}
	touch := func(rel string) {
		d := path.Dir(rel)
		if d == "." {
			d = ""
		}
		touched[d] = true
	}
	// What is in the way: a name whose type differs goes first, if
	// --delete allows; gone marks what was removed.
	gone := map[string]bool{}
	for _, rel := range rels {
		a, b := from[rel], to[rel]
		if b.typ == "" || b.typ == a.typ || underAny(rel, gone) {
			continue
		}
		if !o.delete {
			failed(fmt.Errorf("%s is a %s in %s but a %s in %s: add --delete to replace it", dst.join(rel), b.typ, dst.spec, a.typ, src.spec))
			gone[rel] = true // nothing below it is copied either
			continue
		}
		say("delete", rel)
		touch(rel)
		if !o.dryRun {
			if err := s.remove(dst, rel, b.typ); err != nil {
				failed(err)
				gone[rel] = true
				continue
			}
		}
		sum.Deleted++
		for r := range to { // it went with everything under it
			if underAny(r, map[string]bool{rel: true}) {
				delete(to, r)
			}
		}
	}
	var dirs []string
	var copyFailed atomic.Int64
	t := &treeCopy{s: s, parallel: s.parallel}
	t.copyOne = func(ctx context.Context, e treeEntry) error {
		err := s.copyEntry(ctx, src, dst, e, t.p)
		if err != nil {
			copyFailed.Add(1)
		}
		return err
	}
	if !o.dryRun {
		t.start("sync")
	}
	for _, rel := range rels {
		a, b := from[rel], to[rel]
		if underAny(rel, gone) {
			continue
		}
		switch {
		case a.typ == TypeDir:
			if b.typ == "" {
				say("mkdir", rel)
				touch(rel)
				if !o.dryRun {
					if err := s.mkdir(dst, rel); err != nil {
						failed(err)
						gone[rel] = true
						continue
					}
				}
			}
			dirs = append(dirs, rel) // kept below if its attributes need setting
			continue
		case a.typ == b.typ && a.typ == TypeSymlink && a.target == b.target:
			sum.Unchanged++
			continue
		case a.typ == b.typ && a.typ == TypeFile && a.size == b.size && (o.checksum || a.mtime.Equal(b.mtime)):
			// Same size and time, or with --checksum same content whatever
			// the times (which are then made the same, as rsync -a does).
			same := true
			if o.checksum {
				var err error
				if same, err = s.sameContent(src, dst, rel); err != nil {
					failed(err)
					continue
				}
			}
			if same {
				sum.Unchanged++
				if retime := !a.mtime.Equal(b.mtime); a.mode != b.mode || retime {
					say(map[bool]string{false: "chmod", true: "touch"}[retime], rel)
					if !o.dryRun {
						if err := s.setAttrs(dst, rel, a, retime); err != nil {
							failed(err)
						}
					}
				}
				continue
			}
		}
		say("copy", rel)
		touch(rel)
		sum.Copied++
		sum.Bytes += a.size
		if !o.dryRun {
			t.send(treeEntry{local: src.join(rel), remote: rel, typ: a.typ, size: a.size, mode: a.mode, mtime: a.mtime, target: a.target})
		}
	}
	t.p.setCounting(false) // the plan is whole: the totals are known
	if o.delete && o.srcIncomplete {
		// Something of SRC could not be read: what is missing from the
		// index may be there, so nothing is deleted (as rsync does).
		fmt.Fprintf(s.stderr, "shoal %s: not deleting anything: part of %s could not be read\n", s.name, src.spec)
	} else if o.delete {
		// Parents before children, and only the top of a removed subtree.
		extra := slices.Sorted(func(yield func(string) bool) {
			for r := range to {
				if _, ok := from[r]; !ok && r != "" && !yield(r) {
					return
				}
			}
		})
		removed := map[string]bool{}
		for _, rel := range extra {
			if underAny(rel, removed) {
				continue
			}
			say("delete", rel)
			touch(rel)
			if !o.dryRun {
				if err := s.remove(dst, rel, to[rel].typ); err != nil {
					failed(err)
					continue
				}
			}
			removed[rel] = true
			sum.Deleted++
		}
	}
	if o.dryRun {
		return sum, nil
	}
	// The directories' modes and times once their content is in place,
	// deepest first: writing into a directory changes its time.
	for _, rel := range dirs {
		a, b := from[rel], to[rel]
		if b.typ == TypeDir && b.mode == a.mode && b.mtime.Equal(a.mtime) && !touched[rel] {
			continue
		}
		t.dirs = append(t.dirs, treeEntry{remote: rel, typ: TypeDir})
	}
	t.finalDir = func(ctx context.Context, e treeEntry) error { return s.setAttrs(dst, e.remote, from[e.remote], true) }
	if err := t.finish(); err != nil && t.failed.Load() == 0 {
		return sum, err
	}
	sum.Failed += t.failed.Load()
	sum.Copied -= copyFailed.Load()
	return sum, nil
}

// underAny reports whether rel is at or under one of the paths in set.
func underAny(rel string, set map[string]bool) bool {
	for p := rel; p != "." && p != ""; p = path.Dir(p) {
		if set[p] {
			return true
		}
	}
	return false
}

// copyEntry copies the file or symlink e (e.remote holds its relative
// path) from src to dst.
func (s *session) copyEntry(ctx context.Context, src, dst endpoint, e treeEntry, p *progress) error {
	rel := e.remote
	from, to := src.join(rel), dst.join(rel)
	if e.typ == TypeSymlink {
		if dst.isRemote() {
			return onPath(to, putSymlink(ctx, dst.c, treeEntry{remote: to, target: e.target}))
		}
		os.Remove(to)
		return os.Symlink(e.target, to)
	}
	switch {
	case !src.isRemote(): // local to cluster
		_, err := uploadFile(ctx, dst.c, from, to, PutOptions{}, p, true)
		return onPath(from, err)
	case !dst.isRemote(): // cluster to local
		body, info, err := src.c.Get(ctx, from)
		if err != nil {
			return onPath(from, err)
		}
		defer body.Close()
		if err := saveFile(to, p.reader(body), info.Size, from); err != nil {
			return err
		}
		return setLocalAttrs(treeEntry{local: to, mode: e.mode, mtime: e.mtime})
	case src.c.Router() == dst.c.Router() && src.c.token == dst.c.token:
		// Within a cluster, as one user: the copy shares the chunks. (As
		// two users, the bytes go through here, each side's reads and
		// writes under its own token.)
		if err := src.c.Copy(ctx, from, to); err != nil {
			return onPath(from, err)
		}
		p.moved(e.size) // in effect: no byte travels
		_, err := dst.c.SetAttrPath(ctx, to, SetAttr{Mode: &e.mode, MTime: &e.mtime})
		return onPath(to, err)
	default: // between clusters
		body, info, err := src.c.Get(ctx, from)
		if err != nil {
			return onPath(from, err)
		}
		defer body.Close()
		_, _, err = dst.c.PutWith(ctx, to, p.reader(body), info.Size, PutOptions{Mode: &e.mode, MTime: &e.mtime})
		return onPath(to, err)
	}
}

// mkdir makes the directory rel of e (its mode and time come later).
func (s *session) mkdir(e endpoint, rel string) error {
	if e.isRemote() {
		return onPath(e.join(rel), e.c.Mkdir(s.ctx, e.join(rel), true))
	}
	return os.MkdirAll(e.join(rel), 0o700)
}

// remove deletes rel of e, a directory with everything in it.
func (s *session) remove(e endpoint, rel, typ string) error {
	if e.isRemote() {
		return onPath(e.join(rel), e.c.Delete(s.ctx, e.join(rel), typ == TypeDir))
	}
	return os.RemoveAll(e.join(rel))
}

// setAttrs gives rel of e the mode of a, and with withTime its mtime.
func (s *session) setAttrs(e endpoint, rel string, a syncEntry, withTime bool) error {
	if e.isRemote() {
		attrs := SetAttr{Mode: &a.mode}
		if withTime {
			attrs.MTime = &a.mtime
		}
		_, err := e.c.SetAttrPath(s.ctx, e.join(rel), attrs)
		return onPath(e.join(rel), err)
	}
	if !withTime {
		return os.Chmod(e.join(rel), fs.FileMode(a.mode&0o777)|goModeBits(a.mode))
	}
	return setLocalAttrs(treeEntry{local: e.join(rel), mode: a.mode, mtime: a.mtime})
}

// sameContent compares the content of rel on both sides by SHA-256: of
// the whole files, or (for a file in the cluster whose Hash names its
// chunk list, one put by chunks or changed in place) of each chunk, which
// the cluster compares with a local copy (see chunkedUpload).
func (s *session) sameContent(src, dst endpoint, rel string) (bool, error) {
	a, err := s.contentHash(src, rel)
	if err != nil {
		return false, err
	}
	b, err := s.contentHash(dst, rel)
	if err != nil || a == b {
		return a == b, err
	}
	switch {
	case src.isRemote() && !dst.isRemote() && strings.HasPrefix(a, chunkListPrefix):
		return s.holdsLocal(src.c, src.join(rel), dst.join(rel))
	case dst.isRemote() && !src.isRemote() && strings.HasPrefix(b, chunkListPrefix):
		return s.holdsLocal(dst.c, dst.join(rel), src.join(rel))
	}
	return false, nil
}

// chunkListPrefix starts the Hash of a file that names its chunk list.
const chunkListPrefix = "chunks:"

// holdsLocal reports whether the file remote in the cluster holds local's
// content, chunk by chunk.
func (s *session) holdsLocal(c *Client, remote, local string) (bool, error) {
	f, err := os.Open(local)
	if err != nil {
		return false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return false, err
	}
	g, err := c.chunking(s.ctx)
	if err != nil || !g.ChunkUploads || g.ChunkSize <= 0 || info.Size() == 0 {
		return false, err
	}
	u := &upload{c: c, f: f, size: info.Size(), cs: int64(g.ChunkSize)}
	if err := u.compare(s.ctx, remote); err != nil {
		return false, onPath(remote, err)
	}
	return u.partSize == u.size && allTrue(u.same), nil
}

// contentHash is the hex SHA-256 of rel's content: the cluster's Hash of
// a file written whole (one changed in place names its chunk list
// instead, and so never matches: it is copied again), or read locally.
func (s *session) contentHash(e endpoint, rel string) (string, error) {
	if e.isRemote() {
		st, err := e.c.Stat(s.ctx, e.join(rel))
		return st.Hash, onPath(e.join(rel), err)
	}
	f, err := os.Open(e.join(rel))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", onPath(e.join(rel), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
