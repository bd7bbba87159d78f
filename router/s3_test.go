package router

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func s3Do(h http.Handler, method, target string, body []byte, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// newS3Bucket serves the S3 API of a router before a group of three, with
// the bucket bkt made.
func newS3Bucket(t testEnv) (http.Handler, *Server) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<30)
	s := c.router(nil)
	h := s.S3(S3Config{})
	if w := s3Do(h, "PUT", "/bkt", nil); w.Code != 200 {
		t.Fatalf("CreateBucket: %d %s", w.Code, w.Body)
	}
	return h, s
}

func TestS3KeyMapping(t *testing.T) {
	for _, k := range []string{"a", "a/b", "a b/c+d", "dir/", "é/ü", strings.Repeat("k", 255)} {
		if err := checkKey(k); err != nil {
			t.Errorf("key %q refused: %v", k, err)
		}
	}
	for _, k := range []string{"a//b", "/a", "a/./b", "a/..", "..", ".", "a\x00b", "\xff", strings.Repeat("k", 256), strings.Repeat("a/", 513)} {
		if err := checkKey(k); err == nil {
			t.Errorf("key %.40q taken", k)
		}
	}
	for _, b := range []string{"abc", "my-bucket.2", "a.b-c"} {
		if !validBucket(b) {
			t.Errorf("bucket %q refused", b)
		}
	}
	for _, b := range []string{"ab", "ABC", "-ab", "ab-", "a..b", "foo.-bar", "foo-.bar", "192.168.1.1", strings.Repeat("a", 64), ".s3-uploads", "a_b"} {
		if validBucket(b) {
			t.Errorf("bucket %q taken", b)
		}
	}
}

// modelList is what S3 answers a listing of keys: those with prefix after
// after, folded by delim, at most limit.
func modelList(keys []string, prefix, delim, after string, limit int) (out []string, truncated bool) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	last := ""
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || k <= after {
			continue
		}
		e := k
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				e = prefix + k[len(prefix):][:i+len(delim)] + "\x00" // a common prefix
				if e == last || strings.TrimSuffix(e, "\x00") <= after {
					continue
				}
			}
		}
		if len(out) == limit {
			return out, true
		}
		out, last = append(out, e), e
	}
	return out, false
}

// TestS3ListingsAgainstAModel puts random keys (that map to paths) and
// compares every listing, in pages, by prefix and delimiter, v1 and v2,
// with what S3 answers for the same keys: keys in byte order ("a-b"
// before "a/c", though the directory a comes before the file a-b),
// common prefixes once, empty directories left out.
func TestS3ListingsAgainstAModel(t *testing.T) {
	h, s := newS3Bucket(t)
	rnd := rand.New(rand.NewPCG(7, 11))
	const alphabet = "ab-./"
	var keys []string
	conflicts := func(k string) bool {
		for _, o := range keys {
			if o == k || strings.HasPrefix(o, k+"/") || strings.HasPrefix(k, o+"/") {
				return true
			}
		}
		return false
	}
	for len(keys) < 40 {
		b := make([]byte, 1+rnd.IntN(6))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		k := string(b)
		if checkKey(k) != nil || strings.HasSuffix(k, "/") || conflicts(k) {
			continue
		}
		if w := s3Do(h, "PUT", "/bkt/"+url.PathEscape(k), []byte(k)); w.Code != 200 {
			t.Fatalf("PUT %q: %d %s", k, w.Code, w.Body)
		}
		keys = append(keys, k)
	}
	// An empty directory is no key, and no common prefix either.
	if w := do(s, "POST", "/v1/fs/bkt/zz?op=mkdir", nil); w.Code != http.StatusCreated {
		t.Fatalf("mkdir: %d %s", w.Code, w.Body)
	}
	list := func(v2 bool, prefix, delim string, limit int) []string {
		var out, ordered []string
		token, marker := "", ""
		for page := 0; ; page++ {
			q := url.Values{"prefix": {prefix}, "delimiter": {delim}, "max-keys": {fmt.Sprint(limit)}}
			if v2 {
				q.Set("list-type", "2")
				if token != "" {
					q.Set("continuation-token", token)
				}
			} else if marker != "" {
				q.Set("marker", marker)
			}
			w := s3Do(h, "GET", "/bkt?"+q.Encode(), nil)
			if w.Code != 200 {
				t.Fatalf("list %v: %d %s", q, w.Code, w.Body)
			}
			var res listObjectsResult
			if err := xml.Unmarshal(w.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range res.Contents {
				// Keys come in byte order, page after page.
				if len(ordered) > 0 && o.Key <= ordered[len(ordered)-1] {
					t.Fatalf("key %q after %q", o.Key, ordered[len(ordered)-1])
				}
				ordered = append(ordered, o.Key)
				got = append(got, o.Key)
			}
			for _, p := range res.CommonPrefixes {
				got = append(got, p.Prefix+"\x00")
			}
			slices.Sort(got) // S3 gives keys and prefixes apart; the model merges them
			out = append(out, got...)
			if len(got) > limit {
				t.Fatalf("a page of %d with max-keys %d", len(got), limit)
			}
			if !res.IsTruncated {
				return out
			}
			if page > 100 {
				t.Fatal("the listing does not end")
			}
			token = res.NextContinuationToken
			marker = res.NextMarker
			if marker == "" && len(res.Contents) > 0 {
				marker = res.Contents[len(res.Contents)-1].Key
			}
		}
	}
	sortMerged := func(v []string) []string { v = slices.Clone(v); slices.Sort(v); return v }
	// Directories read in pages of 2 as well as whole: a directory that
	// waits for the keys that sort before it must wait across pages.
	defer func(n int) { s3DirPage = n }(s3DirPage)
	for _, page := range []int{s3DirPage, 2} {
		s3DirPage = page
		compareListings(t, rnd, keys, list, sortMerged, h)
	}
}

func compareListings(t *testing.T, rnd *rand.Rand, keys []string, list func(v2 bool, prefix, delim string, limit int) []string,
	sortMerged func([]string) []string, h http.Handler) {
	t.Helper()
	for i := 0; i < 60; i++ {
		prefix := ""
		if rnd.IntN(3) > 0 {
			k := keys[rnd.IntN(len(keys))]
			prefix = k[:rnd.IntN(len(k)+1)]
		}
		delim := []string{"", "/", "-", "."}[rnd.IntN(4)]
		limit := 1 + rnd.IntN(7)
		want, _ := modelList(keys, prefix, delim, "", 1<<30)
		for _, v2 := range []bool{true, false} {
			if got := list(v2, prefix, delim, limit); !slices.Equal(sortMerged(got), sortMerged(want)) {
				t.Fatalf("v2 %v, prefix %q, delimiter %q, pages of %d:\n got %q\nwant %q", v2, prefix, delim, limit, got, want)
			}
		}
	}
	// start-after (a key, or a part of one), with a prefix and a
	// delimiter, against the model.
	for i := 0; i < 60; i++ {
		after := keys[rnd.IntN(len(keys))]
		after = after[:1+rnd.IntN(len(after))]
		prefix := ""
		if rnd.IntN(2) == 0 {
			k := keys[rnd.IntN(len(keys))]
			prefix = k[:rnd.IntN(len(k)+1)]
		}
		delim := []string{"", "/", "-"}[rnd.IntN(3)]
		want, _ := modelList(keys, prefix, delim, after, 1000)
		q := url.Values{"list-type": {"2"}, "start-after": {after}, "prefix": {prefix}, "delimiter": {delim}}
		w := s3Do(h, "GET", "/bkt?"+q.Encode(), nil)
		var res listObjectsResult
		xml.Unmarshal(w.Body.Bytes(), &res)
		var got []string
		for _, o := range res.Contents {
			got = append(got, o.Key)
		}
		for _, p := range res.CommonPrefixes {
			got = append(got, p.Prefix+"\x00")
		}
		if !slices.Equal(sortMerged(got), sortMerged(want)) {
			t.Fatalf("start-after %q, prefix %q, delimiter %q (pages of %d):\n got %q\nwant %q", after, prefix, delim, s3DirPage, got, want)
		}
	}
}

// BenchmarkS3ListFlat lists a bucket of 3,000 keys in one directory, in
// pages of 1,000 as clients ask: the cost of a page should not grow with
// the bucket.
func BenchmarkS3ListFlat(b *testing.B) {
	h, _ := newS3Bucket(b)
	const n = 3000
	for i := range n {
		if w := s3Do(h, "PUT", fmt.Sprintf("/bkt/flat/k%06d", i), []byte("x")); w.Code != 200 {
			b.Fatalf("PUT: %d %s", w.Code, w.Body)
		}
	}
	b.ResetTimer()
	for range b.N {
		token, keys := "", 0
		for {
			q := url.Values{"list-type": {"2"}, "prefix": {"flat/"}}
			if token != "" {
				q.Set("continuation-token", token)
			}
			w := s3Do(h, "GET", "/bkt?"+q.Encode(), nil)
			var res listObjectsResult
			if err := xml.Unmarshal(w.Body.Bytes(), &res); err != nil || w.Code != 200 {
				b.Fatalf("list: %d %v", w.Code, err)
			}
			keys += len(res.Contents)
			if !res.IsTruncated {
				break
			}
			token = res.NextContinuationToken
		}
		if keys != n {
			b.Fatalf("listed %d keys of %d", keys, n)
		}
	}
}

// TestS3ListingURLEncoding: with encoding-type=url keys and prefixes come
// as clients decode them: "/" kept, every other byte outside letters,
// digits and "-._~" as %XX; version 1 leaves its Prefix as asked.
func TestS3ListingURLEncoding(t *testing.T) {
	h, _ := newS3Bucket(t)
	for _, k := range []string{"foo+1/bar", "foo/bar/xyzzy", "quux ab/thud", "é~x"} {
		if w := s3Do(h, "PUT", "/bkt/"+url.PathEscape(k), []byte("x")); w.Code != 200 {
			t.Fatalf("PUT %q: %d %s", k, w.Code, w.Body)
		}
	}
	list := func(q string) listObjectsResult {
		w := s3Do(h, "GET", "/bkt?"+q, nil)
		var res listObjectsResult
		if err := xml.Unmarshal(w.Body.Bytes(), &res); err != nil || w.Code != 200 {
			t.Fatalf("list ?%s: %d %s", q, w.Code, w.Body)
		}
		return res
	}
	res := list("list-type=2&encoding-type=url&delimiter=/")
	var got []string
	for _, p := range res.CommonPrefixes {
		got = append(got, p.Prefix)
	}
	for _, o := range res.Contents {
		got = append(got, o.Key)
	}
	if want := []string{"foo%2B1/", "foo/", "quux%20ab/", "%C3%A9~x"}; !slices.Equal(got, want) {
		t.Fatalf("encoded listing: %q, want %q", got, want)
	}
	if res := list("list-type=2&encoding-type=url&prefix=foo%2B"); res.Prefix != "foo%2B" || len(res.Contents) != 1 || res.Contents[0].Key != "foo%2B1/bar" {
		t.Fatalf("v2 by an encoded prefix: prefix %q, %+v", res.Prefix, res.Contents)
	}
	if res := list("encoding-type=url&prefix=foo%2B"); res.Prefix != "foo+" || len(res.Contents) != 1 || res.Contents[0].Key != "foo%2B1/bar" {
		t.Fatalf("v1 by a prefix: prefix %q, %+v", res.Prefix, res.Contents)
	}
	if res := list("list-type=2&continuation-token="); res.ContinuationToken == nil || *res.ContinuationToken != "" || len(res.Contents) != 4 {
		t.Fatalf("an empty continuation token: %v, %d keys", res.ContinuationToken, len(res.Contents))
	}
}

// TestS3Versions: a bucket keeps no versions, and says so as S3 does for
// a bucket that never had versioning on: every object is its one
// version, "null", listed by ListObjectVersions, read and deleted by it.
func TestS3Versions(t *testing.T) {
	h, _ := newS3Bucket(t)
	for _, k := range []string{"a", "b/c", "d"} {
		if w := s3Do(h, "PUT", "/bkt/"+k, []byte(k)); w.Code != 200 {
			t.Fatalf("PUT %s: %d %s", k, w.Code, w.Body)
		}
	}
	if w := s3Do(h, "GET", "/bkt?versioning", nil); w.Code != 200 || strings.Contains(w.Body.String(), "<Status>") {
		t.Fatalf("GetBucketVersioning: %d %s", w.Code, w.Body)
	}
	var keys []string
	marker := ""
	for page := 0; ; page++ {
		w := s3Do(h, "GET", "/bkt?versions&max-keys=2&key-marker="+url.QueryEscape(marker), nil)
		var res listVersionsResult
		if err := xml.Unmarshal(w.Body.Bytes(), &res); err != nil || w.Code != 200 {
			t.Fatalf("ListObjectVersions: %d %s", w.Code, w.Body)
		}
		for _, v := range res.Versions {
			if v.VersionId != "null" || !v.IsLatest {
				t.Fatalf("version %+v", v)
			}
			keys = append(keys, v.Key)
		}
		if !res.IsTruncated || page > 5 {
			break
		}
		marker = res.NextKeyMarker
	}
	if !slices.Equal(keys, []string{"a", "b/c", "d"}) {
		t.Fatalf("versions listed: %q", keys)
	}
	if w := s3Do(h, "GET", "/bkt/a?versionId=null", nil); w.Code != 200 || w.Body.String() != "a" {
		t.Fatalf("GET of the null version: %d %s", w.Code, w.Body)
	}
	if w := s3Do(h, "GET", "/bkt/a?versionId=3HL4kqtJlcpXroDTDmJ", nil); w.Code != 400 {
		t.Fatalf("GET of a version never made: %d %s", w.Code, w.Body)
	}
	if w := s3Do(h, "DELETE", "/bkt/a?versionId=null", nil); w.Code != 204 {
		t.Fatalf("DELETE of the null version: %d %s", w.Code, w.Body)
	}
	if w := s3Do(h, "HEAD", "/bkt/a", nil); w.Code != 404 {
		t.Fatalf("HEAD after the delete of the null version: %d", w.Code)
	}
	if w := s3Do(h, "PUT", "/bkt?versioning", []byte("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>")); w.Code != 501 {
		t.Fatalf("PutBucketVersioning: %d %s", w.Code, w.Body)
	}
}

// TestS3ConditionsTakeUnquotedETags: If-Match and If-None-Match compare
// an ETag sent without its quotes, as S3 clients often send it.
func TestS3ConditionsTakeUnquotedETags(t *testing.T) {
	mtime := time.Unix(1e9, 0)
	for _, tc := range []struct {
		h    http.Header
		want int
	}{
		{http.Header{"If-Match": {`"abc"`}}, 0},
		{http.Header{"If-Match": {`abc`}}, 0},
		{http.Header{"If-Match": {`abd`}}, http.StatusPreconditionFailed},
		{http.Header{"If-None-Match": {`abc`}}, http.StatusNotModified},
		{http.Header{"If-None-Match": {`"abd", abc`}}, http.StatusNotModified},
	} {
		if got := s3Conditions(tc.h, `"abc"`, mtime, ""); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.h, got, tc.want)
		}
	}
}
