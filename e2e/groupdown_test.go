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

// groups returns the meta group and the data groups as the router sees
// them.
func (c *cluster) groups() (meta api.Group, data []api.Group) {
	c.t.Helper()
	cs, ok := c.clusterView()
	if !ok {
		c.t.Fatal("no cluster view")
	}
	for _, g := range cs.Groups {
		if g.Meta {
			meta = g
		} else {
			data = append(data, g)
		}
	}
	if meta.Name == "" {
		c.t.Fatalf("no meta group in the cluster view %+v", cs.Groups)
	}
	return meta, data
}

// TestReadWithGroupDown: every member of the data group holding a file's
// chunks is killed. A GET of that file is answered 503 with the API's
// error body, which a client retries on, instead of a 200 cut short (a
// bare EOF to the client); a file in the meta group is still served.
func TestReadWithGroupDown(t *testing.T) {
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 1}}})
	mg, _ := c.groups()
	meta := mg.Name
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
	_, data := c.groups()
	if len(data) != 1 || data[0].Primary == "" {
		t.Fatalf("want one data group with a primary, have %+v", data)
	}
	weak := data[0]
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

// TestWriteWithMetaGroupDown: the meta group loses its majority (its
// primary lives on, two of its three members are killed). An upload whose
// chunks a data group could store is answered 503 within the router's
// --request-timeout (10 s) and a little more, not a multiple of it: the
// router does not wait once per chunk to ask the meta group where the
// chunk already is.
func TestWriteWithMetaGroupDown(t *testing.T) {
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 1}}})
	meta, _ := c.groups()
	for _, p := range c.groupNodes(meta.Name) {
		if p.Name != meta.Primary {
			p.Kill()
		}
	}
	start := time.Now()
	// Three chunks of the default 4 MiB.
	code, _, body := c.do("PUT", "/v1/fs/big.bin", bytes.NewReader(randomBytes(3, 12<<20)))
	took := time.Since(start)
	if code != 503 {
		t.Fatalf("PUT with the meta group down: %d %s, want 503", code, body)
	}
	if took > 15*time.Second {
		t.Errorf("PUT with the meta group down was answered after %v; want about the 10 s --request-timeout", took.Round(time.Millisecond))
	}
	t.Logf("answered 503 after %v: %s", took.Round(time.Millisecond), body)
}
