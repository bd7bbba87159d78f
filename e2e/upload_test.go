package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/harness"
)

// received is what the router has taken in request bodies so far, read
// once no request is in flight but the one asking (so the bytes of a
// request cut short are counted before, not after).
func (c *cluster) received() int64 {
	c.t.Helper()
	var st struct {
		Metered  bool  `json:"metered"`
		Received int64 `json:"received_bytes"`
		InFlight int   `json:"in_flight"`
	}
	harness.Await(c.t, 30*time.Second, "the router to finish every request but this one", func() (bool, error) {
		code, _, body := c.do("GET", "/v1/stats", nil)
		if code != 200 {
			return false, fmt.Errorf("/v1/stats: %d %s", code, body)
		}
		if err := json.Unmarshal(body, &st); err != nil {
			return false, err
		}
		return st.InFlight <= 1, nil
	})
	if !st.Metered {
		c.t.Fatal("the router does not meter requests: start it with --metrics")
	}
	return st.Received
}

// randomFile writes n random bytes to p.
func randomFile(t *testing.T, p string, n int, seed uint64) []byte {
	t.Helper()
	data := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(data)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestUploadSendsOnlyWhatIsMissing runs put and sync on a large file in a
// secure cluster (chunks sealed at rest) and counts the bytes the router
// takes in: a put killed half way resumes without sending again what was
// stored, an unchanged file is sent again as no chunk at all, and a file
// changed in one place sends the chunks that changed.
func TestUploadSendsOnlyWhatIsMissing(t *testing.T) {
	const mib = 1 << 20
	const chunk = 4 * mib // the router's default chunk size
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}},
		RouterFlags: []string{"--metrics", fmt.Sprintf("127.0.0.1:%d", freePort(t))}})
	dir := t.TempDir()
	local := filepath.Join(dir, "big")
	size := 256 * mib
	data := randomFile(t, local, size, 1)
	same := func(what string, want []byte) {
		t.Helper()
		back := filepath.Join(dir, "back")
		os.Remove(back)
		if _, errOut, code := c.run("get", "/up/big", back); code != 0 {
			t.Fatalf("%s: get: %s", what, errOut)
		}
		if got, _ := os.ReadFile(back); !bytes.Equal(got, want) {
			t.Fatalf("%s: /up/big reads back %d bytes, not what was put", what, len(got))
		}
		if _, errOut, code := c.run("stat", "/up/.big.shoal-part"); code == 0 || !strings.Contains(errOut, "not_found") {
			t.Fatalf("%s: the partial file is still there (%d %s)", what, code, errOut)
		}
	}

	// A put killed once a first piece is stored.
	cmd := exec.Command(binary(t), "put", local, "/up/big")
	cmd.Env = append(os.Environ(), c.cliEnv()...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cl := c.client()
	harness.Await(t, time.Minute, "the put to store its first piece in its partial file", func() (bool, error) {
		st, err := cl.Stat(t.Context(), "/up/.big.shoal-part")
		return err == nil && st.Size > 0, nil
	})
	cmd.Process.Kill()
	if err := cmd.Wait(); err == nil {
		t.Fatalf("the put finished before it was killed: make the file larger (%s)", errOut.String())
	}
	kept, err := cl.Stat(t.Context(), "/up/.big.shoal-part")
	if err != nil || kept.Size == 0 || kept.Size >= int64(size) {
		t.Fatalf("after kill -9 the partial file is %+v (%v)", kept, err)
	}
	if _, err := cl.Stat(t.Context(), "/up/big"); err == nil {
		t.Fatal("a killed put left /up/big in place")
	}
	before := c.received()
	if _, errOut, code := c.run("put", local, "/up/big"); code != 0 {
		t.Fatalf("put again after kill -9: %s", errOut)
	}
	sent := c.received() - before
	t.Logf("kill -9 after %d MiB stored; the put run again sent %d MiB of %d", kept.Size/mib, sent/mib, size/mib)
	if sent > int64(size)-kept.Size+mib {
		t.Errorf("the resumed put sent %d bytes; %d were left to send", sent, int64(size)-kept.Size)
	}
	same("after the resumed put", data)

	// Unchanged: no chunk travels, and the file is still replaced (its
	// time moves, as any put's).
	st0, _ := cl.Stat(t.Context(), "/up/big")
	before = c.received()
	if _, errOut, code := c.run("put", local, "/up/big"); code != 0 {
		t.Fatalf("put unchanged: %s", errOut)
	}
	if sent := c.received() - before; sent > 64<<10 {
		t.Errorf("an unchanged re-upload sent %d bytes", sent)
	}
	st1, _ := cl.Stat(t.Context(), "/up/big")
	if st1.Hash != st0.Hash || !st1.MTime.After(st0.MTime) || st1.Ino != st0.Ino {
		t.Errorf("an unchanged re-upload: before %+v, after %+v", st0, st1)
	}
	same("after an unchanged put", data)

	// Conditions that do not hold are refused before anything is sent.
	for _, flags := range [][]string{{"--no-clobber"}, {"--if-match", strings.Repeat("0", 64)}} {
		before = c.received()
		_, errOut, code := c.run(append(append([]string{"put"}, flags...), local, "/up/big")...)
		if code == 0 || !strings.Contains(errOut, "precondition") {
			t.Fatalf("put %v over /up/big: exit %d %q", flags, code, errOut)
		}
		if sent := c.received() - before; sent > 64<<10 {
			t.Errorf("a refused put %v sent %d bytes", flags, sent)
		}
	}
	same("after refused puts", data)

	// One byte changed in the middle and 1 KiB added: two chunks differ.
	data[100*mib+5] ^= 0xff
	data = append(data, bytes.Repeat([]byte("tail"), 256)...)
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	before = c.received()
	if _, errOut, code := c.run("put", local, "/up/big"); code != 0 {
		t.Fatalf("put changed: %s", errOut)
	}
	if sent := c.received() - before; sent < chunk || sent > 2*chunk+mib {
		t.Errorf("a put changing 2 chunks sent %d bytes", sent)
	}
	same("after a changed put", data)

	// sync finds the changed file by its time and sends the changed chunk.
	tree := filepath.Join(dir, "tree")
	os.Mkdir(tree, 0o755)
	small := randomFile(t, filepath.Join(tree, "f"), 40*mib, 2)
	if _, errOut, code := c.run("sync", tree, ":/s"); code != 0 {
		t.Fatalf("sync: %s", errOut)
	}
	small[21*mib] ^= 1
	os.WriteFile(filepath.Join(tree, "f"), small, 0o644)
	os.Chtimes(filepath.Join(tree, "f"), time.Now(), time.Now().Add(time.Hour))
	before = c.received()
	if _, errOut, code := c.run("sync", tree, ":/s"); code != 0 {
		t.Fatalf("sync again: %s", errOut)
	}
	if sent := c.received() - before; sent < chunk || sent > chunk+mib {
		t.Errorf("a sync of a file changed in one chunk sent %d bytes", sent)
	}
	if got, err := cl.ReadFile(t.Context(), "/s/f"); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("/s/f after sync: %d bytes, %v", len(got), err)
	}
	// --checksum compares chunk by chunk: the same bytes with another
	// time are left alone.
	os.Chtimes(filepath.Join(tree, "f"), time.Now(), time.Now().Add(2*time.Hour))
	if sum := c.syncJSON("--checksum", tree, ":/s"); sum["copied"] != 0 || sum["unchanged"] != 1 {
		t.Fatalf("sync --checksum of unchanged content: %v", sum)
	}
}

