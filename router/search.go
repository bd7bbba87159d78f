package router

// Search and glob expansion, served by walking the namespace in name
// order, a directory page at a time from the meta group: the tree never
// travels to the client, and each request does bounded work, handing
// back a cursor where it stopped.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"

	"shoal/api"
	"shoal/clock"
	"shoal/meta"
	"shoal/wire"
)

// maxSearchVisit bounds the entries one search request looks at; the
// answer then carries a cursor to go on from. Tests lower it.
var maxSearchVisit = 20000

// maxSearchLimit bounds the matches one answer carries.
const maxSearchLimit = 10000

// maxGlobMatches bounds what a glob expands to; maxGlobVisit the entries
// it lists to find them (a pattern in a directory of a million names
// still works: it is a thousand pages read). Tests lower them.
var (
	maxGlobMatches = 10000
	maxGlobVisit   = 1_000_000
)

// searchQuery is what GET /v1/search asks.
type searchQuery struct {
	root             string
	name             string // a glob on the base name; "" any
	typ              meta.FileType
	anyType          bool
	minSize, maxSize int64 // maxSize < 0: none
	newer            int64 // mtime after, Unix ns; 0: any
	uid              int64 // -1: any owner
	limit            int
	after            string // the cursor: the last path looked at
	depth            int    // levels below root to look at; 0: all
}

func (s *Server) parseSearch(r *http.Request) (searchQuery, error) {
	q := r.URL.Query()
	bad := func(format string, args ...any) (searchQuery, error) {
		return searchQuery{}, fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	sq := searchQuery{anyType: true, maxSize: -1, uid: -1, limit: 1000}
	root, err := CleanPath(cmpOr(q.Get("path"), "/"))
	if err != nil {
		return sq, err
	}
	sq.root = root
	if sq.name = q.Get("name"); sq.name != "" {
		if _, err := path.Match(sq.name, ""); err != nil || strings.Contains(sq.name, "/") {
			return bad("name=%q: want a glob on names, like *.log (no /)", sq.name)
		}
	}
	switch t := q.Get("type"); t {
	case "":
	case "f", "file":
		sq.typ, sq.anyType = meta.TypeFile, false
	case "d", "dir":
		sq.typ, sq.anyType = meta.TypeDir, false
	case "l", "symlink":
		sq.typ, sq.anyType = meta.TypeSymlink, false
	default:
		return bad("type=%q: want f, d or l", t)
	}
	for _, b := range []struct {
		name string
		dst  *int64
	}{{"min_size", &sq.minSize}, {"max_size", &sq.maxSize}} {
		if v := q.Get(b.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return bad("%s=%q: want a byte count", b.name, v)
			}
			*b.dst = n
		}
	}
	if v := q.Get("newer"); v != "" {
		t, err := api.ParseWhen(v, clock.Now())
		if err != nil {
			return bad("newer=%q: %v", v, err)
		}
		sq.newer = t.UnixNano()
	}
	if v := q.Get("owner"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 32); err == nil {
			sq.uid = int64(n)
		} else {
			ur, err := s.metaRead(r.Context(), &wire.Read{Kind: wire.ReadUserNamed, Name: v})
			if err != nil {
				return sq, err
			}
			if ur.User == nil {
				return sq, fmt.Errorf("owner=%q: no such user: %w", v, meta.ErrNotFound)
			}
			sq.uid = int64(ur.User.Uid)
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSearchLimit {
			return bad("limit=%q: give 1 to %d matches", v, maxSearchLimit)
		}
		sq.limit = n
	}
	if v := q.Get("depth"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return bad("depth=%q: give how many levels below path to look at, 1 or more", v)
		}
		sq.depth = n
	}
	if v := q.Get("after"); v != "" {
		after, err := CleanPath(v)
		if err != nil || !under(after, sq.root) || after == sq.root {
			return bad("after=%q: not a cursor of a search under %s (pass the next an answer gave)", v, sq.root)
		}
		sq.after = after
	}
	return sq, nil
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// under reports whether p is root or below it.
func under(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

func (sq searchQuery) matches(name string, in meta.Inode) bool {
	switch {
	case !sq.anyType && in.Type != sq.typ:
		return false
	case sq.name != "":
		if ok, _ := path.Match(sq.name, name); !ok {
			return false
		}
	}
	if in.Type == meta.TypeFile && (in.Size < sq.minSize || sq.maxSize >= 0 && in.Size > sq.maxSize) ||
		in.Type != meta.TypeFile && (sq.minSize > 0 || sq.maxSize >= 0) {
		return false
	}
	return (sq.newer == 0 || in.MTime > sq.newer) && (sq.uid < 0 || int64(in.Uid) == sq.uid)
}

// search answers GET /v1/search: the entries under path that match,
// found by a walk in name order (depth first, a directory before what
// is in it) that looks at no more than maxSearchVisit entries. An answer
// that stopped early carries next, the last path it looked at, to pass
// as after=. Directories the caller may not read are passed over and
// counted.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	sq, err := s.parseSearch(r)
	if err != nil {
		writeError(w, err)
		return
	}
	res := api.SearchPage{Path: sq.root, Matches: []api.Stat{}}
	visit := func(p string, in meta.Inode) bool {
		res.Visited++
		if sq.matches(path.Base(p), in) && p != sq.root {
			res.Matches = append(res.Matches, statOf(p, in))
		}
		if len(res.Matches) >= sq.limit || res.Visited >= maxSearchVisit {
			res.Next = p
			return false
		}
		return true
	}
	w2 := walker{s: s, ctx: r.Context(), denied: &res.Denied, root: sq.root, depth: sq.depth}
	if err := w2.resume(sq.root, sq.after, visit); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// walker walks the namespace for one request.
type walker struct {
	s      *Server
	ctx    context.Context
	denied *int // directories passed over: the caller may not read them
	// root and depth: the walk goes no deeper than depth levels below
	// root (0: all the way).
	root  string
	depth int
}

// descends reports whether the walk goes into the directory p.
func (wk walker) descends(p string) bool {
	if wk.depth == 0 {
		return true
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, wk.root), "/")
	return rel == "" || strings.Count(rel, "/")+1 < wk.depth
}

