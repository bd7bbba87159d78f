package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"shoal/client"
)

// The library's io/fs view of a real cluster passes the standard
// library's own conformance test, and serves http.FileServer.
func TestLibraryFS(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), 150_000) // 2.4 MB: three blocks
	files := map[string][]byte{
		"site/index.html":         []byte("<h1>hello</h1>\n"),
		"site/empty":              nil,
		"site/css/main.css":       []byte("body{}\n"),
		"site/data/big.bin":       big,
		"site/data/deep/a/b/c.md": []byte("deep\n"),
	}
	for name, data := range files {
		if _, err := cl.Put(ctx, "/"+name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Mkdir(ctx, "/site/nothing", true); err != nil {
		t.Fatal(err)
	}
	fsys := cl.FS(ctx, "/site")
	var want []string
	for name := range files {
		want = append(want, strings.TrimPrefix(name, "site/"))
	}
	if err := fstest.TestFS(fsys, want...); err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(fsys, "data/big.bin")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("ReadFile of a file of several blocks: %d bytes, %v", len(got), err)
	}
	var walked []string
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		walked = append(walked, p)
		return err
	})
	if len(walked) != 12 {
		t.Errorf("WalkDir saw %d names: %q", len(walked), walked)
	}
	if _, err := fsys.Open("../etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open of an escaping name: %v, want fs.ErrInvalid", err)
	}
	if _, err := fsys.Open("missing"); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Open of a missing name: %v, want fs.ErrNotExist and client.ErrNotFound", err)
	}

	srv := httptest.NewServer(http.FileServer(http.FS(fsys)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/css/main.css")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "body{}\n" {
		t.Fatalf("http.FileServer over the cluster: %d %q", resp.StatusCode, body)
	}
}

// The File API behaves as *os.File on the same random sequences of
// operations, closes and reopens included.
func TestLibraryFileAgainstOS(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	ctx := context.Background()
	dir := t.TempDir()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 7))
			name := fmt.Sprintf("/diff/f%d", seed)
			local := filepath.Join(dir, fmt.Sprint(seed))
			if err := cl.Mkdir(ctx, "/diff", true); err != nil {
				t.Fatal(err)
			}
			flag := os.O_RDWR | os.O_CREATE | os.O_TRUNC
			lf, err := os.OpenFile(local, flag, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			rf, err := cl.OpenFile(ctx, name, flag, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			payload := func() []byte {
				n := rnd.IntN(5000)
				if rnd.IntN(20) == 0 {
					n = 1<<20 + rnd.IntN(1<<20) // across blocks
				}
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(rnd.Uint32())
				}
				return b
			}
			same := func(step int, what string, n1, n2 int, e1, e2 error, b1, b2 []byte) {
				t.Helper()
				if n1 != n2 || (e1 == nil) != (e2 == nil) || (e1 == io.EOF) != (e2 == io.EOF) || !bytes.Equal(b1, b2) {
					t.Fatalf("step %d %s: os %d %v, cluster %d %v (bytes equal: %v)", step, what, n1, e1, n2, e2, bytes.Equal(b1, b2))
				}
			}
			for step := range 300 {
				switch op := rnd.IntN(10); op {
				case 0, 1:
					p := payload()
					n1, e1 := lf.Write(p)
					n2, e2 := rf.Write(p)
					same(step, "write", n1, n2, e1, e2, nil, nil)
				case 2:
					p, off := payload(), rnd.Int64N(3<<20)
					n1, e1 := lf.WriteAt(p, off)
					n2, e2 := rf.WriteAt(p, off)
					same(step, fmt.Sprintf("writeat %d+%d", off, len(p)), n1, n2, e1, e2, nil, nil)
				case 3, 4:
					b1, b2 := make([]byte, rnd.IntN(1<<21)), []byte(nil)
					b2 = make([]byte, len(b1))
					n1, e1 := lf.Read(b1)
					n2, e2 := rf.Read(b2)
					same(step, "read", n1, n2, e1, e2, b1[:n1], b2[:n2])
				case 5:
					off := rnd.Int64N(3 << 20)
					b1, b2 := make([]byte, rnd.IntN(100_000)), []byte(nil)
					b2 = make([]byte, len(b1))
					n1, e1 := lf.ReadAt(b1, off)
					n2, e2 := rf.ReadAt(b2, off)
					same(step, fmt.Sprintf("readat %d+%d", off, len(b1)), n1, n2, e1, e2, b1[:n1], b2[:n2])
				case 6:
					off, whence := rnd.Int64N(1<<20)-1<<19, rnd.IntN(3)
					o1, e1 := lf.Seek(off, whence)
					o2, e2 := rf.Seek(off, whence)
					same(step, fmt.Sprintf("seek %d %d", off, whence), int(o1), int(o2), e1, e2, nil, nil)
				case 7:
					size := rnd.Int64N(3 << 20)
					e1 := lf.Truncate(size)
					e2 := rf.Truncate(size)
					same(step, fmt.Sprintf("truncate %d", size), 0, 0, e1, e2, nil, nil)
				case 8:
					e1, e2 := lf.Sync(), rf.Sync()
					same(step, "sync", 0, 0, e1, e2, nil, nil)
				case 9:
					// Close and reopen, sometimes for appending: the
					// cluster's copy must hold every write.
					e1, e2 := lf.Close(), rf.Close()
					same(step, "close", 0, 0, e1, e2, nil, nil)
					flag := os.O_RDWR
					if rnd.IntN(3) == 0 {
						flag |= os.O_APPEND
					}
					if lf, err = os.OpenFile(local, flag, 0); err != nil {
						t.Fatal(err)
					}
					if rf, err = cl.OpenFile(ctx, name, flag, 0); err != nil {
						t.Fatal(err)
					}
				}
			}
			lf.Close()
			if err := rf.Close(); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(local)
			got, err := cl.ReadFile(ctx, name)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("after the sequence the cluster holds %d bytes (%v), the local file %d", len(got), err, len(want))
			}
		})
	}
	// O_EXCL and a file opened for reading only.
	if _, err := cl.OpenFile(ctx, "/diff/f0", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("O_EXCL on an existing file: %v, want fs.ErrExist", err)
	}
	f, err := cl.Open(ctx, "/diff/f0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Write on a file open for reading: %v, want fs.ErrPermission", err)
	}
	f.Close()
	if _, err := f.Read(make([]byte, 1)); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Read after Close: %v, want fs.ErrClosed", err)
	}
}

