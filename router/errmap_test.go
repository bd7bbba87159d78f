package router

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"shoal/api"
	"shoal/meta"
)

// indentedByEncoder is what writeJSON wrote before it indented by itself:
// json.Encoder's own output, kept as the reference.
func indentedByEncoder(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// randomJSON is a value of nested objects and arrays (some empty) holding
// strings with the bytes that matter to an indenter (quotes, backslashes,
// brackets, commas, colons, control and non-ASCII characters, HTML),
// numbers, booleans and nulls.
func randomJSON(r *rand.Rand, depth int) any {
	k := r.IntN(8)
	if depth > 4 {
		k = r.IntN(4)
	}
	switch k {
	case 0:
		return randomString(r)
	case 1:
		return r.NormFloat64() * 1e6
	case 2:
		return r.IntN(2) == 0
	case 3:
		return nil
	case 4, 5:
		m := map[string]any{}
		for range r.IntN(4) {
			m[randomString(r)] = randomJSON(r, depth+1)
		}
		return m
	default:
		a := make([]any, r.IntN(4))
		for i := range a {
			a[i] = randomJSON(r, depth+1)
		}
		return a
	}
}

// randomString has bytes of UTF-8 characters (some split) that an
// indenter must copy as text.
func randomString(r *rand.Rand) string {
	const bytes = "ab \"\\/{}[],:\n\t\x01é€<>&\u2028"
	var s strings.Builder
	for range r.IntN(12) {
		s.WriteByte(bytes[r.IntN(len(bytes))])
	}
	return s.String()
}

// Answers are indented byte for byte as json.Encoder indents them: the
// API's answers, and random values with every byte an indenter must not
// take for structure inside their strings.
func TestAnswersIndentAsEncoder(t *testing.T) {
	values := []any{
		statOf("/a \"b\"/c", testInode()),
		api.Listing{Path: "/", Entries: []api.DirEntry{{Name: "x,y:z"}, {Name: `q\"}`}}},
		api.Listing{Path: "/empty", Entries: []api.DirEntry{}},
		api.ErrorBody{Code: api.CodeNotFound, Message: `no "such" file: /a\b <c>`},
		map[string]any{}, []any{}, "s", 12, nil, true,
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		values = append(values, randomJSON(r, 0))
	}
	for _, v := range values {
		want := indentedByEncoder(t, v)
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendIndented([]byte("kept"), b); !bytes.Equal(got, append([]byte("kept"), want...)) {
			t.Fatalf("indented\n%s\nwant\n%s", got, want)
		}
	}
}

// FuzzAppendIndented checks the indenter against json.Indent on the
// compact form of any valid JSON.
func FuzzAppendIndented(f *testing.F) {
	for _, s := range []string{`{"a":[1,{},[]],"b":"x\"}y\\"}`, `[]`, `"\\\\"`, `{"":{"":[null,true]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var compact bytes.Buffer
		if json.Compact(&compact, in) != nil {
			return
		}
		var want bytes.Buffer
		if err := json.Indent(&want, compact.Bytes(), "", "  "); err != nil {
			t.Fatal(err)
		}
		want.WriteByte('\n')
		if got := appendIndented(nil, compact.Bytes()); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%q indented\n%s\nwant\n%s", compact.Bytes(), got, want.Bytes())
		}
	})
}

// An answer goes out whole with its length: a client reading it needs
// no chunked decoding, and can tell a cut answer from a whole one.
func TestWriteJSONSetsLength(t *testing.T) {
	for _, n := range []int{1, 5000} { // within the pooled buffer, and past what net/http measures itself
		entries := make([]api.DirEntry, n)
		for i := range entries {
			entries[i].Name = "file-" + strconv.Itoa(i)
		}
		v := api.Listing{Path: "/d", Entries: entries}
		rec := httptest.NewRecorder()
		writeJSON(rec, http.StatusOK, v)
		want := indentedByEncoder(t, v)
		if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("%d entries: status %d, body of %d bytes, want 200 and %d bytes", n, rec.Code, rec.Body.Len(), len(want))
		}
		if got := rec.Header().Get("Content-Length"); got != strconv.Itoa(len(want)) {
			t.Fatalf("%d entries: Content-Length %q, want %d", n, got, len(want))
		}
		if got := rec.Header().Get("Content-Type"); got != "application/json" {
			t.Fatalf("Content-Type %q", got)
		}
	}
}

// A value JSON cannot hold is a 500 with an error body, not a 200 with
// half an answer.
func TestWriteJSONUnencodable(t *testing.T) {
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, map[string]any{"f": func() {}})
	var body api.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusInternalServerError || body.Code != api.CodeInternal {
		t.Fatalf("status %d, body %q (%v), want 500 with code internal", rec.Code, rec.Body.Bytes(), err)
	}
}

func BenchmarkWriteJSON(b *testing.B) {
	v := statOf("/bench/file-000123", testInode())
	b.Run("encoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(v)
		}
	})
	b.Run("writeJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writeJSON(httptest.NewRecorder(), http.StatusOK, v)
		}
	})
}

// testInode is a file with every field a stat answer shows set.
func testInode() meta.Inode {
	return meta.Inode{Ino: 123, Type: meta.TypeFile, Size: 1024, Mode: 0o644, MTime: 1_700_000_000_123_456_789,
		Nlink: 1, Uid: 1000, Gid: 1000, ATime: 1_700_000_000_000_000_000, CTime: 1_700_000_001_000_000_000, Gen: 3,
		Hash: strings.Repeat("ab", 32), ContentType: "text/plain; charset=utf-8"}
}
