package client

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"shoal/api"
)

// SearchPage is one answer of Search.
type SearchPage = api.SearchPage

// SearchQuery is what Search looks for under Path; zero fields match
// anything.
type SearchQuery struct {
	Path string
	Name string // a glob on base names, like *.log
	Type string // "f", "d" or "l"
	// MinSize and MaxSize (nil: none) bound a file's size; a bound
	// matches files only.
	MinSize int64
	MaxSize *int64
	Newer   time.Time // modified after
	Owner   string    // a user name or a uid
	Limit   int       // matches per page; 0: the router's default
	Depth   int       // levels below Path to look at; 0: all
}

// Search returns the page of matches of q that follows the cursor after
// ("" for the first); the page's Next is the cursor of the one after it,
// empty on the last. The cluster walks the tree; each page is bounded
// work, so a page may hold fewer matches than Limit and still have a
// Next.
func (c *Client) Search(ctx context.Context, q SearchQuery, after string) (SearchPage, error) {
	v := url.Values{"path": {absPath(q.Path)}}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("name", q.Name)
	set("type", q.Type)
	set("owner", q.Owner)
	set("after", after)
	if q.MinSize > 0 {
		v.Set("min_size", strconv.FormatInt(q.MinSize, 10))
	}
	if q.MaxSize != nil {
		v.Set("max_size", strconv.FormatInt(*q.MaxSize, 10))
	}
	if !q.Newer.IsZero() {
		v.Set("newer", q.Newer.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Depth > 0 {
		v.Set("depth", strconv.Itoa(q.Depth))
	}
	var page SearchPage
	err := c.apiCall(ctx, "GET", "/v1/search", v, &page)
	return page, err
}

// Glob returns what the pattern matches: a path whose components may
// hold the wildcards *, ? and [...] (a \ quotes the next character), in
// name order. No match is an empty list, not an error.
func (c *Client) Glob(ctx context.Context, pattern string) ([]Stat, error) {
	var res api.GlobResult
	if err := c.apiCall(ctx, "GET", "/v1/glob", url.Values{"pattern": {absPath(pattern)}}, &res); err != nil {
		return nil, err
	}
	switch {
	case res.TooManyEntries:
		return res.Matches, fmt.Errorf("%s: the directories it names hold more entries than one glob looks through: name the directory more narrowly, or use shoal find", pattern)
	case res.Truncated:
		return res.Matches, fmt.Errorf("%s matches more than the %d paths the router returns: narrow it", pattern, len(res.Matches))
	}
	return res.Matches, nil
}
