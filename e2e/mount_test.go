package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shoal/client"
	"shoal/harness"
	"shoal/mount"
)

// mountChunk is the router's chunk size in the mount tests: small, so a
// file of a few hundred KiB spans many chunks.
const mountChunk = 64 << 10

// mountCluster starts a group of three with small chunks and mounts it.
func mountCluster(t *testing.T, mountFlags ...string) (*cluster, string) {
	t.Helper()
	needFUSE(t)
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(mountChunk), "--inline-max", "1024"},
	})
	return c, c.mount(mountFlags...)
}

// TestMountShellSession is the session of the document Shoal comes from,
// run by a shell in the mount.
func TestMountShellSession(t *testing.T) {
	_, mnt := mountCluster(t)
	out, code := sh(t, mnt, 0, `set -e
echo hello > f
echo world >> f
cat f
cp f g
mkdir -p d/sub
echo deep > d/sub/x
mv d moved
cat moved/sub/x
ln -s f link
readlink link
cat link
ln f hard
stat -c '%n %h %s' f hard g moved moved/sub
cp -r moved copy
ls copy/sub
rm -r moved copy
ls
`)
	want := `hello
world
deep
f
hello
world
f 2 12
hard 2 12
g 1 12
moved 3 0
moved/sub 2 0
x
f
g
hard
link
`
	if code != 0 || out != want {
		t.Fatalf("shell session exited %d with\n%s\nwant\n%s", code, out, want)
	}
}

