// Transfers that stall or are refused early, through the S3 API and the
// file API: what the router answers, and what it holds meanwhile.

package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"shoal/harness"
	"shoal/secure"
)

// unreadBody is a request body that records whether the client sent it.
type unreadBody struct {
	n    int
	read bool
}

func (b *unreadBody) Read(p []byte) (int, error) {
	b.read = true
	if b.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), b.n)
	b.n -= k
	return k, nil
}

// TestRefusedUploadAnswersBeforeTheBody: a client that sends "Expect:
// 100-continue" (botocore, curl, the AWS CLI) and whose upload is refused
// gets the refusal without sending its body, on the S3 API and the file
// API alike, rather than waiting for a "100 Continue" that never comes.
func TestRefusedUploadAnswersBeforeTheBody(t *testing.T) {
	c := startS3Cluster(t)
	id, secret := c.key(c.Creds.Token, "admin")
	// The client sends its body after waiting this long for an answer:
	// well within the router's stall bound on bodies (2 minutes), after
	// which a router that waited for the body would answer anyway.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls, ExpectContinueTimeout: 30 * time.Second}}
	for _, tc := range []struct {
		name, url string
		sign      bool
		status    int
	}{
		{"s3, unsigned", "https://" + c.endpoint + "/nothere/key", false, 403},
		{"s3, no such bucket", "https://" + c.endpoint + "/nothere/key", true, 404},
		{"file API, no token", c.API + "/v1/fs/key", false, 401},
	} {
		body := &unreadBody{n: 300 << 10}
		req, _ := http.NewRequest("PUT", tc.url, body)
		req.ContentLength = int64(body.n)
		req.Header.Set("Expect", "100-continue")
		if tc.sign {
			secure.SignV4(req, id, secret, "us-east-1", time.Now())
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || body.read {
			t.Errorf("%s: status %d (want %d), body sent: %v", tc.name, resp.StatusCode, tc.status, body.read)
		}
	}
}

// TestStalledReaderBlocksNobody: a client that opens a download of a
// large object and stops reading holds what the router fetched for it,
// but never all of the read memory: another client's download of another
// large object goes through meanwhile.
func TestStalledReaderBlocksNobody(t *testing.T) {
	c := startS3Cluster(t)
	ctx := context.Background()
	id, secret := c.key(c.Creds.Token, "admin")
	m := c.minio(id, secret)
	if err := m.MakeBucket(ctx, "big", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	stalled, other := randomBytes(1, 96<<20), randomBytes(2, 24<<20)
	for k, b := range map[string][]byte{"stalled": stalled, "other": other} {
		if _, err := m.PutObject(ctx, "big", k, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := m.GetObject(ctx, "big", "stalled", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := io.ReadFull(o, make([]byte, 1)); err != nil { // the download has begun; nothing more is read
		t.Fatal(err)
	}
	// Well within the router's stall bound on writes (2 minutes), which
	// would free the stalled download's memory in the end anyway.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	o2, err := m.GetObject(wctx, "big", "other", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(o2)
	if err != nil || !bytes.Equal(got, other) {
		t.Fatalf("a download beside a stalled one: %d bytes, %v", len(got), err)
	}
}

// TestStalledDownloadIsCut: a download whose client stops reading is cut
// once a write to it has waited --body-timeout, as a body that stops
// arriving is: the client sees a short body, the router gets its memory
// back.
func TestStalledDownloadIsCut(t *testing.T) {
	c := startS3Cluster(t, "--body-timeout", "2s")
	ctx := context.Background()
	id, secret := c.key(c.Creds.Token, "admin")
	m := c.minio(id, secret)
	if err := m.MakeBucket(ctx, "big", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	b := randomBytes(3, 96<<20)
	if _, err := m.PutObject(ctx, "big", "stalled", bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	o, err := m.GetObject(ctx, "big", "stalled", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := io.ReadFull(o, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	harness.Await(t, time.Minute, "the router to cut the stalled download", func() (bool, error) {
		return strings.Contains(c.Router.Tail(200), "read aborted"), nil
	})
	if got, err := io.ReadAll(o); err == nil || len(got) >= len(b)-1 {
		t.Fatalf("the cut download read %d more bytes of %d, error %v", len(got), len(b)-1, err)
	}
}
