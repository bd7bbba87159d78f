package router

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/api"
)

// Search finds what a brute-force walk of the same tree finds, page by
// page, whatever stops a page (the limit or the visit budget), with
// every filter.
func TestSearchAgainstBruteForce(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(func(cfg *Config) { cfg.InlineMax = 1 << 10 })
	r := rand.New(rand.NewPCG(3, 3))
	dirs := []string{"/data"}
	for i := range 15 {
		d := path.Join(dirs[r.IntN(len(dirs))], fmt.Sprintf("d%02d", i))
		if w := do(s, "POST", "/v1/fs"+d+"?op=mkdir&parents=1", nil); w.Code != http.StatusCreated {
			t.Fatalf("mkdir %s: %d %s", d, w.Code, w.Body)
		}
		dirs = append(dirs, d)
	}
	exts := []string{".log", ".gz", ".txt", ""}
	for i := range 120 {
		p := path.Join(dirs[r.IntN(len(dirs))], fmt.Sprintf("f%03d%s", i, exts[r.IntN(len(exts))]))
		if w := do(s, "PUT", "/v1/fs"+p, strings.NewReader(strings.Repeat("x", r.IntN(300)))); w.Code != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", p, w.Code, w.Body)
		}
	}
	do(s, "POST", "/v1/fs/data/link.log?op=symlink&target=d00", nil)

	// The brute force: every entry under /data, by listing each directory.
	type entry struct {
		path string
		st   api.Stat
	}
	var all []entry
	var walk func(d string)
	walk = func(d string) {
		var l api.Listing
		json.Unmarshal(do(s, "GET", "/v1/fs"+d, nil).Body.Bytes(), &l)
		for _, e := range l.Entries {
			p := path.Join(d, e.Name)
			all = append(all, entry{p, api.Stat{Path: p, Attr: e.Attr}})
			if e.Type == "dir" {
				walk(p)
			}
		}
	}
	walk("/data")
	if len(all) < 130 {
		t.Fatalf("the tree has %d entries", len(all))
	}
	mid := all[len(all)/2].st.MTime
	for _, tc := range []struct {
		query string
		keep  func(e entry) bool
	}{
		{"", func(entry) bool { return true }},
		{"name=*.log", func(e entry) bool { return strings.HasSuffix(e.path, ".log") }},
		{"name=*.log&type=f", func(e entry) bool { return strings.HasSuffix(e.path, ".log") && e.st.Type == "file" }},
		{"type=d", func(e entry) bool { return e.st.Type == "dir" }},
		{"type=l", func(e entry) bool { return e.st.Type == "symlink" }},
		{"min_size=100&max_size=200", func(e entry) bool { return e.st.Type == "file" && e.st.Size >= 100 && e.st.Size <= 200 }},
		{"newer=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), func(e entry) bool { return e.st.MTime.After(mid) }},
		{"owner=0&name=f0*", func(e entry) bool { return strings.HasPrefix(path.Base(e.path), "f0") }},
		{"owner=4242", func(entry) bool { return false }},
		{"depth=1", func(e entry) bool { return !strings.Contains(strings.TrimPrefix(e.path, "/data/"), "/") }},
		{"depth=2&type=f", func(e entry) bool {
			return strings.Count(strings.TrimPrefix(e.path, "/data/"), "/") <= 1 && e.st.Type == "file"
		}},
	} {
		var want []string
		for _, e := range all {
			if tc.keep(e) {
				want = append(want, e.path)
			}
		}
		for _, budget := range []int{maxSearchVisit, 7} {
			restore := maxSearchVisit
			maxSearchVisit = budget
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > 1000 {
					t.Fatalf("%s: paging does not end", tc.query)
				}
				w := do(s, "GET", "/v1/search?path=/data&limit=5&"+tc.query+"&after="+url.QueryEscape(after), nil)
				var page api.SearchPage
				if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &page) != nil {
					t.Fatalf("search %s: %d %s", tc.query, w.Code, w.Body)
				}
				if len(page.Matches) > 5 || page.Visited > budget {
					t.Fatalf("search %s: %d matches, %d visited in one page", tc.query, len(page.Matches), page.Visited)
				}
				for _, m := range page.Matches {
					got = append(got, m.Path)
				}
				if page.Next == "" {
					break
				}
				after = page.Next
			}
			maxSearchVisit = restore
			if !slices.Equal(got, want) {
				t.Errorf("search %s (visit budget %d): %d matches\n%q\nwant %d\n%q", tc.query, budget, len(got), got, len(want), want)
			}
		}
	}
	for _, bad := range []string{"name=a/b", "name=[", "type=x", "depth=0", "min_size=-1", "newer=yesterday", "limit=0",
		"after=/elsewhere", "after=/data", "owner=nobody-here"} {
		if w := do(s, "GET", "/v1/search?path=/data&"+bad, nil); w.Code/100 != 4 {
			t.Errorf("search %s: %d %s, want a 4xx", bad, w.Code, w.Body)
		}
	}
	if w := do(s, "GET", "/v1/search?path=/a/../b", nil); w.Code != http.StatusBadRequest {
		t.Errorf("search under a path that is not clean: %d", w.Code)
	}
	if w := do(s, "GET", "/v1/search?path=/nothing", nil); w.Code != http.StatusNotFound {
		t.Errorf("search under a missing path: %d", w.Code)
	}
}

