package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// A directory larger than one page of the meta group's answers is listed
// whole, in name order, streamed page by page; ?limit=N&after=NAME walks
// it one bounded page at a time; a bad limit is refused.
func TestLargeDirectoryListing(t *testing.T) {
	c := newCluster(t, 3)
	const n = 2500 // two and a half pages
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c.expect("PUT", fmt.Sprintf("/v1/fs/big/f%05d", i), strings.NewReader("x"), 201)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("f%05d", i)
	}
	type listing struct {
		Path    string
		Entries []struct{ Name string }
		Next    string
	}
	names := func(l listing) []string {
		var out []string
		for _, e := range l.Entries {
			out = append(out, e.Name)
		}
		return out
	}
	var whole listing
	if err := json.Unmarshal(c.expect("GET", "/v1/fs/big", nil, 200), &whole); err != nil {
		t.Fatal(err)
	}
	if got := names(whole); !slices.Equal(got, want) || whole.Next != "" {
		t.Fatalf("whole listing: %d names (next %q), want the %d written in order", len(got), whole.Next, n)
	}
	var paged []string
	after, pages := "", 0
	for {
		var l listing
		if err := json.Unmarshal(c.expect("GET", "/v1/fs/big?limit=1000&after="+after, nil, 200), &l); err != nil {
			t.Fatal(err)
		}
		pages++
		if len(l.Entries) > 1000 {
			t.Fatalf("page %d holds %d entries, over its limit", pages, len(l.Entries))
		}
		paged = append(paged, names(l)...)
		if l.Next == "" {
			break
		}
		after = l.Next
	}
	if !slices.Equal(paged, want) || pages != 3 {
		t.Fatalf("paged listing: %d names in %d pages, want %d in 3", len(paged), pages, n)
	}
	for _, bad := range []string{"0", "1001", "x"} {
		c.expect("GET", "/v1/fs/big?limit="+bad, nil, 400)
	}
	// An empty directory still lists as an empty array.
	c.expect("POST", "/v1/fs/empty?op=mkdir", nil, 201)
	var empty listing
	if b := c.expect("GET", "/v1/fs/empty", nil, 200); json.Unmarshal(b, &empty) != nil || empty.Entries == nil && !strings.Contains(string(b), `"entries": []`) {
		t.Fatalf("empty directory listing: %s", b)
	}
}
