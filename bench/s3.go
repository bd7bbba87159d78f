package bench

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"shoal/secure"
)

// S3Result is the S3 API measured beside the file API, in the same reps on
// the same cluster: the small workload's 1 KiB files and one large file,
// through each.
type S3Result struct {
	Files   int   `json:"files"`
	Clients int   `json:"clients"`
	Large   int64 `json:"large_bytes"`
	// The file API's and the S3 API's figures, and S3's over the API's,
	// per rep.
	APIWritesPerSec Figure `json:"api_writes_per_sec"`
	S3WritesPerSec  Figure `json:"s3_writes_per_sec"`
	WriteRatio      Figure `json:"write_ratio"`
	APIReadsPerSec  Figure `json:"api_reads_per_sec"`
	S3ReadsPerSec   Figure `json:"s3_reads_per_sec"`
	ReadRatio       Figure `json:"read_ratio"`
	APIUpMBps       Figure `json:"api_up_mbps"`
	S3UpMBps        Figure `json:"s3_up_mbps"`
	UpRatio         Figure `json:"up_ratio"`
	APIDownMBps     Figure `json:"api_down_mbps"`
	S3DownMBps      Figure `json:"s3_down_mbps"`
	DownRatio       Figure `json:"down_ratio"`
}

// s3FS is the cluster through its S3 API: a path /BUCKET/KEY is the key
// KEY of bucket BUCKET. Requests are signed with an access key, or not at
// all for a cluster run with --insecure.
type s3FS struct {
	hc         *http.Client
	endpoint   string // https://host:port
	id, secret string // "" for --insecure
}

func (f s3FS) do(ctx context.Context, method, p string, q url.Values, body io.Reader, size int64, hdr http.Header) (*http.Response, error) {
	u := f.endpoint + (&url.URL{Path: p}).EscapedPath()
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := newRequest(ctx, method, u, body, size, hdr)
	if err != nil {
		return nil, err
	}
	if f.id != "" {
		secure.SignV4(req, f.id, f.secret, "us-east-1", time.Now())
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("S3 %s %s: %s: %s", method, p, resp.Status, b)
	}
	return resp, nil
}