// resume walks the tree at root in order, starting just after the path
// after ("" from the start), calling visit for each entry until it
// returns false. The walk is stateless: after names where it stopped,
// and the walk goes on from there by descending into after (it was seen,
// not what is in it) and then into the rest of each of its parents.
func (wk walker) resume(root, after string, visit func(p string, in meta.Inode) bool) error {
	if after == "" {
		rr, err := wk.s.read(wk.ctx, wire.ReadLookup, target{path: root}, 0)
		if err != nil {
			return err
		}
		if !visit(root, rr.Inode) {
			return nil
		}
		if rr.Inode.Type != meta.TypeDir || !wk.descends(root) {
			return nil
		}
		_, err = wk.dir(root, "", visit)
		return err
	}
	// Into after itself, if it is a directory, then the rest of each
	// directory from after's parent up to root.
	rr, err := wk.s.read(wk.ctx, wire.ReadLookup, target{path: after}, 0)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		// Gone since: its siblings after it are still to do.
	case err != nil:
		return err
	case rr.Inode.Type == meta.TypeDir && wk.descends(after):
		if more, err := wk.dir(after, "", visit); err != nil || !more {
			return err
		}
	}
	for p := after; p != root; p = path.Dir(p) {
		if more, err := wk.dir(path.Dir(p), path.Base(p), visit); err != nil || !more {
			return err
		}
	}
	return nil
}

