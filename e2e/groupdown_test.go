package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"shoal/api"
	"shoal/harness"
)

// TestReadWithGroupDown: every member of the data group holding a file's
// chunks is killed. A GET of that file is answered 503 with the API's
// error body, which a client retries on, instead of a 200 cut short (a
// bare EOF to the client); a file in the meta group is still served.
func TestReadWithGroupDown(t *testing.T) {
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 1}}})
	cs, ok := c.clusterView()
	if !ok {
		t.Fatal("no cluster view")
	}
	meta := ""
	for _, g := range cs.Groups {
		if g.Meta {
			meta = g.Name
		}
	}
	if meta == "" {
		t.Fatal("no meta group in the cluster view")
	}
	// Write files until one lands wholly in a data group and one wholly
	// in the meta group (placement follows free space).
	inGroup := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 40 && len(inGroup) < 2; i++ {
		p := fmt.Sprintf("/f%d.bin", i)
		c.expect("PUT", "/v1/fs"+p, bytes.NewReader(randomBytes(uint64(i), 300<<10)), 201)
		chunks, err := c.client().Chunks(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		groups := map[string]bool{}
		for _, ch := range chunks {
			groups[ch.Group] = true
		}
		if len(groups) == 1 {
			for g := range groups {
				if _, ok := inGroup[g]; !ok {
					inGroup[g] = p
				}
			}
		}
	}
	var data, dataFile string
	for g, p := range inGroup {
		if g != meta {
			data, dataFile = g, p
		}
	}
	if data == "" {
		t.Fatalf("no file landed in a data group in 40 writes (%v)", inGroup)
	}
	for _, p := range c.groupNodes(data) {
		p.Kill()
	}
	code, _, body := c.do("GET", "/v1/fs"+dataFile, nil)
	var e api.ErrorBody
	if code != 503 || json.Unmarshal(body, &e) != nil || e.Code == "" {
		t.Fatalf("GET of a file whose group %s is down: %d %q; want 503 with an error body", data, code, body)
	}
	if !strings.Contains(e.Message, data) {
		t.Errorf("the error does not name the group that is down: %q", e.Message)
	}
	if metaFile, ok := inGroup[meta]; ok {
		c.expect("GET", "/v1/fs"+metaFile, nil, 200)
	}
}

// TestWritesAvoidGroupWithoutMajority: a data group keeps its primary but
// loses its majority (two of its three members are killed). Uploads go to
// the groups that can take them, every one is acknowledged, and each
// reads back whole.
func TestWritesAvoidGroupWithoutMajority(t *testing.T) {
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 3}}})
	cs, ok := c.clusterView()
	if !ok {
		t.Fatal("no cluster view")
	}
	var weak api.Group
	for _, g := range cs.Groups {
		if !g.Meta {
			weak = g
		}
	}
	if weak.Name == "" || weak.Primary == "" {
		t.Fatalf("no data group with a primary in %+v", cs.Groups)
	}
	killed := 0
	for _, p := range c.groupNodes(weak.Name) {
		if p.Name != weak.Primary {
			p.Kill()
			killed++
		}
	}
	if killed != 2 {
		t.Fatalf("killed %d members of %s, want 2", killed, weak.Name)
	}
	files := map[string][]byte{}
	for i := range 12 {
		p := fmt.Sprintf("/v1/fs/w%d.bin", i)
		files[p] = randomBytes(uint64(100+i), 300<<10)
		start := time.Now()
		c.expect("PUT", p, bytes.NewReader(files[p]), 201)
		t.Logf("%s acknowledged in %v", p, time.Since(start).Round(time.Millisecond))
	}
	for p, want := range files {
		if got := c.expect("GET", p, nil, 200); !bytes.Equal(got, want) {
			t.Errorf("%s reads back %d bytes, not the %d written", p, len(got), len(want))
		}
	}
}