func TestGlob(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(func(cfg *Config) { cfg.InlineMax = 1 << 10 })
	for _, p := range []string{"/logs/a.gz", "/logs/b.gz", "/logs/c.txt", "/logs/old/d.gz", "/x/1/b", "/x/2/b", "/x/2/c", "/x/3/z"} {
		do(s, "PUT", "/v1/fs"+p, strings.NewReader("x"))
	}
	for pattern, want := range map[string][]string{
		"/logs/*.gz":   {"/logs/a.gz", "/logs/b.gz"},
		"/x/*/b":       {"/x/1/b", "/x/2/b"},
		"/x/[12]/?":    {"/x/1/b", "/x/2/b", "/x/2/c"},
		"/*/*.gz":      {"/logs/a.gz", "/logs/b.gz"},
		"/logs/c.txt":  {"/logs/c.txt"},
		"/logs/*.zip":  {},
		"/nothing/*":   {},
		"/logs/*/d.gz": {"/logs/old/d.gz"},
	} {
		w := do(s, "GET", "/v1/glob?pattern="+url.QueryEscape(pattern), nil)
		var res api.GlobResult
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &res) != nil {
			t.Fatalf("glob %s: %d %s", pattern, w.Code, w.Body)
		}
		got := []string{}
		for _, m := range res.Matches {
			got = append(got, m.Path)
		}
		if !slices.Equal(got, want) {
			t.Errorf("glob %s = %q, want %q", pattern, got, want)
		}
	}
	if w := do(s, "GET", "/v1/glob?pattern="+url.QueryEscape("/logs/["), nil); w.Code != http.StatusBadRequest {
		t.Errorf("a bad pattern: %d", w.Code)
	}

	// Past its bounds a glob says it is truncated, so that no client
	// acts on part of what a pattern names (rm deleting some of it).
	glob := func(pattern string) api.GlobResult {
		t.Helper()
		var res api.GlobResult
		w := do(s, "GET", "/v1/glob?pattern="+url.QueryEscape(pattern), nil)
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &res) != nil {
			t.Fatalf("glob %s: %d %s", pattern, w.Code, w.Body)
		}
		return res
	}
	defer func(m, v int) { maxGlobMatches, maxGlobVisit = m, v }(maxGlobMatches, maxGlobVisit)
	maxGlobMatches = 2
	if res := glob("/logs/*.gz"); res.Truncated || len(res.Matches) != 2 {
		t.Errorf("two matches of a limit of two: %+v", res)
	}
	for _, p := range []string{"/x/[12]/?", "/x/*/*", "/logs/*"} {
		if res := glob(p); !res.Truncated || len(res.Matches) != 2 {
			t.Errorf("glob %s past a limit of two matches: %+v", p, res)
		}
	}
	maxGlobMatches, maxGlobVisit = 100, 3
	if res := glob("/logs/*.gz"); !res.Truncated || !res.TooManyEntries { // lists 4 entries
		t.Errorf("glob past a budget of 3 entries listed: %+v", res)
	}
}
