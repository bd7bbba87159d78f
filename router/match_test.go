package router

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"shoal/api"
	"shoal/secure"
)

// sums cuts data at cs bytes and hashes each piece, as a client does.
func sums(data []byte, cs int) []string {
	var out []string
	for off := 0; off < len(data); off += cs {
		h := sha256.Sum256(data[off:min(off+cs, len(data))])
		out = append(out, hex.EncodeToString(h[:]))
	}
	return out
}

func matchOf(t *testing.T, s *Server, p string, req api.MatchRequest) api.MatchResult {
	t.Helper()
	b, _ := json.Marshal(req)
	w := do(s, "POST", "/v1/fs"+p+"?op=match", bytes.NewReader(b))
	if w.Code != http.StatusOK {
		t.Fatalf("match %s: %d %s", p, w.Code, w.Body)
	}
	var out api.MatchResult
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A client learns which of its chunks a file already holds at the same
// offsets, clear or sealed, and can put one file's content at another
// name without moving a byte.
func TestMatchAndPutFrom(t *testing.T) {
	key := newDataKey(t)
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "clear", true: "sealed"}[sealed]
		t.Run(name, func(t *testing.T) {
			c := newTestCluster(t)
			c.group("g1", 3, 1<<30)
			var sl *secure.Sealer
			if sealed {
				sl = testSealer(t, key)
			}
			s := c.router(func(cfg *Config) { cfg.Sealer = sl })
			old := plainText(100) // chunks of 16: six whole and one of 4
			if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(old)); w.Code != http.StatusCreated {
				t.Fatalf("PUT: %d %s", w.Code, w.Body)
			}
			// A copy changed in its third chunk and grown by 10 bytes: its
			// seventh chunk is now whole, so it differs too.
			mine := append(bytes.Clone(old), []byte("0123456789")...)
			mine[40] ^= 1
			got := matchOf(t, s, "/f", api.MatchRequest{Size: int64(len(mine)), ChunkSize: 16, Sums: sums(mine, 16)})
			want := []bool{true, true, false, true, true, true, false}
			if !equalBools(got.Same, want) || got.Size != 100 || got.Hash == "" {
				t.Fatalf("match answered %+v, want same=%v", got, want)
			}
			hash := got.Hash
			// A window of the chunks, from First.
			got = matchOf(t, s, "/f", api.MatchRequest{Size: 100, ChunkSize: 16, First: 5, Sums: sums(old, 16)[5:]})
			if !equalBools(got.Same, []bool{true, true}) {
				t.Fatalf("match from chunk 5 answered %v", got.Same)
			}
			// Cut at another size, only the last piece (4 bytes at 96)
			// lines up with a chunk of the file.
			got = matchOf(t, s, "/f", api.MatchRequest{Size: 100, ChunkSize: 32, Sums: sums(old, 32)})
			if !equalBools(got.Same, []bool{false, false, false, true}) {
				t.Fatalf("match cut at 32 answered %v", got.Same)
			}

			// PUT ?from= shares the content: same bytes, same chunks.
			w := do(s, "PUT", "/v1/fs/d/g?from=/f&mode=0600", nil, "Content-Type", "text/x-test")
			wantCode(t, "PUT from", w, http.StatusCreated, "")
			if st := statBody(t, w); st.Size != 100 || st.ModeOctal != "0600" || st.Hash != hash {
				t.Fatalf("PUT from answered %+v", st)
			}
			if b := readAll(t, s, "/d/g"); !bytes.Equal(b, old) {
				t.Fatalf("/d/g reads %q", b)
			}
			if a, b := chunkHashes(t, s, "/f"), chunkHashes(t, s, "/d/g"); a != b {
				t.Fatalf("PUT from stored new chunks: %s vs %s", a, b)
			}
			if ct := do(s, "HEAD", "/v1/fs/d/g", nil).Header().Get("Content-Type"); ct != "text/x-test" {
				t.Fatalf("Content-Type %q", ct)
			}
			// Over an existing file it is a replace, with PUT's conditions.
			wantCode(t, "PUT from, If-None-Match: * on a file", do(s, "PUT", "/v1/fs/d/g?from=/f", nil, "If-None-Match", "*"),
				http.StatusPreconditionFailed, api.CodePreconditionFailed)
			wantCode(t, "PUT from over a file", do(s, "PUT", "/v1/fs/d/g?from=/f", nil), http.StatusOK, "")
			// from_if_match: only the content the caller checked.
			wantCode(t, "PUT from, from_if_match of other content", do(s, "PUT", "/v1/fs/d/h?from=/f&from_if_match=0123", nil),
				http.StatusPreconditionFailed, api.CodePreconditionFailed)
			if w := do(s, "HEAD", "/v1/fs/d/h", nil); w.Code != http.StatusNotFound {
				t.Fatalf("a refused PUT from made /d/h: %d", w.Code)
			}
			wantCode(t, "PUT from, from_if_match of its content", do(s, "PUT", "/v1/fs/d/h?from=/f&from_if_match=%22"+hash+"%22", nil), http.StatusCreated, "")

			if sealed {
				// A router without the data key cannot compare tags: it
				// never claims a match.
				other := c.router(nil)
				got := matchOf(t, other, "/f", api.MatchRequest{Size: 100, ChunkSize: 16, Sums: sums(old, 16)})
				if !equalBools(got.Same, make([]bool, 7)) {
					t.Fatalf("a router without the key matched %v", got.Same)
				}
			}
		})
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func chunkHashes(t *testing.T, s *Server, p string) string {
	t.Helper()
	w := do(s, "GET", "/v1/fs"+p+"?op=chunks", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("chunks %s: %d %s", p, w.Code, w.Body)
	}
	var l api.ChunkList
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	var hs []string
	for _, c := range l.Chunks {
		hs = append(hs, c.Hash)
	}
	return strings.Join(hs, ",")
}

