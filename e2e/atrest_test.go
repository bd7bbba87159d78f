package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/harness"
)

// TestContentSealedAtRest writes known content, chunked and inline, and
// reads every file of every storage node's data directory (chunk files,
// meta.db with its log and namespace, snapshots): none holds the content
// in clear, and none holds the data key. The same scan of an insecure
// cluster finds the content, so the scan itself works.
func TestContentSealedAtRest(t *testing.T) {
	marker := []byte("THE-SECRET-MARKER-")
	content := bytes.Repeat(marker, (3*testChunk)/len(marker)+1)
	small := append([]byte("small:"), marker...)
	for _, insecure := range []bool{false, true} {
		t.Run(fmt.Sprintf("insecure=%v", insecure), func(t *testing.T) {
			c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}, Insecure: insecure,
				RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk), "--inline-max", "1024"}})
			cl := c.client()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := cl.Put(ctx, "/big", bytes.NewReader(content), int64(len(content))); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Put(ctx, "/small", bytes.NewReader(small), int64(len(small))); err != nil {
				t.Fatal(err)
			}
			for p, data := range map[string][]byte{"/big": content, "/small": small} {
				if got, err := cl.ReadFile(ctx, p); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s reads back %d bytes: %v", p, len(got), err)
				}
			}
			want := c.fileChunks("/big")
			harness.Await(t, 20*time.Second, "every member to hold the file's chunks", func() bool {
				for _, p := range c.Nodes {
					have := c.chunkFiles(p)
					for _, h := range want {
						if !have[h] {
							return false
						}
					}
				}
				return true
			})
			var key []byte
			if !insecure {
				var err error
				if key, err = os.ReadFile(filepath.Join(c.Secrets, "data.key")); err != nil {
					t.Fatal(err)
				}
				key = bytes.TrimSpace(key)
			}
			var found []string
			scanned := 0
			for _, p := range c.Nodes {
				filepath.WalkDir(c.DataDir(p), func(path string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return nil
					}
					b, err := os.ReadFile(path)
					if err != nil {
						return nil
					}
					scanned++
					if bytes.Contains(b, marker) {
						found = append(found, path)
					}
					if key != nil && bytes.Contains(b, key) {
						t.Errorf("%s holds the data key", path)
					}
					return nil
				})
			}
			if scanned < 3*(len(want)+1) {
				t.Fatalf("scanned only %d files", scanned)
			}
			switch {
			case !insecure && len(found) > 0:
				t.Fatalf("content in clear on disk:\n%s", strings.Join(found, "\n"))
			case insecure && len(found) < 3:
				t.Fatalf("the scan found the content in clear in %d files of an insecure cluster; it cannot be trusted", len(found))
			}
			t.Logf("scanned %d files on %d nodes: content in clear in %d", scanned, len(c.Nodes), len(found))
		})
	}
}
