package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"shoal/client"
)

// routerEnv names a router to check the in-memory cluster against, as
// http(s)://host:port (credentials as for the CLI: $SHOAL_TOKEN, $SHOAL_CA
// or the credentials file). The check makes and removes one file in the
// root directory.
const routerEnv = "SHOAL_MOUNT_CHECK_ROUTER"

// TestMemClusterActsLikeARouter checks what the tests of this package
// take the cluster to do, for each call an open file makes: against the
// in-memory cluster always, and against a real router too when routerEnv
// names one (such as `shoal dev --insecure`).
func TestMemClusterActsLikeARouter(t *testing.T) {
	t.Run("in memory", func(t *testing.T) {
		c := newMemCluster(8, 64)
		c.ranges = 4
		checkFileCalls(t, c, fmt.Sprint("contract-", time.Now().UnixNano()))
	})
	url := os.Getenv(routerEnv)
	if url == "" {
		t.Logf("set %s to a router's URL to check a real cluster as well", routerEnv)
		return
	}
	t.Run("router", func(t *testing.T) {
		creds, _, err := client.ResolveCredentials(client.Credentials{Router: url}, os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := creds.Config()
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkFileCalls(t, c, fmt.Sprint("mount-contract-", time.Now().UnixNano()))
	})
}

// checkFileCalls checks, on a new file name in the root directory, what
// an open file relies on of c.
func checkFileCalls(t *testing.T, c Client, name string) {
	st, err := c.Statfs(t.Context())
	if err != nil || st.ChunkSize <= 0 || st.MaxWrite < st.ChunkSize {
		t.Fatalf("statfs: %+v %v: want a chunk size, and a write limit of at least a chunk", st, err)
	}
	k := &fileCheck{t: t, c: c, name: name}
	k.create()
	k.writesAndReads()
	k.truncates()
	if st.MaxRanges > 0 {
		k.patches()
	} else {
		t.Logf("the router takes no PATCH with ranges (statfs max_ranges is 0): not checked")
	}
	k.orphan()
}

// fileCheck is the file checkFileCalls checks.
type fileCheck struct {
	t    *testing.T
	c    Client
	name string
	ino  uint64
	last client.Attr // after the last change
}

func (k *fileCheck) create() {
	t, c, ctx := k.t, k.c, k.t.Context()
	a, created, err := c.CreateIn(ctx, rootIno, k.name, 0o644, 0, 0, true)
	if err != nil || !created || a.Type != client.TypeFile || a.Size != 0 || a.Nlink != 1 {
		t.Fatalf("create: %+v created %v, %v", a, created, err)
	}
	k.ino = a.Ino
	t.Cleanup(func() { c.UnlinkIn(context.Background(), rootIno, k.name, false) })
	if again, created, err := c.CreateIn(ctx, rootIno, k.name, 0o644, 0, 0, false); err != nil || created || again.Ino != k.ino {
		t.Errorf("create again without excl: %+v created %v, %v: want the file there", again, created, err)
	}
	if _, _, err := c.CreateIn(ctx, rootIno, k.name, 0o644, 0, 0, true); !errors.Is(err, client.ErrExists) {
		t.Errorf("create again with excl: %v, want ErrExists", err)
	}
	if got, err := c.LookupIn(ctx, rootIno, k.name); err != nil || got.Ino != k.ino {
		t.Errorf("lookup: %+v %v", got, err)
	}
	k.last = k.stat("a new file", "")
}

// stat checks that the file holds want, through StatIno and ReadIno, and
// returns its attributes.
func (k *fileCheck) stat(what, want string) client.Attr {
	k.t.Helper()
	a, err := k.c.StatIno(k.t.Context(), k.ino)
	if err != nil || a.Size != int64(len(want)) {
		k.t.Fatalf("%s: stat %+v %v: want size %d", what, a, err, len(want))
	}
	if got := readIno(k.t, k.c, k.ino, 0, int64(len(want))+10); got != want {
		k.t.Fatalf("%s: reads %q, want %q", what, got, want)
	}
	return a
}

// changed checks that a write or truncate that answered got and err left
// want, and answered the attributes it left, with a newer generation.
func (k *fileCheck) changed(what string, got client.Attr, err error, want string) {
	k.t.Helper()
	if err != nil {
		k.t.Fatalf("%s: %v", what, err)
	}
	now := k.stat(what, want)
	if got.Size != now.Size || got.Gen != now.Gen || got.Gen <= k.last.Gen {
		k.t.Fatalf("%s answered size %d gen %d; the file has size %d gen %d, and had gen %d",
			what, got.Size, got.Gen, now.Size, now.Gen, k.last.Gen)
	}
	k.last = now
}

func (k *fileCheck) writesAndReads() {
	t, c, ctx := k.t, k.c, k.t.Context()
	got, err := c.WriteAt(ctx, k.ino, 3, []byte("abc"))
	k.changed("a write past the end", got, err, "\x00\x00\x00abc")
	got, err = c.WriteAt(ctx, k.ino, 1, []byte("XYZ"))
	k.changed("a write over the middle", got, err, "\x00XYZbc")
	for _, r := range []struct {
		off, n int64
		want   string
	}{
		{2, 3, "YZb"},  // inside
		{4, 100, "bc"}, // over the end: the bytes up to it
		{6, 10, ""},    // at the end: none
		{100, 10, ""},  // past the end: none
	} {
		if s := readIno(t, c, k.ino, r.off, r.n); s != r.want {
			t.Errorf("%d bytes at %d: %q, want %q", r.n, r.off, s, r.want)
		}
	}
}

func (k *fileCheck) truncates() {
	c, ctx := k.c, k.t.Context()
	size := func(n int64) client.SetAttr { return client.SetAttr{Size: &n} }
	got, err := c.SetAttrIno(ctx, k.ino, size(2))
	k.changed("a truncate down", got, err, "\x00X")
	got, err = c.SetAttrIno(ctx, k.ino, size(4))
	k.changed("a truncate up", got, err, "\x00X\x00\x00")
	got, err = c.SetAttrIno(ctx, k.ino, size(4))
	k.changed("a truncate to the same size", got, err, "\x00X\x00\x00")
	mode := uint32(0o600)
	got, err = c.SetAttrIno(ctx, k.ino, client.SetAttr{Mode: &mode})
	if err != nil || got.Mode&0o7777 != mode || got.Gen != k.last.Gen {
		k.t.Fatalf("chmod: %+v %v: want the mode changed and the content's generation not", got, err)
	}
	// An explicit mtime stays until the next write, which sets its own:
	// the mount sends a file's attribute changes after the writes before
	// them.
	mtime := time.Unix(1_000_000_000, 0)
	if got, err = c.SetAttrIno(ctx, k.ino, client.SetAttr{MTime: &mtime}); err != nil || !got.MTime.Equal(mtime) {
		k.t.Fatalf("set mtime: %+v %v: want mtime %v", got, err, mtime)
	}
	got, err = c.WriteAt(ctx, k.ino, 0, []byte("\x00"))
	k.changed("a write after an explicit mtime", got, err, "\x00X\x00\x00")
	if !got.MTime.After(mtime) {
		k.t.Fatalf("a write after an explicit mtime left mtime %v", got.MTime)
	}
}

// patches checks that PatchIno applies a truncate, writes and a size in
// that order, as one change of the content's generation.
func (k *fileCheck) patches() {
	c, ctx := k.c, k.t.Context()
	n := func(v int64) *int64 { return &v }
	before := k.last.Gen
	got, err := c.PatchIno(ctx, k.ino, client.Patch{Truncate: n(1), Writes: []client.Extent{{Off: 3, Data: []byte("ab")}, {Off: 0, Data: []byte("Q")}}, Size: n(6)})
	k.changed("a patch of a truncate, two writes and a size", got, err, "Q\x00\x00ab\x00")
	got, err = c.PatchIno(ctx, k.ino, client.Patch{Truncate: n(0), Writes: []client.Extent{{Off: 0, Data: []byte("\x00X\x00\x00")}}})
	k.changed("a patch of a truncate and a write", got, err, "\x00X\x00\x00")
	mode := uint32(0o640)
	got, err = c.PatchIno(ctx, k.ino, client.Patch{Size: n(4), Attrs: client.SetAttr{Mode: &mode}})
	k.changed("a patch of a size and a mode", got, err, "\x00X\x00\x00")
	if got.Mode&0o7777 != mode {
		k.t.Fatalf("a patch with a mode left mode %o, want %o", got.Mode&0o7777, mode)
	}
	if k.last.Gen != before+3 {
		k.t.Fatalf("three patches moved the generation from %d to %d: each is one change", before, k.last.Gen)
	}
}

// orphan checks that a file unlinked while open is read and written
// until it is released.
func (k *fileCheck) orphan() {
	t, c, ctx := k.t, k.c, k.t.Context()
	if err := c.UnlinkIn(ctx, rootIno, k.name, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupIn(ctx, rootIno, k.name); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("lookup of an unlinked name: %v", err)
	}
	got, err := c.WriteAt(ctx, k.ino, 0, []byte("o"))
	k.changed("a write to an orphan", got, err, "oX\x00\x00")
	if k.last.Nlink != 0 {
		t.Errorf("an orphan has %d links", k.last.Nlink)
	}
	if err := c.ReleaseIno(ctx, k.ino); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StatIno(ctx, k.ino); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("stat of a released orphan: %v, want ErrNotFound", err)
	}
	if _, err := c.WriteAt(ctx, k.ino, 0, []byte("x")); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("write to a released orphan: %v, want ErrNotFound", err)
	}
}

// readIno returns what ReadIno reads of ino.
func readIno(t *testing.T, c Client, ino uint64, off, n int64) string {
	t.Helper()
	body, err := c.ReadIno(context.Background(), ino, off, n)
	if err != nil {
		t.Fatalf("read %d+%d: %v", off, n, err)
	}
	defer body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, body); err != nil {
		t.Fatalf("read %d+%d: %v", off, n, err)
	}
	return b.String()
}
