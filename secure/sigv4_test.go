package secure

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

const (
	testKey    = "AKIAIOSFODNN7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// sigServer checks every request it gets with the secret and answers 200
// with the body it read, or 403 with the error.
func sigServer(t *testing.T, now func() time.Time) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := ParseSigV4(r)
		if err == nil && v.AccessKey != testKey {
			err = errors.New("wrong access key " + v.AccessKey)
		}
		if err == nil {
			err = v.Verify(r, v.SigningKey(testSecret), now())
		}
		var body io.Reader
		if err == nil {
			body, _, err = v.Body(r, v.SigningKey(testSecret))
		}
		var got []byte
		if err == nil {
			got, err = io.ReadAll(body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.Write(got)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

func TestSigV4Header(t *testing.T) {
	srv := sigServer(t, time.Now)
	body := []byte("hello, signed world")
	sum := sha256.Sum256(body)
	newReq := func(secret string) *http.Request {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/a%20b/c+d/%C3%A9t%C3%A9~.txt?uploadId=x%2Fy&partNumber=2&empty=", bytes.NewReader(body))
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		req.Header.Set("X-Amz-Meta-Note", "  two   spaces ")
		return signer.SignV4(*req, testKey, secret, "", "us-east-1")
	}
	if code, got := send(t, newReq(testSecret)); code != 200 || got != string(body) {
		t.Fatalf("a signed PUT: %d %s", code, got)
	}
	if code, got := send(t, newReq("another secret")); code != 403 || !strings.Contains(got, "signature does not match") {
		t.Fatalf("another secret: %d %s", code, got)
	}
	// Whatever is changed after signing is refused: a query parameter, a
	// signed header, the path, the body.
	for name, tamper := range map[string]func(r *http.Request){
		"query":  func(r *http.Request) { r.URL.RawQuery += "&x=1" },
		"header": func(r *http.Request) { r.Header.Set("X-Amz-Meta-Note", "other") },
		"path":   func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/bucket/other", "" },
		"method": func(r *http.Request) { r.Method = http.MethodPost },
	} {
		req := newReq(testSecret)
		tamper(req)
		if code, got := send(t, req); code != 403 || !strings.Contains(got, "signature does not match") {
			t.Errorf("%s changed after signing: %d %s", name, code, got)
		}
	}
	req := newReq(testSecret)
	req.Body = io.NopCloser(strings.NewReader("hello, signed worle"))
	if code, got := send(t, req); code != 403 || !strings.Contains(got, "x-amz-content-sha256") {
		t.Errorf("a body that is not the signed one: %d %s", code, got)
	}
	// A date far from the server's clock.
	late := sigServer(t, func() time.Time { return time.Now().Add(time.Hour) })
	req = newReq(testSecret)
	req.URL.Host = strings.TrimPrefix(late.URL, "http://")
	req.Host = req.URL.Host
	req = signer.SignV4(*req, testKey, testSecret, "", "us-east-1")
	if code, got := send(t, req); code != 403 || !strings.Contains(got, "expired") {
		t.Errorf("a request an hour old: %d %s", code, got)
	}
}

func TestSigV4Presigned(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	srv := sigServer(t, func() time.Time { return clock() })
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/bucket/key with space", nil)
	pre := signer.PreSignV4(*req, testKey, testSecret, "", "us-east-1", 60)
	url := pre.URL.String()
	get := func() (int, string) {
		r, _ := http.NewRequest(http.MethodGet, url, nil)
		return send(t, r)
	}
	if code, got := get(); code != 200 {
		t.Fatalf("a presigned GET: %d %s", code, got)
	}
	clock = func() time.Time { return now.Add(2 * time.Minute) }
	if code, got := get(); code != 403 || !strings.Contains(got, "expired") {
		t.Fatalf("a presigned GET after its expiry: %d %s", code, got)
	}
	clock = func() time.Time { return now }
	url = strings.Replace(pre.URL.String(), "X-Amz-Expires=60", "X-Amz-Expires=6000", 1)
	if code, got := get(); code != 403 || !strings.Contains(got, "signature does not match") {
		t.Fatalf("a presigned GET with its expiry lengthened: %d %s", code, got)
	}
	url = strings.Replace(pre.URL.String(), "X-Amz-Expires=60", "X-Amz-Expires=700000", 1)
	if code, got := get(); code != 403 || !strings.Contains(got, "7 days") {
		t.Fatalf("a presigned GET valid for more than 7 days: %d %s", code, got)
	}
}

func TestSigV4Streaming(t *testing.T) {
	srv := sigServer(t, time.Now)
	body := make([]byte, 200<<10+17)
	for i := range body {
		body[i] = byte(rand.IntN(256))
	}
	newReq := func(content []byte) *http.Request {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/big", bytes.NewReader(content))
		return signer.StreamingSignV4(req, testKey, testSecret, "", "us-east-1", int64(len(content)), time.Now().UTC(), sha256Hasher{sha256.New()})
	}
	if code, got := send(t, newReq(body)); code != 200 || got != string(body) {
		t.Fatalf("a streamed PUT: %d, %d bytes back", code, len(got))
	}
	if code, got := send(t, newReq(nil)); code != 200 || got != "" {
		t.Fatalf("an empty streamed PUT: %d %q", code, got)
	}
	// A byte changed in the encoded body fails its chunk's signature.
	req := newReq(body)
	enc, _ := io.ReadAll(req.Body)
	enc[len(enc)/2] ^= 1
	req.Body = io.NopCloser(bytes.NewReader(enc))
	if code, got := send(t, req); code != 403 || !strings.Contains(got, "does not match") {
		t.Fatalf("a streamed PUT changed in transit: %d %s", code, got)
	}
	// A body cut short.
	req = newReq(body)
	enc, _ = io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(enc[:len(enc)-100]))
	req.ContentLength = int64(len(enc) - 100)
	if code, got := send(t, req); code != 403 || !strings.Contains(got, "aws-chunked") {
		t.Fatalf("a streamed PUT cut short: %d %s", code, got)
	}
}

func TestUnsignedTrailer(t *testing.T) {
	srv := sigServer(t, time.Now)
	body := bytes.Repeat([]byte("trailing checksum "), 10000)
	// As newer SDKs send a PUT: aws-chunked, unsigned chunks, a CRC32 of
	// the content in a trailer.
	newReq := func(crc uint32) *http.Request {
		var enc bytes.Buffer
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 64<<10)
			fmt.Fprintf(&enc, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		sum := binary.BigEndian.AppendUint32(nil, crc)
		fmt.Fprintf(&enc, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", base64.StdEncoding.EncodeToString(sum))
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/t", &enc)
		req.Header.Set("X-Amz-Content-Sha256", StreamingUnsignedTrail)
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(body)))
		return signer.SignV4(*req, testKey, testSecret, "", "us-east-1")
	}
	if code, got := send(t, newReq(crc32.ChecksumIEEE(body))); code != 200 || got != string(body) {
		t.Fatalf("a PUT with a trailing checksum: %d %.200s", code, got)
	}
	if code, got := send(t, newReq(crc32.ChecksumIEEE(body)+1)); code != 403 || !strings.Contains(got, "x-amz-checksum-crc32") {
		t.Fatalf("a PUT whose trailing checksum is wrong: %d %.200s", code, got)
	}
}

func TestSigV4Malformed(t *testing.T) {
	for _, c := range []struct{ auth, query, want string }{
		{"", "", "not signed"},
		{"AWS " + testKey + ":sig", "", "version 2"},
		{"", "AWSAccessKeyId=x&Signature=y", "version 2"},
		{"Bearer x", "", "scheme"},
		{"AWS4-HMAC-SHA256 Credential=" + testKey + "/2026/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00", "", "credential"},
		{"AWS4-HMAC-SHA256 Credential=" + testKey + "/20260101/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=" + strings.Repeat("0", 64), "", "host"},
		{"AWS4-HMAC-SHA256 Credential=" + testKey + "/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=zz", "", "hex"},
		{"AWS4-HMAC-SHA256 Credential=" + testKey + "/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64), "", "X-Amz-Date"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/b/k?"+c.query, nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		if _, err := ParseSigV4(r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %q: got %v, want an error about %s", c.auth, c.query, err, c.want)
		}
	}
}

// SignV4 makes what the verifier, and so S3 clients' servers, accept.
func TestSignV4(t *testing.T) {
	srv := sigServer(t, time.Now)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/some key/with+plus?partNumber=1&uploadId=x%2Fy", strings.NewReader("body"))
	SignV4(req, testKey, testSecret, "us-east-1", time.Now())
	if code, got := send(t, req); code != 200 || got != "body" {
		t.Fatalf("a request SignV4 signed: %d %s", code, got)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/bucket/k", nil)
	SignV4(req, testKey, "another secret", "us-east-1", time.Now())
	if code, got := send(t, req); code != 403 {
		t.Fatalf("signed with another secret: %d %s", code, got)
	}
}
