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
		checkFileCalls(t, newMemCluster(8, 64), fmt.Sprint("contract-", time.Now().UnixNano()))
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
	ctx := context.Background()
	st, err := c.Statfs(ctx)
	if err != nil || st.ChunkSize <= 0 || st.MaxWrite < st.ChunkSize {
		t.Fatalf("statfs: %+v %v: want a chunk size, and a write limit of at least a chunk", st, err)
	}
	a, created, err := c.CreateIn(ctx, rootIno, name, 0o644, 0, 0, true)
	if err != nil || !created || a.Type != client.TypeFile || a.Size != 0 || a.Nlink != 1 {
		t.Fatalf("create: %+v created %v, %v", a, created, err)
	}
	ino := a.Ino
	t.Cleanup(func() { c.UnlinkIn(ctx, rootIno, name, false) })
	if again, created, err := c.CreateIn(ctx, rootIno, name, 0o644, 0, 0, false); err != nil || created || again.Ino != ino {
		t.Errorf("create again without excl: %+v created %v, %v: want the file there", again, created, err)
	}
	if _, _, err := c.CreateIn(ctx, rootIno, name, 0o644, 0, 0, true); !errors.Is(err, client.ErrExists) {
		t.Errorf("create again with excl: %v, want ErrExists", err)
	}
	if got, err := c.LookupIn(ctx, rootIno, name); err != nil || got.Ino != ino {
		t.Errorf("lookup: %+v %v", got, err)
	}

	// stat checks that ino holds want, through StatIno and ReadIno, and
	// returns its attributes.
	stat := func(what, want string) client.Attr {
		t.Helper()
		a, err := c.StatIno(ctx, ino)
		if err != nil || a.Size != int64(len(want)) {
			t.Fatalf("%s: stat %+v %v: want size %d", what, a, err, len(want))
		}
		if got := readIno(t, c, ino, 0, int64(len(want))+10); got != want {
			t.Fatalf("%s: reads %q, want %q", what, got, want)
		}
		return a
	}
	// changed checks that a write or truncate returned the attributes it
	// left, with a newer generation than before.
	changed := func(what string, before, got client.Attr, want string) client.Attr {
		t.Helper()
		now := stat(what, want)
		if got.Size != now.Size || got.Gen != now.Gen || got.Gen <= before.Gen {
			t.Fatalf("%s answered size %d gen %d; the file has size %d gen %d, and had gen %d",
				what, got.Size, got.Gen, now.Size, now.Gen, before.Gen)
		}
		return now
	}

	before := stat("a new file", "")
	got, err := c.WriteAt(ctx, ino, 3, []byte("abc"))
	if err != nil {
		t.Fatal(err)
	}
	before = changed("a write past the end", before, got, "\x00\x00\x00abc")
	got, err = c.WriteAt(ctx, ino, 1, []byte("XYZ"))
	if err != nil {
		t.Fatal(err)
	}
	before = changed("a write over the middle", before, got, "\x00XYZbc")
	if s := readIno(t, c, ino, 2, 3); s != "YZb" {
		t.Errorf("a range inside: %q", s)
	}
	if s := readIno(t, c, ino, 4, 100); s != "bc" {
		t.Errorf("a range over the end: %q, want the bytes up to it", s)
	}
	if s := readIno(t, c, ino, 6, 10); s != "" {
		t.Errorf("a range at the end: %q, want none", s)
	}
	if s := readIno(t, c, ino, 100, 10); s != "" {
		t.Errorf("a range past the end: %q, want none", s)
	}

	size := func(n int64) client.SetAttr { return client.SetAttr{Size: &n} }
	got, err = c.SetAttrIno(ctx, ino, size(2))
	if err != nil {
		t.Fatal(err)
	}
	before = changed("a truncate down", before, got, "\x00X")
	got, err = c.SetAttrIno(ctx, ino, size(4))
	if err != nil {
		t.Fatal(err)
	}
	before = changed("a truncate up", before, got, "\x00X\x00\x00")
	got, err = c.SetAttrIno(ctx, ino, size(4))
	if err != nil {
		t.Fatal(err)
	}
	before = changed("a truncate to the same size", before, got, "\x00X\x00\x00")
	mode := uint32(0o600)
	got, err = c.SetAttrIno(ctx, ino, client.SetAttr{Mode: &mode})
	if err != nil || got.Mode&0o7777 != mode || got.Gen != before.Gen {
		t.Fatalf("chmod: %+v %v: want the mode changed and the content's generation not", got, err)
	}

	// An orphan is read and written until it is released.
	if err := c.UnlinkIn(ctx, rootIno, name, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupIn(ctx, rootIno, name); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("lookup of an unlinked name: %v", err)
	}
	got, err = c.WriteAt(ctx, ino, 0, []byte("o"))
	if err != nil {
		t.Fatal(err)
	}
	if a := changed("a write to an orphan", before, got, "oX\x00\x00"); a.Nlink != 0 {
		t.Errorf("an orphan has %d links", a.Nlink)
	}
	if err := c.ReleaseIno(ctx, ino); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StatIno(ctx, ino); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("stat of a released orphan: %v, want ErrNotFound", err)
	}
	if _, err := c.WriteAt(ctx, ino, 0, []byte("x")); !errors.Is(err, client.ErrNotFound) {
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