// dir visits the entries of directory d after the name from (all with
// ""), descending into each subdirectory as it comes. It reports whether
// the walk goes on.
func (wk walker) dir(d, from string, visit func(p string, in meta.Inode) bool) (bool, error) {
	return wk.list(d, from, func(p string, in meta.Inode) (bool, error) {
		if !visit(p, in) {
			return false, nil
		}
		if in.Type != meta.TypeDir || !wk.descends(p) {
			return true, nil
		}
		return wk.dir(p, "", visit)
	})
}

// list calls each for the entries of directory d after the name from,
// a page at a time, until it returns false or an error. A directory the
// caller may not read, or gone or replaced since it was seen, is passed
// over and counted in denied.
func (wk walker) list(d, from string, each func(p string, in meta.Inode) (bool, error)) (bool, error) {
	for {
		rr, err := wk.s.metaRead(wk.ctx, &wire.Read{Kind: wire.ReadReadDir, Path: d, Cred: credOf(wk.ctx), AfterName: from, Limit: wire.MaxDirPage})
		switch {
		case errors.Is(err, meta.ErrPermission), errors.Is(err, meta.ErrNotFound), errors.Is(err, meta.ErrNotDir):
			*wk.denied++
			return true, nil
		case err != nil:
			return false, err
		}
		for _, e := range rr.Entries {
			if more, err := each(path.Join(d, e.Name), e.Inode); err != nil || !more {
				return more, err
			}
		}
		if !rr.More || len(rr.Entries) == 0 {
			return true, nil
		}
		from = rr.Entries[len(rr.Entries)-1].Name
	}
}

// glob answers GET /v1/glob?pattern=P: the paths that match P, a path
// whose components may hold the wildcards of path.Match, in name order
// (at most maxGlobMatches). Only directories a component with a
// wildcard names are listed; a pattern without one names one path, which
// matches if it exists.
func (s *Server) glob(w http.ResponseWriter, r *http.Request) {
	pattern := r.URL.Query().Get("pattern")
	clean, err := CleanPath(pattern)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := path.Match(clean, ""); err != nil {
		writeError(w, fmt.Errorf("%w: pattern %q: %v", ErrBadRequest, pattern, err))
		return
	}
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	if clean == "/" {
		parts = nil
	}
	wk := walker{s: s, ctx: r.Context(), denied: new(int)}
	res := api.GlobResult{Pattern: clean, Matches: []api.Stat{}}
	var expand func(dir string, rest []string) error
	visited := 0 // entries listed: bounded as a search's walk is
	expand = func(dir string, rest []string) error {
		if res.Truncated {
			return nil
		}
		if len(rest) == 0 {
			rr, err := s.read(r.Context(), wire.ReadLookup, target{path: dir}, 0)
			switch {
			case errors.Is(err, meta.ErrNotFound), errors.Is(err, meta.ErrNotDir), errors.Is(err, meta.ErrPermission):
				return nil
			case err != nil:
				return err
			}
			if len(res.Matches) >= maxGlobMatches {
				res.Truncated = true
				return nil
			}
			res.Matches = append(res.Matches, statOf(dir, rr.Inode))
			return nil
		}
		if !hasMeta(rest[0]) {
			return expand(path.Join(dir, rest[0]), rest[1:])
		}
		var subdirs []string
		_, err := wk.list(dir, "", func(p string, in meta.Inode) (bool, error) {
			if visited++; visited > maxGlobVisit {
				res.Truncated, res.TooManyEntries = true, true
				return false, nil
			}
			if ok, _ := path.Match(rest[0], path.Base(p)); ok {
				switch {
				case len(rest) > 1:
					if in.Type == meta.TypeDir {
						subdirs = append(subdirs, p)
					}
				case len(res.Matches) >= maxGlobMatches:
					res.Truncated = true
					return false, nil
				default:
					res.Matches = append(res.Matches, statOf(p, in))
				}
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, d := range subdirs {
			if err := expand(d, rest[1:]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := expand("/", parts); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// hasMeta reports whether a path component holds a wildcard.
func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }
