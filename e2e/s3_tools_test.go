// The S3 API driven by the programs its users run: the AWS CLI, rclone,
// s3cmd; and seen through a mount.

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"shoal/harness"
	"shoal/secure"
)

// s3Tool runs an S3 client program, failing the test with its output.
//
// A tool that dies of a segmentation fault is run once more, saying so:
// the AWS CLI's Python sometimes crashes in a multithreaded transfer
// (aws/aws-cli#5793; other projects' CI retries it too), which says
// nothing about what the cluster answered. Any other failure fails.
func s3Tool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	for try := 0; ; try++ {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("%s %s: %v", name, strings.Join(args[:min(len(args), 4)], " "), time.Since(start).Round(time.Millisecond))
		if err == nil {
			return string(out)
		}
		var ee *exec.ExitError
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); try == 0 && errors.As(err, &ee) && ok && ws.Signaled() && ws.Signal() == syscall.SIGSEGV {
			t.Logf("RETRYING: %s %s crashed with a segmentation fault, a fault of the tool itself; running it once more", name, strings.Join(args, " "))
			continue
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out[max(0, len(out)-4000):])
	}
}

// TestS3ToolRunsACrashOnceMore: a tool that dies of a segmentation fault
// is run once more, and what the second run prints is returned.
func TestS3ToolRunsACrashOnceMore(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "crashes-once")
	script := "#!/bin/sh\nif [ ! -e " + dir + "/ran ]; then touch " + dir + "/ran; kill -SEGV $$; fi\necho second run\n"
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := s3Tool(t, nil, tool, "arg"); out != "second run\n" {
		t.Fatalf("got %q, want the second run's output", out)
	}
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("SHOAL_REQUIRE_S3_TOOLS") != "" {
			t.Fatalf("%s is not installed and SHOAL_REQUIRE_S3_TOOLS is set: apt-get install awscli rclone s3cmd", name)
		}
		t.Skipf("SKIPPED: %s is not installed (.ci/run installs it: apt-get install awscli rclone s3cmd)", name)
	}
}

// sameTree fails unless directories a and b hold the same files.
func sameS3Tree(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	filepath.Walk(a, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs after the round trip: %v", rel, err)
		}
		n++
		return nil
	})
	if n == 0 {
		t.Fatalf("no file in %s", a)
	}
}