func (f s3FS) call(ctx context.Context, method, p string, q url.Values, hdr http.Header) error {
	resp, err := f.do(ctx, method, p, q, nil, 0, hdr)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func (f s3FS) Healthy(ctx context.Context) error { return f.call(ctx, "GET", "/", nil, nil) }

// MkdirAll does nothing: a PUT makes the directories its key names.
func (f s3FS) MkdirAll(context.Context, string) error { return nil }

func (f s3FS) Put(ctx context.Context, p string, body io.Reader, size int64) error {
	resp, err := f.do(ctx, "PUT", p, nil, body, size, nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func (f s3FS) Get(ctx context.Context, p string) (io.ReadCloser, error) {
	resp, err := f.do(ctx, "GET", p, nil, nil, 0, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (f s3FS) ReadFile(ctx context.Context, p string) ([]byte, error) {
	rc, err := f.Get(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (f s3FS) Stat(ctx context.Context, p string) (int64, error) {
	resp, err := f.do(ctx, "HEAD", p, nil, nil, 0, nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

func (f s3FS) Exists(ctx context.Context, p string) (bool, error) {
	_, err := f.Stat(ctx, p)
	if err != nil && strings.Contains(err.Error(), "404") {
		return false, nil
	}
	return err == nil, err
}

func (f s3FS) Copy(ctx context.Context, src, dst string) error {
	return f.call(ctx, "PUT", dst, nil, http.Header{"X-Amz-Copy-Source": {url.PathEscape(strings.TrimPrefix(src, "/"))}})
}

func (f s3FS) Rename(ctx context.Context, src, dst string) error {
	if err := f.Copy(ctx, src, dst); err != nil {
		return err
	}
	return f.Delete(ctx, src, false)
}

func (f s3FS) Delete(ctx context.Context, p string, _ bool) error {
	return f.call(ctx, "DELETE", p, nil, nil)
}

// Count lists the keys directly under the directory p.
func (f s3FS) Count(ctx context.Context, p string) (int, error) {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	n, token := 0, ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix + "/"}, "delimiter": {"/"}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := f.do(ctx, "GET", "/"+bucket, q, nil, 0, nil)
		if err != nil {
			return 0, err
		}
		var res struct {
			Contents              []struct{ Key string }
			CommonPrefixes        []struct{ Prefix string }
			IsTruncated           bool
			NextContinuationToken string
		}
		err = xml.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		n += len(res.Contents) + len(res.CommonPrefixes)
		if !res.IsTruncated {
			return n, nil
		}
		token = res.NextContinuationToken
	}
}

// s3FS returns the cluster's S3 API as a fileSystem, with an access key
// made for the caller (and what removes it), or unsigned with --insecure.
func (e *env) s3FS(ctx context.Context) (s3FS, func(), error) {
	f := s3FS{hc: e.hc, endpoint: strings.TrimSuffix(e.cfg.S3, "/")}
	if e.local != nil {
		f.endpoint = e.local.s3
	}
	if f.endpoint == "" {
		return f, nil, fmt.Errorf("%w: the s3 workload needs the S3 endpoint of the cluster: give --s3 URL (or use --local)", ErrConfig)
	}
	if f.hc == nil {
		cfg, err := e.creds.Config()
		if err != nil {
			return f, nil, err
		}
		f.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg.TLS, MaxIdleConnsPerHost: 64}}
	}
	if e.creds.Token == "" {
		return f, func() {}, nil
	}
	me, err := e.cl.WhoAmI(ctx)
	if err != nil {
		return f, nil, err
	}
	k, err := e.cl.AddAccessKey(ctx, me.Name)
	if err != nil {
		return f, nil, fmt.Errorf("make an access key for the s3 workload: %w", err)
	}
	f.id, f.secret = k.ID, k.Secret
	return f, func() { e.cl.RemoveAccessKey(context.WithoutCancel(ctx), me.Name, k.ID) }, nil
}

// runS3 measures the S3 API beside the file API: in each rep the small
// workload and one large file through the file API, then through S3.
func (e *env) runS3(ctx context.Context) (*S3Result, error) {
	f, done, err := e.s3FS(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	api := e.fs
	defer func() { e.fs, e.pass = api, "" }()
	size := e.cfg.S3Size
	var aw, sw, wr, ar, sr, rr, au, su, ur, ad, sd, dr []float64
	for rep := range e.cfg.Reps {
		e.fs, e.pass = api, "file API"
		a, err := e.smallRep(ctx, 2*rep)
		if err != nil {
			return nil, err
		}
		al, err := e.largeRep(ctx, 0, size, 2*rep)
		if err != nil {
			return nil, err
		}
		e.fs, e.pass = f, "S3"
		s, err := e.smallRep(ctx, 2*rep+1)
		if err != nil {
			return nil, fmt.Errorf("through S3: %w", err)
		}
		sl, err := e.largeRep(ctx, 0, size, 2*rep+1)
		if err != nil {
			return nil, fmt.Errorf("through S3: %w", err)
		}
		aw, sw, wr = append(aw, a.writesPerSec), append(sw, s.writesPerSec), append(wr, s.writesPerSec/a.writesPerSec)
		ar, sr, rr = append(ar, a.readsPerSec), append(sr, s.readsPerSec), append(rr, s.readsPerSec/a.readsPerSec)
		au, su, ur = append(au, al.up), append(su, sl.up), append(ur, sl.up/al.up)
		ad, sd, dr = append(ad, al.down), append(sd, sl.down), append(dr, sl.down/al.down)
	}
	return &S3Result{Files: e.cfg.SmallFiles, Clients: e.cfg.SmallClients, Large: size,
		APIWritesPerSec: figureOf(aw), S3WritesPerSec: figureOf(sw), WriteRatio: figureOf(wr),
		APIReadsPerSec: figureOf(ar), S3ReadsPerSec: figureOf(sr), ReadRatio: figureOf(rr),
		APIUpMBps: figureOf(au), S3UpMBps: figureOf(su), UpRatio: figureOf(ur),
		APIDownMBps: figureOf(ad), S3DownMBps: figureOf(sd), DownRatio: figureOf(dr)}, nil
}
