package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"shoal/harness"
	"shoal/secure"
)

// s3Cluster is a secure cluster whose router serves S3.
type s3Cluster struct {
	*cluster
	endpoint string // host:port
	tls      *tls.Config
}

func startS3Cluster(t *testing.T, routerFlags ...string) *s3Cluster {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}, RouterFlags: append([]string{"--s3", addr}, routerFlags...)})
	pem, err := os.ReadFile(secure.Dir(c.Secrets).CA())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &s3Cluster{cluster: c, endpoint: addr, tls: &tls.Config{RootCAs: pool}}
}

// key makes an access key for the user of token tok with the CLI.
func (c *s3Cluster) key(tok, user string) (id, secret string) {
	c.t.Helper()
	out, errOut, code := c.runAs(tok, "user", "key", "add", user)
	if code != 0 {
		c.t.Fatalf("user key add %s: %s", user, errOut)
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "AWS_ACCESS_KEY_ID="); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(l, "AWS_SECRET_ACCESS_KEY="); ok {
			secret = v
		}
	}
	if id == "" || secret == "" {
		c.t.Fatalf("user key add printed no key: %q", out)
	}
	return id, secret
}

func (c *s3Cluster) minio(id, secret string) *minio.Client {
	c.t.Helper()
	m, err := minio.New(c.endpoint, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), Secure: true,
		Transport: &http.Transport{TLSClientConfig: c.tls}})
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

func s3Code(err error) string {
	return minio.ToErrorResponse(err).Code
}