// A malformed match or PUT ?from= is refused with a clear error and
// changes nothing.
func TestMatchAndPutFromRefusals(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<30)
	s := c.router(nil)
	old := plainText(100)
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(old)); w.Code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	do(s, "POST", "/v1/fs/dir?op=mkdir", nil)
	good := sums(old, 16)
	for _, tc := range []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"not JSON", "/f", "chunks please", 400, "a match body is JSON"},
		{"unknown field", "/f", `{"size":100,"chunk_size":16,"hashes":[]}`, 400, "unknown field"},
		{"chunk size 0", "/f", `{"size":100,"chunk_size":0,"sums":[]}`, 400, "chunk_size 0"},
		{"negative size", "/f", `{"size":-1,"chunk_size":16,"sums":[]}`, 400, "negative"},
		{"past the end", "/f", `{"size":100,"chunk_size":16,"first":6,"sums":["` + good[0] + `","` + good[0] + `"]}`, 400, "past the end"},
		{"bad hex", "/f", `{"size":100,"chunk_size":16,"sums":["xyz"]}`, 400, "not a hex SHA-256"},
		{"a directory", "/dir", `{"size":100,"chunk_size":16,"sums":["` + good[0] + `"]}`, 400, "only files"},
		{"absent", "/nope", `{"size":100,"chunk_size":16,"sums":["` + good[0] + `"]}`, 404, ""},
		{"oversize", "/f", `{"size":100,"chunk_size":16,"sums":["` + strings.Repeat("a", maxMatchBody) + `"]}`, 400, "over"},
	} {
		w := do(s, "POST", "/v1/fs"+tc.path+"?op=match", strings.NewReader(tc.body))
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, w.Code, w.Body, tc.code, tc.want)
		}
	}
	for _, tc := range []struct {
		name, target, body string
		code               int
		want               string
	}{
		{"with a body", "/g?from=/f", "content", 400, "carries no body"},
		{"from a directory", "/g?from=/dir", "", 400, "only a file's content"},
		{"from nothing", "/g?from=/nope", "", 404, ""},
		{"from a bad path", "/g?from=/a/../f", "", 400, "from="},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		w := do(s, "PUT", "/v1/fs"+tc.target, body)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("PUT %s: %d %s, want %d with %q", tc.name, w.Code, w.Body, tc.code, tc.want)
		}
	}
	if w := do(s, "HEAD", "/v1/fs/g", nil); w.Code != http.StatusNotFound {
		t.Fatalf("a refused PUT ?from= made /g: %d", w.Code)
	}
}