// TestMountPOSIX checks each operation through the mount with system
// calls, as a program would, and reads the results back both through the
// mount and through the HTTP API.
func TestMountPOSIX(t *testing.T) {
	c, mnt := mountCluster(t)
	cl := c.client()
	ctx := context.Background()
	at := func(p string) string { return filepath.Join(mnt, p) }

	t.Run("open flags", func(t *testing.T) {
		if err := os.WriteFile(at("of"), []byte("0123456789"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := os.OpenFile(at("of"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		wantErrno(t, "O_EXCL on an existing file", err, syscall.EEXIST)
		f, err := os.OpenFile(at("of"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("ab")
		f.Close()
		if b, _ := os.ReadFile(at("of")); string(b) != "0123456789ab" {
			t.Errorf("after O_APPEND: %q", b)
		}
		f, err = os.OpenFile(at("of"), os.O_TRUNC|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("new")
		f.Close()
		if b, _ := os.ReadFile(at("of")); string(b) != "new" {
			t.Errorf("after O_TRUNC: %q", b)
		}
		_, err = os.OpenFile(at("nope/x"), os.O_CREATE|os.O_WRONLY, 0o644)
		wantErrno(t, "create in a missing directory", err, syscall.ENOENT)
		_, err = os.Stat(at(strings.Repeat("n", 256)))
		wantErrno(t, "a 256-byte name", err, syscall.ENAMETOOLONG)
	})

	t.Run("offsets, sparse files and truncate", func(t *testing.T) {
		f, err := os.OpenFile(at("sparse"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		off := int64(3*mountChunk + 100)
		if _, err := f.WriteAt([]byte("tail"), off); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("head"), 10); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, off+4)
		copy(want[10:], "head")
		copy(want[off:], "tail")
		if got, _ := os.ReadFile(at("sparse")); !bytes.Equal(got, want) {
			t.Fatalf("sparse file: %d bytes, want %d with zeros between the writes", len(got), len(want))
		}
		if err := os.Truncate(at("sparse"), 12); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(at("sparse")); string(got) != "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00he" {
			t.Errorf("after truncate down: %q", got)
		}
		if err := os.Truncate(at("sparse"), 2*mountChunk); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(at("sparse"))
		if len(got) != 2*mountChunk || string(got[10:12]) != "he" || !bytes.Equal(got[12:], make([]byte, 2*mountChunk-12)) {
			t.Errorf("after truncate up: %d bytes, not zeros past the old end", len(got))
		}
		// ftruncate on an open file with unsent writes keeps the order.
		f, _ = os.OpenFile(at("sparse"), os.O_RDWR, 0)
		f.WriteAt([]byte("XYZ"), 5)
		f.Truncate(7)
		f.WriteAt([]byte("!"), 9)
		f.Close()
		if got, _ := os.ReadFile(at("sparse")); string(got) != "\x00\x00\x00\x00\x00XY\x00\x00!" {
			t.Errorf("write, ftruncate, write: %q", got)
		}
	})

	t.Run("a 900 GiB sparse file", func(t *testing.T) {
		// The zeros are a hole: nothing stored, one reference, so the
		// truncate is one small commit (it used to be 230,400 chunk
		// references in one entry, and took the meta group down).
		const size, mid = 900 << 30, 400 << 30
		out, code := sh(t, mnt, 0, fmt.Sprintf(`echo start > huge && truncate -s 900G huge && stat -c %%s huge &&
echo x | dd of=huge bs=1 seek=%d conv=notrunc status=none &&
dd if=huge bs=1M skip=%d count=4 status=none | tr -d '\000' && dd if=huge bs=1 skip=%d count=2 status=none && head -c 6 huge`, mid, 500<<10, mid))
		if want := fmt.Sprintf("%d\nx\nstart\n", int64(size)); code != 0 || out != want {
			t.Errorf("truncate -s 900G, a write and reads: exit %d, %.300q (want %q)", code, out, want)
		}
		chunks, err := cl.Chunks(ctx, "/huge")
		if err != nil || len(chunks) > 5 {
			t.Errorf("the 900 GiB file is %d references (%v): %+v", len(chunks), err, chunks)
		}
		if out, code := sh(t, mnt, 0, "truncate -s 2T huge"); code == 0 || !strings.Contains(out, "File too large") {
			t.Errorf("truncate past the largest file size: exit %d, %q (want EFBIG)", code, out)
		}
		os.Remove(at("huge"))
	})

	t.Run("fsync makes data durable in the cluster", func(t *testing.T) {
		f, err := os.Create(at("synced"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		data := randomBytes(7, 5*mountChunk+123)
		f.Write(data)
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		// Still open: the API sees it all already.
		got, err := cl.ReadFile(ctx, "/synced")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("after fsync the API reads %d bytes (%v), want %d", len(got), err, len(data))
		}
	})

	t.Run("large file streamed", func(t *testing.T) {
		data := randomBytes(8, 40*mountChunk+17)
		if err := os.WriteFile(at("large"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(at("large"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(data))
		}
		st, err := cl.Stat(ctx, "/large")
		if err != nil || st.Size != int64(len(data)) {
			t.Fatalf("stat through the API: %+v %v", st, err)
		}
		body, err := cl.ReadFile(ctx, "/large")
		sum, want := sha256.Sum256(body), sha256.Sum256(data)
		if err != nil || hex.EncodeToString(sum[:]) != hex.EncodeToString(want[:]) {
			t.Fatalf("the API reads other bytes than were written (%v)", err)
		}
	})

	t.Run("unlink while open", func(t *testing.T) {
		os.WriteFile(at("open"), []byte("still here"), 0o644)
		f, err := os.OpenFile(at("open"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := cl.Stat(ctx, "/open")
		if err := os.Remove(at("open")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(at("open")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("unlinked name still there: %v", err)
		}
		b := make([]byte, 10)
		if _, err := f.ReadAt(b, 0); err != nil || string(b) != "still here" {
			t.Errorf("read after unlink: %q %v", b, err)
		}
		if _, err := f.WriteAt([]byte("STILL"), 0); err != nil {
			t.Errorf("write after unlink: %v", err)
		}
		if err := f.Sync(); err != nil {
			t.Errorf("fsync after unlink: %v", err)
		}
		f.ReadAt(b, 0)
		if string(b) != "STILL here" {
			t.Errorf("read back after unlink: %q", b)
		}
		if _, err := cl.StatIno(ctx, st.Ino); err != nil {
			t.Errorf("the cluster dropped the inode of an open file: %v", err)
		}
		f.Close()
		harness.Await(t, 10*time.Second, "the unlinked file to be dropped after its last close", func() bool {
			_, err := cl.StatIno(ctx, st.Ino)
			return errors.Is(err, client.ErrNotFound)
		})
	})

	t.Run("directories", func(t *testing.T) {
		if err := os.Mkdir(at("dir"), 0o750); err != nil {
			t.Fatal(err)
		}
		wantErrno(t, "mkdir of an existing name", os.Mkdir(at("dir"), 0o755), syscall.EEXIST)
		os.WriteFile(at("dir/a"), nil, 0o644)
		os.Mkdir(at("dir/sub"), 0o755)
		wantErrno(t, "rmdir of a non-empty directory", syscall.Rmdir(at("dir")), syscall.ENOTEMPTY)
		wantErrno(t, "rmdir of a file", syscall.Rmdir(at("dir/a")), syscall.ENOTDIR)
		wantErrno(t, "unlink of a directory", syscall.Unlink(at("dir/sub")), syscall.EISDIR)
		_, err := os.Stat(at("dir/a/x"))
		wantErrno(t, "a file used as a directory", err, syscall.ENOTDIR)
		names, err := os.ReadDir(at("dir"))
		if err != nil || len(names) != 2 || names[0].Name() != "a" || !names[1].IsDir() {
			t.Errorf("listing: %v %v", names, err)
		}
		st, _ := os.Stat(at("dir"))
		if st.Mode().Perm() != 0o750 || st.Sys().(*syscall.Stat_t).Nlink != 3 {
			t.Errorf("directory mode %v, %d links (want 0750 and 3)", st.Mode(), st.Sys().(*syscall.Stat_t).Nlink)
		}
		out, code := sh(t, mnt, 0, `ls -a dir && ls -di . dir && ls -ai dir | awk '$2 == "." || $2 == ".."'`)
		if f := strings.Fields(out); code != 0 || len(f) != 12 || strings.Join(f[:4], " ") != ". .. a sub" || f[8] != f[6] || f[10] != f[4] {
			t.Errorf("ls -a dir, its inode and its parent's, then its . and .. with theirs: exit %d, %q", code, out)
		}
		if err := os.Remove(at("dir/sub")); err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(at("dir")); st.Sys().(*syscall.Stat_t).Nlink != 2 {
			t.Errorf("links after rmdir: %d", st.Sys().(*syscall.Stat_t).Nlink)
		}
	})

	t.Run("a directory's times and links after each change in it", func(t *testing.T) {
		// The kernel forgets a directory's attributes after a change in
		// it; the mount answers the stat that follows from the change's
		// own answer. It must be what the cluster holds.
		if err := os.Mkdir(at("times"), 0o755); err != nil {
			t.Fatal(err)
		}
		same := func(what string) {
			t.Helper()
			st, err := os.Stat(at("times"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := cl.Stat(ctx, "/times")
			if err != nil {
				t.Fatal(err)
			}
			if links := st.Sys().(*syscall.Stat_t).Nlink; !st.ModTime().Equal(want.MTime) || uint32(links) != want.Nlink {
				t.Errorf("after %s: the mount shows the directory with mtime %v and %d links, the cluster has %v and %d",
					what, st.ModTime(), links, want.MTime, want.Nlink)
			}
		}
		steps := []struct {
			what string
			do   func() error
		}{
			{"a create", func() error { return os.WriteFile(at("times/f"), []byte("x"), 0o644) }},
			{"a mkdir", func() error { return os.Mkdir(at("times/sub"), 0o755) }},
			{"a symlink", func() error { return os.Symlink("f", at("times/l")) }},
			{"a hard link", func() error { return os.Link(at("times/f"), at("times/g")) }},
			{"a rename in it", func() error { return os.Rename(at("times/g"), at("times/h")) }},
			{"a rename out of it", func() error { return os.Rename(at("times/sub"), at("sub-moved")) }},
			{"an unlink", func() error { return os.Remove(at("times/h")) }},
			{"a rename into it", func() error { return os.Rename(at("sub-moved"), at("times/sub")) }},
			{"an rmdir", func() error { return os.Remove(at("times/sub")) }},
		}
		for _, s := range steps {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.what, err)
			}
			same(s.what)
		}
	})

	t.Run("rename", func(t *testing.T) {
		os.MkdirAll(at("r/d1/inner"), 0o755)
		os.WriteFile(at("r/d1/inner/f"), []byte("f"), 0o644)
		os.Mkdir(at("r/empty"), 0o755)
		os.Mkdir(at("r/full"), 0o755)
		os.WriteFile(at("r/full/x"), nil, 0o644)
		os.WriteFile(at("r/a"), []byte("a"), 0o644)
		os.WriteFile(at("r/b"), []byte("b"), 0o644)
		// syscall.Rename, not os.Rename: Go refuses a directory as the
		// destination before asking the kernel.
		if err := syscall.Rename(at("r/a"), at("r/b")); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(at("r/b")); string(b) != "a" {
			t.Errorf("rename over a file: %q", b)
		}
		if err := syscall.Rename(at("r/d1"), at("r/empty")); err != nil {
			t.Errorf("a directory over an empty one: %v", err)
		}
		if b, _ := os.ReadFile(at("r/empty/inner/f")); string(b) != "f" {
			t.Errorf("moved tree: %q", b)
		}
		wantErrno(t, "a directory over a non-empty one", syscall.Rename(at("r/empty"), at("r/full")), syscall.ENOTEMPTY)
		wantErrno(t, "a file over a directory", syscall.Rename(at("r/b"), at("r/full")), syscall.EISDIR)
		wantErrno(t, "a directory over a file", syscall.Rename(at("r/full"), at("r/b")), syscall.ENOTDIR)
		wantErrno(t, "a directory into itself", syscall.Rename(at("r/empty"), at("r/empty/inner/x")), syscall.EINVAL)
		os.WriteFile(at("r/c"), nil, 0o644)
		wantErrno(t, "RENAME_NOREPLACE", unix.Renameat2(unix.AT_FDCWD, at("r/c"), unix.AT_FDCWD, at("r/b"), unix.RENAME_NOREPLACE), syscall.EEXIST)
		wantErrno(t, "RENAME_EXCHANGE", unix.Renameat2(unix.AT_FDCWD, at("r/c"), unix.AT_FDCWD, at("r/b"), unix.RENAME_EXCHANGE), syscall.EINVAL)
		// The whole tree moved in one step: the API sees the new names only.
		if ok, _ := cl.Exists(ctx, "/r/d1"); ok {
			t.Error("the old name of the moved directory still exists")
		}
		if b, err := cl.ReadFile(ctx, "/r/empty/inner/f"); err != nil || string(b) != "f" {
			t.Errorf("API read of the moved file: %q %v", b, err)
		}
	})

	t.Run("symlinks", func(t *testing.T) {
		os.WriteFile(at("target"), []byte("T"), 0o644)
		if err := os.Symlink("target", at("sl")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../nowhere", at("dangling")); err != nil {
			t.Fatal(err)
		}
		if s, err := os.Readlink(at("sl")); err != nil || s != "target" {
			t.Errorf("readlink: %q %v", s, err)
		}
		if b, _ := os.ReadFile(at("sl")); string(b) != "T" {
			t.Errorf("read through the link: %q", b)
		}
		if st, err := os.Lstat(at("sl")); err != nil || st.Mode()&os.ModeSymlink == 0 || st.Size() != 6 {
			t.Errorf("lstat: %v %v", st, err)
		}
		_, err := os.Stat(at("dangling"))
		wantErrno(t, "stat through a dangling link", err, syscall.ENOENT)
		wantErrno(t, "symlink over a name", os.Symlink("x", at("sl")), syscall.EEXIST)
	})

	t.Run("hard links", func(t *testing.T) {
		os.WriteFile(at("h1"), []byte("shared"), 0o644)
		if err := os.Link(at("h1"), at("h2")); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(at("hd"), 0o755)
		if err := os.Link(at("h1"), at("hd/h3")); err != nil {
			t.Fatal(err)
		}
		nlink := func(p string) uint64 {
			st, err := os.Stat(at(p))
			if err != nil {
				t.Fatal(err)
			}
			return uint64(st.Sys().(*syscall.Stat_t).Nlink)
		}
		if nlink("h1") != 3 || nlink("h2") != 3 {
			t.Errorf("links: %d %d, want 3", nlink("h1"), nlink("h2"))
		}
		os.WriteFile(at("h2"), []byte("changed"), 0o644)
		if b, _ := os.ReadFile(at("hd/h3")); string(b) != "changed" {
			t.Errorf("content through another link: %q", b)
		}
		os.Remove(at("h1"))
		if nlink("h2") != 2 {
			t.Errorf("links after unlink: %d", nlink("h2"))
		}
		wantErrno(t, "link to a directory", os.Link(at("hd"), at("hdl")), syscall.EPERM)
		wantErrno(t, "link over a name", os.Link(at("h2"), at("hd/h3")), syscall.EEXIST)
	})

	t.Run("attributes", func(t *testing.T) {
		os.WriteFile(at("attr"), []byte("x"), 0o644)
		// chown first: like every Linux file system, a chown clears setuid.
		if err := os.Chown(at("attr"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Chmod(at("attr"), 0o4711); err != nil { // os.Chmod would drop the raw setuid bit
			t.Fatal(err)
		}
		mt := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
		at2 := time.Date(2002, 2, 3, 4, 5, 6, 0, time.UTC)
		if err := os.Chtimes(at("attr"), at2, mt); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(at("attr"))
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode()&os.ModeSetuid == 0 || st.Mode().Perm() != 0o711 || sys.Uid != 1234 || sys.Gid != 5678 ||
			!st.ModTime().Equal(mt) || time.Unix(sys.Atim.Unix()).UTC() != at2 {
			t.Errorf("attributes: mode %v uid %d gid %d mtime %v atime %v", st.Mode(), sys.Uid, sys.Gid, st.ModTime(), time.Unix(sys.Atim.Unix()))
		}
		api, _ := cl.Stat(ctx, "/attr")
		if api.Uid != 1234 || api.Mode != 0o4711 || !api.MTime.Equal(mt) {
			t.Errorf("attributes through the API: %+v", api)
		}
	})

	t.Run("permissions checked by the kernel", func(t *testing.T) {
		os.WriteFile(at("private"), []byte("secret"), 0o600)
		os.Mkdir(at("rootdir"), 0o755)
		os.Mkdir(at("pub"), 0)
		os.Chmod(at("pub"), 0o777) // past the umask
		if _, code := sh(t, mnt, 65534, "cat private"); code == 0 {
			t.Error("nobody read a 0600 file of root's")
		}
		if _, code := sh(t, mnt, 65534, "touch rootdir/x"); code == 0 {
			t.Error("nobody created a file in a 0755 directory of root's")
		}
		out, code := sh(t, mnt, 65534, "echo mine > pub/n && stat -c '%u %g %a' pub/n && chown 0 pub/n")
		if code == 0 || !strings.HasPrefix(out, "65534 65534 644\n") {
			t.Errorf("nobody's file: exit %d, %q (want owned by nobody, chown refused)", code, out)
		}
		// A write by someone else clears setuid and setgid, as on a
		// local disk (the kernel asks, before the data).
		os.WriteFile(at("pub/suid"), nil, 0o644)
		os.Chmod(at("pub/suid"), 0o6777)
		out, code = sh(t, mnt, 65534, `python3 -c 'import os; fd = os.open("pub/suid", os.O_WRONLY); os.write(fd, b"x"); print(oct(os.fstat(fd).st_mode & 0o7777)); os.close(fd)' && stat -c %a pub/suid && cat pub/suid`)
		if code != 0 || out != "0o777\n777\nx" {
			t.Errorf("a write by nobody to a root file of mode 6777: exit %d, %q (want the bits cleared, the byte written)", code, out)
		}
	})

	t.Run("mode 0000 is kept", func(t *testing.T) {
		fd, err := syscall.Open(at("m0"), syscall.O_CREAT|syscall.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		syscall.Write(fd, []byte("root only"))
		syscall.Close(fd)
		if err := syscall.Mkdir(at("d0"), 0); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(at("d0/inside"), nil, 0o644) // root passes any mode
		os.WriteFile(at("c0"), nil, 0o644)
		if err := os.Chmod(at("c0"), 0); err != nil {
			t.Fatal(err)
		}
		out, code := sh(t, mnt, 0, "umask 0777 && touch u0 && mkdir u1 && stat -c '%n %a' m0 d0 c0 u0 u1")
		if want := "m0 0\nd0 0\nc0 0\nu0 0\nu1 0\n"; code != 0 || out != want {
			t.Errorf("modes through the mount: exit %d, %q (want %q)", code, out, want)
		}
		for _, name := range []string{"/m0", "/d0", "/c0", "/u0", "/u1"} {
			if st, err := cl.Stat(ctx, name); err != nil || st.Mode != 0 {
				t.Errorf("%s through the API: mode %04o, %v (want 0000)", name, st.Mode, err)
			}
		}
		if out, code := sh(t, mnt, 65534, "cat m0"); code == 0 {
			t.Errorf("nobody read a root file created with mode 0000: %q", out)
		}
		if out, code := sh(t, mnt, 65534, "ls d0"); code == 0 {
			t.Errorf("nobody listed a root directory made with mode 0000: %q", out)
		}
	})

	t.Run("special files", func(t *testing.T) {
		out, code := sh(t, mnt, 0, `mkdir sp && cd sp && mkfifo -m 0600 fifo && mknod null c 1 3 && mknod disk b 8 1 &&
python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("sock")' &&
(echo through the pipe > fifo &) && cat fifo && stat -c '%n %F %t:%T %a' fifo null disk sock && ls -a`)
		want := "through the pipe\nfifo fifo 0:0 600\nnull character special file 1:3 644\ndisk block special file 8:1 644\nsock socket 0:0 755\n.\n..\ndisk\nfifo\nnull\nsock\n"
		if code != 0 || out != want {
			t.Errorf("mkfifo, mknod, a socket: exit %d\n%s\nwant\n%s", code, out, want)
		}
		for name, typ := range map[string]string{"fifo": client.TypeFIFO, "null": client.TypeCharDev, "disk": client.TypeBlockDev, "sock": client.TypeSocket} {
			if st, err := cl.Stat(ctx, "/sp/"+name); err != nil || st.Type != typ {
				t.Errorf("%s through the API: %+v %v (want type %s)", name, st, err, typ)
			}
		}
		if st, _ := cl.Stat(ctx, "/sp/null"); st.Rdev != 1<<8|3 {
			t.Errorf("device number of null through the API: %#x (want 0x103)", st.Rdev)
		}
		os.Chmod(at("sp"), 0o777)
		if out, code := sh(t, mnt, 65534, "mkfifo sp/mine && stat -c %U sp/mine && mknod sp/dev c 1 3"); code == 0 || !strings.HasPrefix(out, "nobody\n") || !strings.Contains(out, "not permitted") {
			t.Errorf("nobody's FIFO, then a device node: exit %d, %q (want a FIFO of nobody's, then EPERM)", code, out)
		}
		if out, code := sh(t, mnt, 0, "mv sp/fifo sp/fifo2 && ln sp/fifo2 sp/fifo3 && stat -c '%h %F' sp/fifo3 && rm sp/fifo2 sp/fifo3 sp/null sp/disk sp/sock sp/mine && rmdir sp"); code != 0 || out != "2 fifo\n" {
			t.Errorf("rename, link and remove of special files: exit %d, %q", code, out)
		}
	})

	t.Run("setgid directories pass on their group", func(t *testing.T) {
		os.Mkdir(at("sg"), 0o755)
		if err := os.Chown(at("sg"), 0, 4242); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Chmod(at("sg"), 0o2775); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(at("sg/f"), nil, 0o644)
		os.Mkdir(at("sg/sub"), 0o755)
		f, _ := os.Stat(at("sg/f"))
		d, _ := os.Stat(at("sg/sub"))
		if f == nil || d == nil || f.Sys().(*syscall.Stat_t).Gid != 4242 || d.Sys().(*syscall.Stat_t).Gid != 4242 || d.Mode()&os.ModeSetgid == 0 {
			t.Errorf("in a setgid directory of group 4242: file %v, directory %v", f.Sys(), d.Mode())
		}
	})

	t.Run("statfs", func(t *testing.T) {
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil {
			t.Fatal(err)
		}
		if st.Bsize != 4096 || st.Blocks == 0 || st.Bfree > st.Blocks || st.Namelen != 255 {
			t.Errorf("statfs: %+v", st)
		}
	})
}

// TestMountCloseToOpen: a file closed on one mount is read whole by an
// open on another, even one that looked at the file before.
func TestMountCloseToOpen(t *testing.T) {
	c, a := mountCluster(t)
	b := c.mount()
	os.WriteFile(filepath.Join(a, "shared"), []byte("v1"), 0o644)
	if got, _ := os.ReadFile(filepath.Join(b, "shared")); string(got) != "v1" {
		t.Fatalf("second mount reads %q", got)
	}
	for i := range 5 {
		data := randomBytes(uint64(i), 1000*(i+1)+3*mountChunk*i)
		f, err := os.OpenFile(filepath.Join(a, "shared"), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(b, "shared"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round %d: the other mount read %d bytes (%v), want the %d just closed", i, len(got), err, len(data))
		}
	}
	// The size an open reports at once (fstat) is the one just closed
	// elsewhere, though the kernel had a larger one cached: a program
	// that reads as many bytes as fstat says gets the whole file.
	if st, err := os.Stat(filepath.Join(b, "shared")); err != nil || st.Size() < 1000 {
		t.Fatalf("stat on the other mount: %v %v", st, err)
	}
	os.WriteFile(filepath.Join(a, "shared"), []byte("short"), 0o644)
	f, err := os.Open(filepath.Join(b, "shared"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	f.Close()
	if err != nil || st.Size() != 5 {
		t.Fatalf("fstat after open on the other mount: size %d (%v), want the 5 bytes just closed", st.Size(), err)
	}
	// A name made on one mount is found at once on the other.
	os.WriteFile(filepath.Join(a, "new"), []byte("n"), 0o644)
	if got, err := os.ReadFile(filepath.Join(b, "new")); err != nil || string(got) != "n" {
		t.Fatalf("a new file on the other mount: %q %v", got, err)
	}
}

// TestMountBackground: without --foreground, shoal mount returns once the
// file system is mounted, and shoal umount takes it away.
func TestMountBackground(t *testing.T) {
	needFUSE(t)
	c := newCluster(t, 1)
	dir := t.TempDir()
	t.Cleanup(func() { unmount(dir) })
	out, errOut, code := c.run("mount", dir, "--log", filepath.Join(c.Dir, "bg-mount.log"))
	if code != 0 || !mount.IsMounted(dir) {
		t.Fatalf("shoal mount exited %d (%s%s); mounted: %v", code, out, errOut, mount.IsMounted(dir))
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("bg"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.run("umount", dir); code != 0 || mount.IsMounted(dir) {
		t.Fatalf("shoal umount exited %d (%s); still mounted: %v", code, errOut, mount.IsMounted(dir))
	}
	if b, err := c.client().ReadFile(context.Background(), "/f"); err != nil || string(b) != "bg" {
		t.Fatalf("after unmount: %q %v", b, err)
	}
	// A bad router is reported by the command, not by a silent daemon.
	_, errOut, code = c.run("mount", dir, "--router", "http://127.0.0.1:1")
	if code == 0 || mount.IsMounted(dir) || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("mount with a dead router: exit %d, %q", code, errOut)
	}
}

// TestMountSurvivesPrimaryKill: a program writes a file through the mount
// block by block, each block made durable (dd conv=fsync), while the
// group's primary is killed with kill -9. The program sees a stall, no
// error, and the file ends complete.
func TestMountSurvivesPrimaryKill(t *testing.T) {
	c, mnt := mountCluster(t)
	const blocks = 96
	src := filepath.Join(t.TempDir(), "src")
	data := randomBytes(11, blocks*mountChunk)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(mnt, "written")
	script := fmt.Sprintf(`for i in $(seq 0 %d); do dd if=%s of=%s bs=%d seek=$i skip=$i count=1 conv=notrunc,fsync status=none || exit 1; done`,
		blocks-1, src, dst, mountChunk)
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		out, code := sh(t, mnt, 0, script)
		done <- result{out, code}
	}()
	g := c.waitGroup(3, "")
	harness.Await(t, 60*time.Second, "a fifth of the blocks written before the kill", func() bool {
		st, err := os.Stat(dst)
		return err == nil && st.Size() >= blocks/5*mountChunk
	})
	victim := c.node(g.Primary)
	victim.Kill()
	t.Logf("killed primary %s after %v", victim.Name, time.Since(start).Round(time.Millisecond))
	var r result
	select {
	case r = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the writer did not finish within 3 minutes of the kill")
	}
	t.Logf("writer finished after %v", time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("the writer failed (exit %d): %s", r.code, r.out)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after the failover the file reads %d bytes (%v), want the %d written", len(got), err, len(data))
	}
	// The old primary rejoins, and the file is whole through the API too.
	c.start(victim)
	g = c.waitGroup(3, "")
	if got, err := c.client().ReadFile(context.Background(), "/written"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the API reads %d bytes (%v), want %d", len(got), err, len(data))
	}

	// Once more with one open file written in a stream (the mount sends
	// full write buffers in the background), killing the new primary. The
	// producer is paced so that the kill lands mid-stream.
	go func() {
		out, code := sh(t, mnt, 0, fmt.Sprintf(
			`set -e; (for i in $(seq 0 %d); do dd if=%s bs=%d skip=$i count=1 status=none; sleep 0.02; done) | dd of=%s/streamed bs=%d iflag=fullblock status=none`,
			blocks-1, src, mountChunk, mnt, mountChunk))
		done <- result{out, code}
	}()
	harness.Await(t, 60*time.Second, "the stream under way", func() bool {
		st, err := os.Stat(filepath.Join(mnt, "streamed"))
		return err == nil && st.Size() >= blocks/5*mountChunk
	})
	victim = c.node(g.Primary)
	victim.Kill()
	killed := time.Now()
	select {
	case r = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the streaming writer did not finish within 3 minutes of the kill")
	}
	t.Logf("killed primary %s mid-stream; the stream finished %v later", victim.Name, time.Since(killed).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("the streaming writer failed (exit %d): %s", r.code, r.out)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "streamed")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the streamed file reads %d bytes (%v), want the %d written", len(got), err, len(data))
	}
}
