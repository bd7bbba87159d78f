package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"shoal/api"
	"shoal/harness"
	"shoal/meta"
	"shoal/wire"
)

// decodeError reads an error answer.
func decodeError(t *testing.T, body []byte) api.ErrorBody {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e
}

func TestUploadSpreadsByFreeSpace(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 3, 3<<20)
	g2 := c.group("g2", 2, 1<<20)
	// A loaded machine may take longer than the harness's 200ms for a
	// write on the real replication nodes of g1, which would then be
	// passed over for a while and the spread would be the failover's.
	s := c.router(func(cfg *Config) { cfg.RPCTimeout = 5 * time.Second })
	data := content(200 * 16) // 200 distinct chunks
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(data)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	in, ok := g1[0].file("/f")
	if !ok {
		t.Fatal("the file was not committed to the meta group")
	}
	if len(in.Chunks) != 200 || in.Size != int64(len(data)) {
		t.Fatalf("inode has %d chunks, %d bytes", len(in.Chunks), in.Size)
	}
	per := map[string]int{}
	for i, ref := range in.Chunks {
		per[ref.Group]++
		// A majority of the group holds a chunk once it is written, and
		// the primary copies it to the others meanwhile.
		for _, n := range c.groupNodes(ref.Group) {
			harness.Await(t, 5*time.Second, fmt.Sprintf("chunk %d, recorded in group %q, on %s", i, ref.Group, n.name),
				func() bool { return n.has(ref.Hash) })
		}
	}
	// Free space 3:1, so about 150 and 50: allow a wide margin.
	if per["g1"] < 120 || per["g2"] < 20 || per["g1"]+per["g2"] != 200 {
		t.Errorf("chunks per group %v, want about 150 in g1 and 50 in g2", per)
	}
	if w := do(s, "GET", "/v1/fs/f", nil); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Errorf("GET = %d, %d bytes, want the %d bytes written", w.Code, w.Body.Len(), len(data))
	}
	// Each group was asked to keep exactly its own chunks fresh before the commit.
	for g, primary := range map[string]*testNode{"g1": g1[0], "g2": g2[0]} {
		touches := received[*wire.TouchChunks](primary)
		if len(touches) != 1 || touches[0].Group != g || len(touches[0].Hashes) != per[g] {
			t.Errorf("group %s: %d touches, want one naming its %d chunks", g, len(touches), per[g])
		}
	}
}

func TestUploadRetriesWhenAGroupIsFull(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 3, 1<<20)
	g2 := c.group("g2", 3, 1<<40) // looks emptiest, but its disks are full
	g2[0].full.Store(true)
	s := c.router(nil)
	data := content(20 * 16)
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(data)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	in, _ := g1[0].file("/f")
	for i, ref := range in.Chunks {
		if ref.Group != "g1" {
			t.Errorf("chunk %d went to %q, want g1", i, ref.Group)
		}
	}
	// Once refused, g2 is not offered the rest of the upload's chunks:
	// only those already on their way when the refusal came.
	if n := len(received[*wire.WriteChunk](g2[0])); n < 1 || n > uploadDepth {
		t.Errorf("the full group got %d writes, want 1 to %d of the 20 chunks", n, uploadDepth)
	}
}

func TestUploadAllFull(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 3, 10) // room for less than one 16-byte chunk
	g2 := c.group("g2", 3, 1<<20)
	g2[0].full.Store(true) // gossip is behind: the group is full already
	s := c.router(nil)
	start := time.Now()
	w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(content(64)))
	took := time.Since(start)
	if w.Code != http.StatusInsufficientStorage {
		t.Fatalf("PUT = %d %s, want 507", w.Code, w.Body)
	}
	e := decodeError(t, w.Body.Bytes())
	if e.Code != "no_space" || !strings.Contains(e.Message, "every group is full") ||
		!strings.Contains(e.Message, "waited 300ms") || !strings.Contains(e.Message, "--capacity") {
		t.Errorf("error %+v", e)
	}
	if took < 300*time.Millisecond {
		t.Errorf("gave up after %v, want at least the SpaceWait of 300ms", took)
	}
	if _, ok := g1[0].file("/f"); ok {
		t.Error("a failed upload committed the file")
	}
}

func TestUploadWaitsForANewGroup(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 3, 10)
	s := c.router(func(cfg *Config) { cfg.SpaceWait = 10 * time.Second })
	before := c.calls()
	go func() {
		// The router re-reads the view while it waits: a few reads after
		// the start, it is waiting. Then standbys form g2.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := harness.WaitFor(ctx, "the router to re-read the view while it waits", func() bool { return c.calls() >= before+4 }); err != nil {
			t.Error(err)
			return
		}
		c.group("g2", 3, 1<<20)
	}()
	data := content(5 * 16)
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(data)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	in, _ := g1[0].file("/f")
	for i, ref := range in.Chunks {
		if ref.Group != "g2" {
			t.Errorf("chunk %d went to %q, want the new group g2", i, ref.Group)
		}
	}
}

func TestUploadChunksMissingAtCommit(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 3, 0)
	g1[0].missing.Store(true) // collected while the upload ran
	s := c.router(nil)
	w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(content(40)))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("PUT = %d %s, want 503", w.Code, w.Body)
	}
	e := decodeError(t, w.Body.Bytes())
	if !strings.Contains(e.Message, "upload the file again") || !strings.Contains(e.Message, wire.ErrChunksMissing.Error()) {
		t.Errorf("error %+v", e)
	}
	if len(received[*wire.Propose](g1[0])) != 0 {
		t.Error("the file was committed although its chunks are missing")
	}
}

func TestTouchMissingIsChunksMissing(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 1, 0)
	g1[0].missing.Store(true)
	s := c.router(nil)
	err := s.touchChunks(t.Context(), []meta.ChunkRef{{Hash: meta.HashOf([]byte("x")), Size: 1}})
	if !errors.Is(err, wire.ErrChunksMissing) {
		t.Errorf("touch = %v, want ErrChunksMissing", err)
	}
	if status, _ := statusOf(err); status != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", status)
	}
}

func TestEmptyFile(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 1, 0)
	s := c.router(nil)
	if w := do(s, "PUT", "/v1/fs/empty", bytes.NewReader(nil)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	if in, _ := g1[0].file("/empty"); in.Size != 0 || len(in.Chunks) != 0 {
		t.Errorf("inode %+v", in)
	}
	if w := do(s, "GET", "/v1/fs/empty", nil); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("GET = %d, %d bytes", w.Code, w.Body.Len())
	}
}

func TestNoMetaGroup(t *testing.T) {
	c := newTestCluster(t)
	c.group("other", 1, 0)
	s := c.router(func(cfg *Config) { cfg.RequestTimeout = 200 * time.Millisecond })
	w := do(s, "GET", "/v1/fs/f?op=stat", nil)
	e := decodeError(t, w.Body.Bytes())
	want := `no live member of meta group "g1": start a group with that name or pass --meta-group`
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(e.Message, want) {
		t.Errorf("stat = %d %+v, want 503 saying %q", w.Code, e, want)
	}
}