func readAll(t *testing.T, o *minio.Object) []byte {
	t.Helper()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestS3WithMinioClient drives the S3 API of a secure cluster with the
// minio-go client: buckets, objects with their metadata, ranges,
// conditions, copies, listings, batch deletes, presigned URLs and a
// multipart upload with parts sent out of order; then what a hostile or
// mistaken client tries, each refused with its S3 error and nothing
// changed; and the same files seen through the file API.
func TestS3WithMinioClient(t *testing.T) {
	c := startS3Cluster(t)
	ctx := context.Background()
	id, secret := c.key(c.Creds.Token, "admin")
	m := c.minio(id, secret)

	if err := m.MakeBucket(ctx, "photos", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.MakeBucket(ctx, "photos", minio.MakeBucketOptions{}); s3Code(err) != "BucketAlreadyOwnedByYou" {
		t.Fatalf("making the bucket again: %v", err)
	}
	if ok, err := m.BucketExists(ctx, "photos"); !ok || err != nil {
		t.Fatalf("BucketExists: %v %v", ok, err)
	}
	if ok, err := m.BucketExists(ctx, "nothere"); ok || err != nil {
		t.Fatalf("BucketExists of a bucket never made: %v %v", ok, err)
	}
	bs, err := m.ListBuckets(ctx)
	if err != nil || !slices.ContainsFunc(bs, func(b minio.BucketInfo) bool { return b.Name == "photos" }) {
		t.Fatalf("ListBuckets: %v %v", bs, err)
	}

	// Small objects, with a media type and user metadata kept.
	small := []byte("a small object, kept inline")
	info, err := m.PutObject(ctx, "photos", "2026/dec/a.txt", bytes.NewReader(small), int64(len(small)),
		minio.PutObjectOptions{ContentType: "text/plain", UserMetadata: map[string]string{"Camera": "x100"}})
	if err != nil {
		t.Fatal(err)
	}
	if sum := md5.Sum(small); info.ETag != hex.EncodeToString(sum[:]) {
		t.Fatalf("ETag %q, want the MD5 of the content", info.ETag)
	}
	st, err := m.StatObject(ctx, "photos", "2026/dec/a.txt", minio.StatObjectOptions{})
	if err != nil || st.ContentType != "text/plain" || st.UserMetadata["Camera"] != "x100" || st.Size != int64(len(small)) {
		t.Fatalf("StatObject: %+v %v", st, err)
	}
	// The standard headers an object is put with are served with it.
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := m.PutObject(ctx, "photos", "site/index.html.gz", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{
		ContentType: "text/html", ContentEncoding: "gzip", ContentDisposition: `attachment; filename="index.html"`,
		CacheControl: "max-age=60", ContentLanguage: "en", Expires: expires}); err != nil {
		t.Fatal(err)
	}
	st, err = m.StatObject(ctx, "photos", "site/index.html.gz", minio.StatObjectOptions{})
	if err != nil || st.Metadata.Get("Content-Encoding") != "gzip" || st.Metadata.Get("Cache-Control") != "max-age=60" ||
		st.Metadata.Get("Content-Disposition") != `attachment; filename="index.html"` || st.Metadata.Get("Content-Language") != "en" || !st.Expires.Equal(expires) {
		t.Fatalf("the headers an object was put with: %v %v", st.Metadata, err)
	}
	if err := m.RemoveObject(ctx, "photos", "site/index.html.gz", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// A larger one, streamed with signed chunks.
	big := make([]byte, 9<<20+123)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if _, err := m.PutObject(ctx, "photos", "2026/dec/b.raw", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{DisableMultipart: true}); err != nil {
		t.Fatal(err)
	}
	o, _ := m.GetObject(ctx, "photos", "2026/dec/b.raw", minio.GetObjectOptions{})
	if got := readAll(t, o); !bytes.Equal(got, big) {
		t.Fatalf("GetObject: %d bytes back, not what was put", len(got))
	}
	ro := minio.GetObjectOptions{}
	ro.SetRange(5<<20-10, 5<<20+9)
	o, _ = m.GetObject(ctx, "photos", "2026/dec/b.raw", ro)
	if got := readAll(t, o); !bytes.Equal(got, big[5<<20-10:5<<20+10]) {
		t.Fatalf("a range across a chunk boundary: %d bytes, not the range", len(got))
	}
	// Conditions.
	co := minio.GetObjectOptions{}
	co.SetMatchETag("0123")
	o, _ = m.GetObject(ctx, "photos", "2026/dec/a.txt", co)
	if _, err := io.ReadAll(o); s3Code(err) != "PreconditionFailed" {
		t.Fatalf("GET with If-Match of another ETag: %v", err)
	}
	co = minio.GetObjectOptions{}
	co.SetModified(time.Now().Add(time.Hour))
	o, _ = m.GetObject(ctx, "photos", "2026/dec/a.txt", co)
	if _, err := io.ReadAll(o); err == nil {
		t.Fatal("GET with If-Modified-Since in the future served the object")
	}
	// Copies: by metadata, keeping or replacing the metadata.
	if _, err := m.CopyObject(ctx, minio.CopyDestOptions{Bucket: "photos", Object: "copy/a.txt"},
		minio.CopySrcOptions{Bucket: "photos", Object: "2026/dec/a.txt"}); err != nil {
		t.Fatal(err)
	}
	st, err = m.StatObject(ctx, "photos", "copy/a.txt", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Camera"] != "x100" || st.ETag != info.ETag {
		t.Fatalf("a copy: %+v %v", st, err)
	}
	if _, err := m.CopyObject(ctx, minio.CopyDestOptions{Bucket: "photos", Object: "copy/a.txt", ReplaceMetadata: true,
		UserMetadata: map[string]string{"Lens": "23mm"}}, minio.CopySrcOptions{Bucket: "photos", Object: "copy/a.txt"}); err != nil {
		t.Fatal(err)
	}
	if st, err = m.StatObject(ctx, "photos", "copy/a.txt", minio.StatObjectOptions{}); err != nil || st.UserMetadata["Lens"] != "23mm" || st.UserMetadata["Camera"] != "" {
		t.Fatalf("a copy onto itself replacing the metadata: %+v %v", st.UserMetadata, err)
	}

	// A multipart upload of 200 MiB, parts sent out of order.
	const part = 50 << 20
	huge := make([]byte, 4*part)
	for i := 0; i < len(huge); i += 4096 {
		huge[i] = byte(i >> 12)
	}
	core := minio.Core{Client: m}
	up, err := core.NewMultipartUpload(ctx, "photos", "video/big.mp4", minio.PutObjectOptions{ContentType: "video/mp4"})
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]minio.CompletePart, 4)
	for _, n := range []int{3, 1, 4, 2} {
		p, err := core.PutObjectPart(ctx, "photos", "video/big.mp4", up, n, bytes.NewReader(huge[(n-1)*part:n*part]), part, minio.PutObjectPartOptions{})
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		parts[n-1] = minio.CompletePart{PartNumber: n, ETag: p.ETag}
	}
	lp, err := core.ListObjectParts(ctx, "photos", "video/big.mp4", up, 0, 1000)
	if err != nil || len(lp.ObjectParts) != 4 || lp.ObjectParts[0].PartNumber != 1 {
		t.Fatalf("ListObjectParts: %+v %v", lp.ObjectParts, err)
	}
	// Refused completions change nothing: parts out of order, a part
	// never sent.
	if _, err := core.CompleteMultipartUpload(ctx, "photos", "video/big.mp4", up, []minio.CompletePart{parts[1], parts[0]}, minio.PutObjectOptions{}); s3Code(err) != "InvalidPartOrder" {
		t.Fatalf("completing with parts out of order: %v", err)
	}
	if _, err := core.CompleteMultipartUpload(ctx, "photos", "video/big.mp4", up, append(slices.Clone(parts), minio.CompletePart{PartNumber: 9, ETag: parts[0].ETag}), minio.PutObjectOptions{}); s3Code(err) != "InvalidPart" {
		t.Fatalf("completing with a part never sent: %v", err)
	}
	if _, err := m.StatObject(ctx, "photos", "video/big.mp4", minio.StatObjectOptions{}); s3Code(err) != "NoSuchKey" {
		t.Fatalf("a refused completion made the object: %v", err)
	}
	done, err := core.CompleteMultipartUpload(ctx, "photos", "video/big.mp4", up, parts, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var md5s []byte
	for n := range 4 {
		s := md5.Sum(huge[n*part : (n+1)*part])
		md5s = append(md5s, s[:]...)
	}
	if s := md5.Sum(md5s); done.ETag != hex.EncodeToString(s[:])+"-4" {
		t.Fatalf("multipart ETag %q, want the MD5 of the parts' MD5s and -4", done.ETag)
	}
	o, _ = m.GetObject(ctx, "photos", "video/big.mp4", minio.GetObjectOptions{})
	if got := readAll(t, o); !bytes.Equal(got, huge) {
		t.Fatalf("the multipart object reads back %d bytes, not what was sent", len(got))
	}
	// UploadPartCopy, as ComposeObject sends it: a range cutting through
	// chunks of the big object, then the whole small one.
	composed, err := m.ComposeObject(ctx, minio.CopyDestOptions{Bucket: "photos", Object: "clip.mp4"},
		minio.CopySrcOptions{Bucket: "photos", Object: "video/big.mp4", MatchRange: true, Start: 1<<20 + 3, End: 7<<20 - 1},
		minio.CopySrcOptions{Bucket: "photos", Object: "2026/dec/a.txt"})
	if err != nil {
		t.Fatalf("ComposeObject: %v", err)
	}
	p1, p2 := md5.Sum(huge[1<<20+3:7<<20]), md5.Sum(small)
	if s := md5.Sum(append(p1[:], p2[:]...)); composed.ETag != hex.EncodeToString(s[:])+"-2" {
		t.Fatalf("the composed object's ETag %q is not the MD5 of its parts' MD5s and -2", composed.ETag)
	}
	o, _ = m.GetObject(ctx, "photos", "clip.mp4", minio.GetObjectOptions{})
	if got, want := readAll(t, o), append(slices.Clone(huge[1<<20+3:7<<20]), small...); !bytes.Equal(got, want) {
		t.Fatalf("the composed object reads %d bytes, want %d of its sources", len(got), len(want))
	}
	if err := m.RemoveObject(ctx, "photos", "clip.mp4", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// The same file through the file API.
	back := filepath.Join(t.TempDir(), "back")
	if _, errOut, code := c.run("get", "/photos/video/big.mp4", back); code != 0 {
		t.Fatalf("get through the file API: %s", errOut)
	}
	if got, _ := os.ReadFile(back); !bytes.Equal(got, huge) {
		t.Fatal("the file API reads other bytes than S3 wrote")
	}
	// And a file put through the file API is an object.
	local := filepath.Join(t.TempDir(), "notes.md")
	os.WriteFile(local, []byte("# notes\n"), 0o644)
	if _, errOut, code := c.run("put", local, "/photos/docs/notes.md"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	o, _ = m.GetObject(ctx, "photos", "docs/notes.md", minio.GetObjectOptions{})
	if got := readAll(t, o); string(got) != "# notes\n" {
		t.Fatalf("S3 reads %q of a file the file API wrote", got)
	}

	// Listings, v2 and v1, flat and by delimiter, in pages.
	keys := func(opts minio.ListObjectsOptions) []string {
		var out []string
		for o := range m.ListObjects(ctx, "photos", opts) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			out = append(out, o.Key)
		}
		return out
	}
	all := []string{"2026/dec/a.txt", "2026/dec/b.raw", "copy/a.txt", "docs/notes.md", "video/big.mp4"}
	if got := keys(minio.ListObjectsOptions{Recursive: true}); !slices.Equal(got, all) {
		t.Fatalf("ListObjectsV2 recursive: %q", got)
	}
	if got := keys(minio.ListObjectsOptions{Recursive: true, UseV1: true, MaxKeys: 2}); !slices.Equal(got, all) {
		t.Fatalf("ListObjects v1 in pages of 2: %q", got)
	}
	if got := keys(minio.ListObjectsOptions{Recursive: true, MaxKeys: 1}); !slices.Equal(got, all) {
		t.Fatalf("ListObjectsV2 in pages of 1: %q", got)
	}
	if got := keys(minio.ListObjectsOptions{}); !slices.Equal(got, []string{"2026/", "copy/", "docs/", "video/"}) {
		t.Fatalf("ListObjectsV2 by /: %q", got)
	}
	if got := keys(minio.ListObjectsOptions{Prefix: "2026/d", Recursive: true, StartAfter: "2026/dec/a.txt"}); !slices.Equal(got, []string{"2026/dec/b.raw"}) {
		t.Fatalf("ListObjectsV2 by prefix after a key: %q", got)
	}

	// Presigned URLs: a GET works until it expires.
	u, err := m.PresignedGetObject(ctx, "photos", "2026/dec/a.txt", 2*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls}}
	get := func(url string) (int, []byte) {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := get(u.String()); code != 200 || !bytes.Equal(body, small) {
		t.Fatalf("a presigned GET: %d %s", code, body)
	}
	harness.Await(t, 10*time.Second, "the presigned URL to expire", func() (bool, error) {
		code, body := get(u.String())
		return code == 403 && bytes.Contains(body, []byte("expired")), nil
	})
	if u, err = m.PresignedGetObject(ctx, "photos", "2026/dec/a.txt", time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	sig := u.Query().Get("X-Amz-Signature")
	flipped := strings.Map(func(r rune) rune {
		if r == '0' {
			return '1'
		}
		return '0'
	}, sig[:1]) + sig[1:]
	if code, body := get(strings.Replace(u.String(), sig, flipped, 1)); code != 403 || !bytes.Contains(body, []byte("SignatureDoesNotMatch")) {
		t.Fatalf("a presigned URL with its signature changed: %d %s", code, body)
	}
	if code, body := get("https://" + c.endpoint + "/photos/2026/dec/a.txt"); code != 403 || !bytes.Contains(body, []byte("AccessDenied")) {
		t.Fatalf("an anonymous GET: %d %s", code, body)
	}

	// Hostile and mistaken requests: each refused, nothing changed.
	wrong := c.minio(id, "not the secret at all, but as long as one")
	if _, err := wrong.PutObject(ctx, "photos", "x", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); s3Code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("a wrong secret: %v", err)
	}
	if _, err := c.minio("SHAAAAAAAAAAAAAAAAAA", secret).ListBuckets(ctx); s3Code(err) != "InvalidAccessKeyId" {
		t.Fatalf("an unknown access key: %v", err)
	}
	for _, k := range []string{"a/../b", "a//b", "./x", strings.Repeat("k", 1025)} {
		if _, err := m.PutObject(ctx, "photos", k, bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); err == nil {
			t.Errorf("key %.40q was taken", k)
		}
	}
	if _, err := m.PutObject(ctx, "photos", "meta", bytes.NewReader(small), int64(len(small)),
		minio.PutObjectOptions{UserMetadata: map[string]string{"Big": strings.Repeat("v", 3000)}}); s3Code(err) != "MetadataTooLarge" {
		t.Fatalf("oversize metadata: %v", err)
	}
	// What the API does not do is refused, not half done: a client key
	// (SSE-C), tags, another storage class, object lock.
	ssec, _ := encrypt.NewSSEC(bytes.Repeat([]byte("k"), 32))
	for name, opts := range map[string]minio.PutObjectOptions{
		"SSE-C":         {ServerSideEncryption: ssec},
		"tags":          {UserTags: map[string]string{"a": "b"}},
		"storage class": {StorageClass: "GLACIER"},
		"object lock":   {Mode: minio.Governance, RetainUntilDate: time.Now().Add(time.Hour)},
	} {
		if _, err := m.PutObject(ctx, "photos", "refused", bytes.NewReader(small), int64(len(small)), opts); s3Code(err) != "NotImplemented" {
			t.Errorf("a PUT asking for %s: %v", name, err)
		}
	}
	// Encryption with the cluster's keys is what it does anyway.
	if _, err := m.PutObject(ctx, "photos", "sse", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE()}); err != nil {
		t.Fatalf("a PUT asking for SSE-S3 of a cluster that seals content: %v", err)
	}
	if err := m.RemoveObject(ctx, "photos", "sse", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another user: no access to the admin's private bucket, not even
	// to list it; their own bucket works.
	if _, errOut, code := c.run("user", "add", "alice"); code != 0 {
		t.Fatal(errOut)
	}
	// A root anyone may make directories in, as /tmp: buckets are
	// directories at the root, and their makers own them.
	if code, _, body := c.do("POST", "/v1/fs/?op=setattr&mode=1777", nil); code != 200 {
		t.Fatalf("chmod 1777 /: %d %s", code, body)
	}
	aliceTok := func() string {
		out, errOut, code := c.run("user", "token", "rotate", "alice")
		if code != 0 {
			t.Fatal(errOut)
		}
		return strings.TrimSpace(out)
	}()
	aid, asecret := c.key(aliceTok, "alice")
	alice := c.minio(aid, asecret)
	if _, err := alice.PutObject(ctx, "photos", "mine.txt", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); s3Code(err) != "AccessDenied" {
		t.Fatalf("alice writes into the admin's bucket: %v", err)
	}
	o, _ = alice.GetObject(ctx, "photos", "2026/dec/a.txt", minio.GetObjectOptions{})
	if _, err := io.ReadAll(o); s3Code(err) != "AccessDenied" {
		t.Fatalf("alice reads the admin's object: %v", err)
	}
	for o := range alice.ListObjects(ctx, "photos", minio.ListObjectsOptions{Recursive: true}) {
		if s3Code(o.Err) != "AccessDenied" {
			t.Fatalf("alice lists the admin's bucket: %v %q", o.Err, o.Key)
		}
	}
	// A signature made with the admin's secret under alice's key ID.
	if _, err := c.minio(aid, secret).ListBuckets(ctx); s3Code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("alice's key ID signed with another user's secret: %v", err)
	}
	// Nor may alice make the admin's bucket public, to read it unsigned.
	acl, _ := http.NewRequest("PUT", "https://"+c.endpoint+"/photos?acl", nil)
	acl.Header.Set("x-amz-acl", "public-read")
	secure.SignV4(acl, aid, asecret, "us-east-1", time.Now())
	if resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: c.tls}}).Do(acl); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !bytes.Contains(body, []byte("AccessDenied")) {
			t.Fatalf("alice makes the admin's bucket public-read: %d %s", resp.StatusCode, body)
		}
	}
	if code, body := get("https://" + c.endpoint + "/photos/2026/dec/a.txt"); code != 403 {
		t.Fatalf("an anonymous GET after alice's refused ACL change: %d %s", code, body)
	}
	// Made public-read by its owner, the bucket is readable by alice too
	// (public means everyone, signed or not), and still not writable.
	setACL := func(acl string) {
		req, _ := http.NewRequest("PUT", "https://"+c.endpoint+"/photos?acl", nil)
		req.Header.Set("x-amz-acl", acl)
		secure.SignV4(req, id, secret, "us-east-1", time.Now())
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("the admin sets the ACL %s: %d", acl, resp.StatusCode)
		}
	}
	setACL("public-read")
	o, _ = alice.GetObject(ctx, "photos", "2026/dec/a.txt", minio.GetObjectOptions{})
	if got := readAll(t, o); !bytes.Equal(got, small) {
		t.Fatalf("alice reads an object of a public-read bucket: %q", got)
	}
	n := 0
	for o := range alice.ListObjects(ctx, "photos", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("alice lists a public-read bucket: %v", o.Err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("alice's listing of a public-read bucket is empty")
	}
	if _, err := alice.PutObject(ctx, "photos", "mine.txt", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); s3Code(err) != "AccessDenied" {
		t.Fatalf("alice writes into a public-read bucket: %v", err)
	}
	setACL("private")
	o, _ = alice.GetObject(ctx, "photos", "2026/dec/a.txt", minio.GetObjectOptions{})
	if _, err := io.ReadAll(o); s3Code(err) != "AccessDenied" {
		t.Fatalf("alice reads once the bucket is private again: %v", err)
	}
	if err := alice.MakeBucket(ctx, "alices", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PutObject(ctx, "alices", "mine.txt", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// A bucket removed and made again behind the S3 API's back (through
	// the file API), at once: the router, which had it in its cache,
	// writes and deletes in the new directory, not in the one that went.
	for _, args := range [][]string{{"rm", "-r", "/alices"}, {"mkdir", "/alices"}} {
		if _, errOut, code := c.runAs(aliceTok, args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	for _, k := range []string{"again.txt", "gone.txt"} {
		if _, err := alice.PutObject(ctx, "alices", k, bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("a PUT into the bucket made again: %v", err)
		}
	}
	for _, args := range [][]string{{"rm", "-r", "/alices"}, {"mkdir", "/alices"}, {"put", "-", "/alices/gone.txt"}} {
		if _, errOut, code := c.runAs(aliceTok, args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	if err := alice.RemoveObject(ctx, "alices", "gone.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.runAs(aliceTok, "exists", "/alices/gone.txt"); code != 1 {
		t.Fatalf("a DELETE in the bucket made again left the file (exists: %d %s)", code, errOut)
	}
	if got := keys(minio.ListObjectsOptions{Recursive: true}); !slices.Equal(got, all) {
		t.Fatalf("after the refused requests the bucket holds %q", got)
	}

	// Deletes: one, then a batch; emptied prefixes go with them.
	if err := m.RemoveObject(ctx, "photos", "copy/a.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	objs := make(chan minio.ObjectInfo, 3)
	for _, k := range []string{"2026/dec/a.txt", "2026/dec/b.raw", "never/was"} {
		objs <- minio.ObjectInfo{Key: k}
	}
	close(objs)
	for e := range m.RemoveObjects(ctx, "photos", objs, minio.RemoveObjectsOptions{}) {
		t.Errorf("RemoveObjects: %s: %v", e.ObjectName, e.Err)
	}
	if got := keys(minio.ListObjectsOptions{}); !slices.Equal(got, []string{"docs/", "video/"}) {
		t.Fatalf("after the deletes, the top of the bucket: %q", got)
	}
	if err := m.RemoveBucket(ctx, "photos"); s3Code(err) != "BucketNotEmpty" {
		t.Fatalf("removing a bucket with objects: %v", err)
	}
	for _, k := range []string{"docs/notes.md", "video/big.mp4"} {
		if err := m.RemoveObject(ctx, "photos", k, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RemoveBucket(ctx, "photos"); err != nil {
		t.Fatalf("removing the emptied bucket: %v", err)
	}
	// A removed key stops working at once on this router.
	if _, errOut, code := c.run("user", "key", "remove", "alice", aid); code != 0 {
		t.Fatal(errOut)
	}
	if _, err := alice.ListBuckets(ctx); s3Code(err) != "InvalidAccessKeyId" {
		t.Fatalf("a removed key: %v", err)
	}
}