// s3Tree writes a small tree with a file large enough for multipart.
func s3Tree(t *testing.T) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	randomFile(t, filepath.Join(dir, "a", "b", "large.bin"), 20<<20+5, 3)
	os.WriteFile(filepath.Join(dir, "a", "small.txt"), []byte("small\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "with space+plus.txt"), []byte("odd name\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
	return dir
}

// TestS3WithAWSCLIRcloneAndS3cmd does what users of the AWS CLI, rclone
// and s3cmd do against a secure cluster, comparing every byte.
func TestS3WithAWSCLIRcloneAndS3cmd(t *testing.T) {
	c := startS3Cluster(t)
	id, secret := c.key(c.Creds.Token, "admin")
	ca := secure.Dir(c.Secrets).CA()
	url := "https://" + c.endpoint
	tree := s3Tree(t)

	t.Run("aws", func(t *testing.T) {
		needTool(t, "aws")
		env := []string{"AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_CA_BUNDLE=" + ca,
			"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
		aws := func(args ...string) string {
			return s3Tool(t, env, "aws", append([]string{"--endpoint-url", url}, args...)...)
		}
		aws("s3", "mb", "s3://awsbucket")
		aws("s3", "cp", filepath.Join(tree, "a", "b", "large.bin"), "s3://awsbucket/one/large.bin")
		aws("s3", "sync", tree, "s3://awsbucket/tree")
		if out := aws("s3", "sync", tree, "s3://awsbucket/tree"); strings.Contains(out, "upload:") {
			t.Fatalf("a second sync of an unchanged tree uploaded again:\n%s", out)
		}
		ls := aws("s3", "ls", "--recursive", "s3://awsbucket/")
		for _, k := range []string{"one/large.bin", "tree/a/b/large.bin", "tree/with space+plus.txt", "tree/empty"} {
			if !strings.Contains(ls, k) {
				t.Fatalf("aws s3 ls does not list %s:\n%s", k, ls)
			}
		}
		back := t.TempDir()
		aws("s3", "sync", "s3://awsbucket/tree", back)
		sameS3Tree(t, tree, back)
		one := filepath.Join(t.TempDir(), "large.bin")
		aws("s3", "cp", "s3://awsbucket/one/large.bin", one)
		sameS3Tree(t, filepath.Join(tree, "a", "b"), filepath.Dir(one))
		// The multipart calls themselves.
		up := strings.TrimSpace(aws("s3api", "create-multipart-upload", "--bucket", "awsbucket", "--key", "mp", "--query", "UploadId", "--output", "text"))
		etag := strings.TrimSpace(aws("s3api", "upload-part", "--bucket", "awsbucket", "--key", "mp", "--upload-id", up, "--part-number", "1",
			"--body", filepath.Join(tree, "a", "small.txt"), "--query", "ETag", "--output", "text"))
		if !strings.Contains(aws("s3api", "list-multipart-uploads", "--bucket", "awsbucket"), up) {
			t.Fatal("list-multipart-uploads does not list the upload")
		}
		parts := fmt.Sprintf(`{"Parts":[{"PartNumber":1,"ETag":%s}]}`, etag)
		aws("s3api", "complete-multipart-upload", "--bucket", "awsbucket", "--key", "mp", "--upload-id", up, "--multipart-upload", parts)
		if out := aws("s3", "cp", "s3://awsbucket/mp", "-"); out != "small\n" {
			t.Fatalf("the completed upload reads %q", out)
		}
		// A bucket made public-read: anyone may list and read it without
		// a key (a browser, curl, aws --no-sign-request); nobody may
		// change it so, nor read its ACL.
		anon := &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls}, Timeout: 30 * time.Second}
		unsigned := func(method, path string) (int, string) {
			req, _ := http.NewRequest(method, url+path, strings.NewReader("unsigned"))
			resp, err := anon.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := unsigned("GET", "/awsbucket/mp"); code != 403 || !strings.Contains(body, "AccessDenied") {
			t.Fatalf("an unsigned GET of a private bucket's object: %d %s", code, body)
		}
		aws("s3api", "put-bucket-acl", "--bucket", "awsbucket", "--acl", "public-read")
		if acl := aws("s3api", "get-bucket-acl", "--bucket", "awsbucket"); !strings.Contains(acl, "AllUsers") || !strings.Contains(acl, "FULL_CONTROL") {
			t.Fatalf("get-bucket-acl of a public-read bucket:\n%s", acl)
		}
		if code, body := unsigned("GET", "/awsbucket/mp"); code != 200 || body != "small\n" {
			t.Fatalf("an unsigned GET of a public-read bucket's object: %d %q", code, body)
		}
		pub := append(slices.Clip(env), "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
		if out := s3Tool(t, pub, "aws", "--endpoint-url", url, "--no-sign-request", "s3", "cp", "s3://awsbucket/mp", "-"); out != "small\n" {
			t.Fatalf("aws --no-sign-request s3 cp of a public object reads %q", out)
		}
		if out := s3Tool(t, pub, "aws", "--endpoint-url", url, "--no-sign-request", "s3", "ls", "s3://awsbucket/tree/a/"); !strings.Contains(out, "small.txt") {
			t.Fatalf("aws --no-sign-request s3 ls of a public bucket:\n%s", out)
		}
		for _, rq := range [][2]string{{"PUT", "/awsbucket/evil"}, {"DELETE", "/awsbucket/mp"}, {"PUT", "/awsbucket?acl"},
			{"GET", "/awsbucket?acl"}, {"GET", "/awsbucket?uploads"}, {"POST", "/awsbucket/x?uploads"}, {"GET", "/"}, {"GET", "/nothere/x"}} {
			if code, body := unsigned(rq[0], rq[1]); code != 403 || !strings.Contains(body, "AccessDenied") {
				t.Fatalf("unsigned %s %s on a public-read bucket: %d %s", rq[0], rq[1], code, body)
			}
		}
		if out := aws("s3", "ls", "s3://awsbucket/"); strings.Contains(out, "evil") || !strings.Contains(out, "mp") {
			t.Fatalf("after the refused unsigned writes the bucket holds:\n%s", out)
		}
		aws("s3api", "put-bucket-acl", "--bucket", "awsbucket", "--acl", "private")
		if code, body := unsigned("GET", "/awsbucket/mp"); code != 403 {
			t.Fatalf("an unsigned GET once the bucket is private again: %d %s", code, body)
		}
		aws("s3api", "create-bucket", "--bucket", "born-public", "--acl", "public-read")
		if code, body := unsigned("GET", "/born-public?list-type=2"); code != 200 || !strings.Contains(body, "<KeyCount>0</KeyCount>") {
			t.Fatalf("an unsigned listing of a bucket created public-read: %d %s", code, body)
		}
		aws("s3", "rb", "s3://born-public")

		aws("s3", "rm", "--recursive", "s3://awsbucket/")
		aws("s3", "rb", "s3://awsbucket")
	})

	t.Run("rclone", func(t *testing.T) {
		needTool(t, "rclone")
		env := []string{"RCLONE_CONFIG=/dev/null", "RCLONE_CONFIG_SH_TYPE=s3", "RCLONE_CONFIG_SH_PROVIDER=Other",
			"RCLONE_CONFIG_SH_ACCESS_KEY_ID=" + id, "RCLONE_CONFIG_SH_SECRET_ACCESS_KEY=" + secret, "RCLONE_CONFIG_SH_ENDPOINT=" + url,
			"SSL_CERT_FILE=" + ca, "AWS_CA_BUNDLE="} // rclone is a Go program: the CA as its roots; a bundle for the AWS SDK in it would clash
		s3Tool(t, env, "rclone", "mkdir", "sh:rcbucket")
		s3Tool(t, env, "rclone", "copy", tree, "sh:rcbucket/tree")
		s3Tool(t, env, "rclone", "check", tree, "sh:rcbucket/tree")
		os.WriteFile(filepath.Join(tree, "a", "small.txt"), []byte("changed\n"), 0o644)
		os.Remove(filepath.Join(tree, "empty"))
		s3Tool(t, env, "rclone", "sync", tree, "sh:rcbucket/tree")
		s3Tool(t, env, "rclone", "check", tree, "sh:rcbucket/tree")
		back := t.TempDir()
		s3Tool(t, env, "rclone", "copy", "sh:rcbucket/tree", back)
		sameS3Tree(t, tree, back)
		if _, err := os.Stat(filepath.Join(back, "empty")); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("rclone sync did not remove the file deleted locally")
		}
	})

	t.Run("s3cmd", func(t *testing.T) {
		needTool(t, "s3cmd")
		cfg := filepath.Join(t.TempDir(), "s3cfg")
		os.WriteFile(cfg, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = True\nca_certs_file = %s\ncheck_ssl_hostname = False\nsignature_v2 = False\n",
			id, secret, c.endpoint, c.endpoint, ca)), 0o600)
		s3cmd := func(args ...string) string { return s3Tool(t, nil, "s3cmd", append([]string{"-c", cfg}, args...)...) }
		s3cmd("mb", "s3://s3cmdbucket")
		s3cmd("put", filepath.Join(tree, "a", "b", "large.bin"), "s3://s3cmdbucket/large.bin")
		s3cmd("put", filepath.Join(tree, "a", "small.txt"), "s3://s3cmdbucket/dir/small.txt")
		if ls := s3cmd("ls", "--recursive", "s3://s3cmdbucket"); !strings.Contains(ls, "s3://s3cmdbucket/dir/small.txt") || !strings.Contains(ls, "s3://s3cmdbucket/large.bin") {
			t.Fatalf("s3cmd ls:\n%s", ls)
		}
		back := t.TempDir()
		s3cmd("get", "s3://s3cmdbucket/large.bin", filepath.Join(back, "large.bin"))
		sameS3Tree(t, filepath.Join(tree, "a", "b"), back)
		s3cmd("del", "s3://s3cmdbucket/large.bin")
		s3cmd("del", "s3://s3cmdbucket/dir/small.txt")
		s3cmd("rb", "s3://s3cmdbucket")
	})
}