// Comparing is reading: a user who may not read a file learns nothing
// of it by match, nor takes its content with PUT ?from=.
func TestMatchNeedsRead(t *testing.T) {
	c := newCluster(t, 1)
	dir := t.TempDir()
	local := filepath.Join(dir, "secret")
	randomFile(t, local, 9<<20, 3)
	if _, errOut, code := c.run("put", local, "/secret"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	if code, _, body := c.do("POST", "/v1/fs/secret?op=setattr&mode=0600", nil); code != 200 {
		t.Fatalf("chmod 0600 /secret: %d %s", code, body)
	}
	bob := c.addUser("bob")
	body := `{"size":9437184,"chunk_size":4194304,"sums":["` + strings.Repeat("0", 64) + `"]}`
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/fs/secret?op=match", body},
		{"PUT", "/v1/fs/home/bob/stolen?from=/secret", ""},
	} {
		req := []string{"-sS", "--cacert", c.Creds.CA, "-H", "Authorization: Bearer " + bob, "-X", tc.method,
			"-o", "/dev/null", "-w", "%{http_code}", c.API + tc.path}
		if tc.body != "" {
			req = append(req, "--data-binary", tc.body)
		}
		out, err := exec.Command("curl", req...).Output()
		if err != nil || string(out) != "403" {
			t.Errorf("%s %s as bob: %s (%v), want 403", tc.method, tc.path, out, err)
		}
	}
	if _, errOut, code := c.runAs(bob, "stat", "/home/bob/stolen"); code == 0 || !strings.Contains(errOut, "not_found") {
		t.Fatalf("bob's refused PUT ?from= made a file: %s", errOut)
	}
}