// The client's cache serves an unchanged file without its content
// crossing the network again, and never serves a stale byte: a change by
// another client is seen on the next open, even one that keeps the size
// and lands within the same second; a File open meanwhile reports the
// change rather than splice two versions.
func TestLibraryCacheNeverStale(t *testing.T) {
	c := newCluster(t, 3)
	reader, writer := c.client(), c.client()
	ctx := context.Background()
	put := func(data []byte) {
		t.Helper()
		if _, err := writer.Put(ctx, "/cached", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	read := func() []byte {
		t.Helper()
		f, err := reader.Open(ctx, "/cached")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v1 := bytes.Repeat([]byte("a"), 3<<20)
	put(v1)
	if !bytes.Equal(read(), v1) {
		t.Fatal("first read")
	}
	before := reader.CacheStats()
	if !bytes.Equal(read(), v1) {
		t.Fatal("second read")
	}
	after := reader.CacheStats()
	if after.Hits-before.Hits < 2 || after.Misses != before.Misses {
		t.Fatalf("the second read of an unchanged file: cache %+v, then %+v; want hits and no misses", before, after)
	}
	for i := range 20 {
		v := bytes.Repeat([]byte{byte('b' + i%20)}, 3<<20) // same size, same second
		put(v)
		if got := read(); !bytes.Equal(got, v) {
			t.Fatalf("change %d: the reader saw a stale version (%q...)", i, got[:4])
		}
	}
	// A version not in the cache: its open reads the first block, and
	// the second is gone by the time it is read.
	f, err := reader.Open(ctx, "/cached")
	if err != nil {
		t.Fatal(err)
	}
	put(bytes.Repeat([]byte("y"), 3<<20))
	f.Close()
	if f, err = reader.Open(ctx, "/cached"); err != nil {
		t.Fatal(err)
	}
	put(bytes.Repeat([]byte("z"), 3<<20))
	buf := make([]byte, 3<<20)
	if _, err := io.ReadFull(f, buf); !errors.Is(err, client.ErrChanged) {
		t.Fatalf("reading a file replaced after its open: %v, want ErrChanged", err)
	}
}