// TestS3AndTheMount: what S3 writes, the mount reads, and what is
// written into the mount (by cp, as a program would) is an object.
func TestS3AndTheMount(t *testing.T) {
	needFUSE(t)
	c := startS3Cluster(t)
	ctx := context.Background()
	id, secret := c.key(c.Creds.Token, "admin")
	m := c.minio(id, secret)
	if err := m.MakeBucket(ctx, "shared", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("from s3 "), 100000)
	if _, err := m.PutObject(ctx, "shared", "in/s3.txt", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := c.mount()
	if got, err := os.ReadFile(filepath.Join(dir, "shared", "in", "s3.txt")); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("the mount reads %d bytes of an object (%v)", len(got), err)
	}
	local := filepath.Join(t.TempDir(), "m.bin")
	data := randomFile(t, local, 6<<20+3, 9)
	if out, err := exec.Command("cp", local, filepath.Join(dir, "shared", "in", "mount.bin")).CombinedOutput(); err != nil {
		t.Fatalf("cp into the mount: %v %s", err, out)
	}
	// The mount's close is its commit (close-to-open): S3 sees it after.
	harness.Await(t, 10*time.Second, "the file written through the mount as an object", func() (bool, error) {
		o, err := m.GetObject(ctx, "shared", "in/mount.bin", minio.GetObjectOptions{})
		if err != nil {
			return false, err
		}
		got, err := io.ReadAll(o)
		if s3Code(err) == "NoSuchKey" {
			return false, nil
		}
		return bytes.Equal(got, data), err
	})
	var keys []string
	for o := range m.ListObjects(ctx, "shared", minio.ListObjectsOptions{Recursive: true}) {
		keys = append(keys, o.Key)
	}
	if !slices.Equal(keys, []string{"in/mount.bin", "in/s3.txt"}) {
		t.Fatalf("the bucket lists %q", keys)
	}
}