// TestUploadByChunksTrustsOnlyItsOwn: a partial file someone else made
// beside the destination is never resumed into (its owner could read
// the bytes sent, or keep them through a hard link): the file goes whole
// and the stranger's file stays as it was. And a put that may replace a
// file but not make the partial file beside it (a directory the caller
// cannot write) goes whole too, as a PUT may.
func TestUploadByChunksTrustsOnlyItsOwn(t *testing.T) {
	c := newCluster(t, 3)
	dir := t.TempDir()
	local := filepath.Join(dir, "big")
	data := randomFile(t, local, 9<<20+77, 7)
	out, errOut, code := c.run("user", "add", "alice")
	if code != 0 {
		t.Fatal(errOut)
	}
	alice := strings.TrimSpace(out)
	for _, p := range []string{"/shared", "/drop"} {
		if _, errOut, code := c.run("mkdir", p); code != 0 {
			t.Fatal(errOut)
		}
	}
	if code, _, body := c.do("POST", "/v1/fs/shared?op=setattr&mode=1777", nil); code != 200 {
		t.Fatalf("chmod 1777 /shared: %d %s", code, body)
	}
	// alice leaves a partial file, open to all, where the admin's put
	// would look for its own.
	bait := filepath.Join(dir, "bait")
	os.WriteFile(bait, []byte("alice's"), 0o644)
	if _, errOut, code := c.runAs(alice, "put", bait, "/shared/.big.shoal-part"); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, body := c.do("POST", "/v1/fs/shared/.big.shoal-part?op=setattr&mode=0666", nil); code != 200 {
		t.Fatalf("chmod 0666: %d %s", code, body)
	}
	if _, errOut, code := c.run("put", local, "/shared/big"); code != 0 {
		t.Fatalf("put beside a stranger's partial file: %s", errOut)
	}
	back := filepath.Join(dir, "back")
	if _, errOut, code := c.run("get", "/shared/big", back); code != 0 {
		t.Fatal(errOut)
	}
	if got, _ := os.ReadFile(back); !bytes.Equal(got, data) {
		t.Fatalf("/shared/big reads %d bytes, not what was put", len(got))
	}
	if out, errOut, code := c.runAs(alice, "cat", "/shared/.big.shoal-part"); code != 0 || out != "alice's" {
		t.Fatalf("the stranger's partial file changed: %d %q %s", code, out, errOut)
	}
	// A file alice may write in a directory she may not.
	if _, errOut, code := c.run("put", bait, "/drop/f"); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, body := c.do("POST", "/v1/fs/drop/f?op=setattr&mode=0666", nil); code != 200 {
		t.Fatalf("chmod 0666 /drop/f: %d %s", code, body)
	}
	if _, errOut, code := c.runAs(alice, "put", local, "/drop/f"); code != 0 {
		t.Fatalf("alice replaces a file she may write: %s", errOut)
	}
	os.Remove(back)
	if _, errOut, code := c.run("get", "/drop/f", back); code != 0 {
		t.Fatal(errOut)
	}
	if got, _ := os.ReadFile(back); !bytes.Equal(got, data) {
		t.Fatalf("/drop/f reads %d bytes, not what alice put", len(got))
	}
}
