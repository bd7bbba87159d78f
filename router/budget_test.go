package router

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"shoal/wire"
)

// stalledUploads runs uploads of files of chunks chunks at once through
// s while primary holds every chunk write: it lets one go only when limit
// of them wait, or when no other came for a while (the uploads wait for
// something else). It reports the most writes held at once. Every upload
// must succeed.
func stalledUploads(t *testing.T, s *Server, primary *testNode, uploads, chunks, limit int) int {
	t.Helper()
	w := &writeStall{release: make(chan struct{}), arrived: make(chan struct{}, 1)}
	primary.stall.Store(w)
	codes := make([]int, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{byte(i)}, chunks*16)
			for k := range data {
				data[k] ^= byte(k / 16) // every chunk of every file differs
			}
			codes[i] = do(s, "PUT", fmt.Sprintf("/v1/fs/f%d", i), bytes.NewReader(data)).Code
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	quiet := time.NewTimer(time.Hour)
	for finished := false; !finished; {
		if int(w.waiting.Load()) >= limit {
			// The count may still include writes let go just before that
			// have not left hold yet: if the uploads finish meanwhile,
			// no write is left to take this one.
			select {
			case w.release <- struct{}{}:
			case <-done:
				finished = true
			}
			continue
		}
		quiet.Reset(20 * time.Millisecond)
		select {
		case <-done:
			finished = true
		case <-w.arrived:
		case <-quiet.C:
			select {
			case w.release <- struct{}{}:
			default:
			}
		}
	}
	for i, code := range codes {
		if code != http.StatusCreated {
			t.Errorf("upload %d: %d, want 201", i, code)
		}
	}
	return int(w.most.Load())
}

// TestUploadMemoryBoundsChunksInFlight: however many uploads run at once,
// the chunks they hold (read and not yet stored) fit in UploadMemory; the
// uploads wait for room instead of failing.
func TestUploadMemoryBoundsChunksInFlight(t *testing.T) {
	c := newTestCluster(t)
	c.group(metaGroupName, 1, 10) // keeps the namespace, no room for chunks
	g2 := c.group("g2", 1, 1<<30)
	s := c.router(func(cfg *Config) {
		cfg.RPCTimeout = 10 * time.Second // nothing times out while held
		cfg.UploadMemory = 3 * cfg.chunkCost()
	})
	if most := stalledUploads(t, s, g2[0], 6, 5, 3); most > 3 {
		t.Errorf("%d chunk writes at once with room for 3 chunks in memory", most)
	}
}

// TestGroupSendsBoundChunksInFlight: one router sends a group at most
// groupSends chunk writes at once, however much memory it has for more.
func TestGroupSendsBoundChunksInFlight(t *testing.T) {
	c := newTestCluster(t)
	c.group(metaGroupName, 1, 10)
	g2 := c.group("g2", 1, 1<<30)
	s := c.router(func(cfg *Config) { cfg.RPCTimeout = 10 * time.Second })
	if most := stalledUploads(t, s, g2[0], 6, 5, groupSends); most > groupSends {
		t.Errorf("%d chunk writes at once to one group, want at most %d", most, groupSends)
	}
}

// TestUploadRetriesABusyGroup: a primary that answers busy (it has as
// many chunk writes in progress as it takes) is asked again after a
// moment, and the upload succeeds.
func TestUploadRetriesABusyGroup(t *testing.T) {
	c := newTestCluster(t)
	c.group(metaGroupName, 1, 10)
	g2 := c.group("g2", 1, 1<<30)
	g2[0].busy.Store(3)
	s := c.router(nil)
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(content(16))); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	if n := len(received[*wire.WriteChunk](g2[0])); n != 4 {
		t.Errorf("the group got %d chunk writes, want 3 answered busy and the one it took", n)
	}
}

// TestReadMemoryBoundsChunksFetched: however many reads run at once, the
// chunks they hold (fetched and not yet written) fit in ReadMemory, and
// every read completes with its bytes: a read waits only when it holds
// no chunk, so reads never wait on each other in a circle.
func TestReadMemoryBoundsChunksFetched(t *testing.T) {
	c := newTestCluster(t)
	mn := c.group(metaGroupName, 1, 0)[0]
	holder := c.addNode("holder", "g2", "primary", 10, 0)
	const reads, chunks = 6, 12
	files := make([][]byte, reads)
	for i := range files {
		files[i] = content(chunks * 16)
		for k := range files[i] {
			files[i][k] ^= byte(i)
		}
		putFileOn(t, mn, fmt.Sprintf("/f%d", i), files[i], "g2", []*testNode{holder})
	}
	holder.getDelay.Store(int64(2 * time.Millisecond))
	s := c.router(func(cfg *Config) { cfg.ReadMemory = 2 * cfg.readCost() })
	var wg sync.WaitGroup
	for i := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := do(s, "GET", fmt.Sprintf("/v1/fs/f%d", i), nil)
			if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), files[i]) {
				t.Errorf("GET f%d = %d, %d bytes; want 200 and its %d bytes", i, w.Code, w.Body.Len(), len(files[i]))
			}
		}()
	}
	wg.Wait()
	if most := holder.mostGets.Load(); most > 2 || most < 1 {
		t.Errorf("%d chunks fetched at once by %d reads with room for 2 chunks in memory", most, reads)
	}
	if len(s.readSlots) != 0 {
		t.Errorf("%d read slots still held after every read ended", len(s.readSlots))
	}
}
