package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"testing"
	"time"

	"shoal/client"
)

type duRow struct {
	Path               string
	Bytes, Files, Dirs int64
}

// walkUsage adds up what every directory under root holds by listing the
// whole tree, the way du without kept totals would.
func walkUsage(t *testing.T, cl *client.Client, root string) map[string]duRow {
	t.Helper()
	out := map[string]duRow{}
	var walk func(dir string) duRow
	walk = func(dir string) duRow {
		entries, err := cl.List(t.Context(), dir)
		if err != nil {
			t.Fatalf("list %s: %v", dir, err)
		}
		total := duRow{Path: dir}
		for _, e := range entries {
			if e.Type != client.TypeDir {
				total.Bytes += e.Size
				total.Files++
				continue
			}
			u := walk(path.Join(dir, e.Name))
			total.Bytes += u.Bytes
			total.Files += u.Files
			total.Dirs += u.Dirs + 1
		}
		out[dir] = total
		return total
	}
	walk(root)
	return out
}

// TestDuAgainstAWalk changes a tree at random (files written whole and in
// place, truncated, hard-linked, symlinked, moved, copied, removed, with
// whole subtrees at a time) and checks after each round that du, which
// reads the totals the cluster keeps, says for every directory what a
// walk of the tree adds up to. A user who may not read a directory gets
// no totals for it.
func TestDuAgainstAWalk(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	ctx := t.Context()
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d", seed)
	var files, dirs []string
	dirs = append(dirs, "/t")
	if err := cl.Mkdir(ctx, "/t", true); err != nil {
		t.Fatal(err)
	}
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	exists := func(p string) bool { ok, _ := cl.Exists(ctx, p); return ok }
	for round := range 6 {
		for i := range 25 {
			name := fmt.Sprintf("n%d-%d", round, i)
			var err error
			switch op := r.IntN(10); {
			case op < 3: // a new file (sometimes several chunks)
				p := path.Join(pick(dirs), name)
				data := make([]byte, r.IntN(3)*r.IntN(3<<20)+r.IntN(5000))
				_, err = cl.Put(ctx, p, bytes.NewReader(data), int64(len(data)))
				files = append(files, p)
			case op == 3:
				p := path.Join(pick(dirs), name)
				err = cl.Mkdir(ctx, p, false)
				dirs = append(dirs, p)
			case op == 4 && len(files) > 0: // written in place, past its end
				if f := pick(files); exists(f) {
					_, err = cl.WriteAtPath(ctx, f, int64(r.IntN(100000)), []byte("patched"), "")
				}
			case op == 5 && len(files) > 0: // truncated
				if f := pick(files); exists(f) {
					size := int64(r.IntN(20000))
					_, err = cl.SetAttrPath(ctx, f, client.SetAttr{Size: &size})
				}
			case op == 6 && len(files) > 0: // another name, or a symlink
				if f := pick(files); exists(f) {
					st, serr := cl.Stat(ctx, f)
					d, derr := cl.Stat(ctx, pick(dirs))
					if serr == nil && derr == nil && d.Type == client.TypeDir {
						_, err = cl.LinkIn(ctx, st.Ino, d.Ino, name)
					}
					if err == nil {
						_, err = cl.Symlink(ctx, path.Join(pick(dirs), name+"-l"), f)
					}
				}
			case op == 7 && len(dirs) > 1: // a subtree moved
				from, to := pick(dirs[1:]), pick(dirs)
				if !strings.HasPrefix(to+"/", from+"/") && exists(from) && exists(to) {
					err = cl.Rename(ctx, from, path.Join(to, name))
					dirs = append(dirs, path.Join(to, name))
				}
			case op == 8 && len(dirs) > 1: // a subtree copied
				from, to := pick(dirs[1:]), pick(dirs)
				if !strings.HasPrefix(to+"/", from+"/") && exists(from) && exists(to) {
					err = cl.Copy(ctx, from, path.Join(to, name))
					dirs = append(dirs, path.Join(to, name))
				}
			case op == 9 && len(dirs) > 2 && i%3 == 0: // a subtree removed, now and then
				if d := pick(dirs[1:]); exists(d) {
					err = cl.Delete(ctx, d, true)
				}
			}
			// A path picked may have gone with a subtree removed or moved.
			if err != nil && !errors.Is(err, client.ErrNotFound) && !errors.Is(err, client.ErrNotDir) {
				t.Fatalf("seed %d round %d step %d: %v", seed, round, i, err)
			}
		}
		want := walkUsage(t, cl, "/t")
		out, errOut, code := c.run("du", "--json", "-d", "1000", "/t")
		var rows []duRow
		if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
			t.Fatalf("du: %d %s %s", code, out, errOut)
		}
		if len(rows) != len(want) {
			t.Fatalf("seed %d round %d: du shows %d directories, the walk finds %d", seed, round, len(rows), len(want))
		}
		for _, got := range rows {
			if w := want[got.Path]; got != w {
				t.Fatalf("seed %d round %d: du %+v, the walk says %+v", seed, round, got, w)
			}
		}
		t.Logf("round %d: /t holds %+v", round, want["/t"])
	}

	// Totals are for those who may read the directory.
	bob := c.addUser("bob")
	if code, _, body := c.do("POST", "/v1/fs/t?op=setattr&mode=0711", nil); code != 200 {
		t.Fatalf("chmod 0711 /t: %d %s", code, body)
	}
	if _, errOut, code := c.runAs(bob, "du", "-s", "/t"); code == 0 || !strings.Contains(errOut, "may not read") {
		t.Fatalf("du of a directory bob may not read: exit %d, %q", code, errOut)
	}
	if out, errOut, code := c.runAs(bob, "du", "-s", "/home/bob"); code != 0 || !strings.HasPrefix(out, "0 ") {
		t.Fatalf("du of bob's own home: exit %d, %q %q", code, out, errOut)
	}
}
