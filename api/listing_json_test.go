package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// decodeBoth decodes b as a Listing and as encoding/json decodes one
// without Listing's UnmarshalJSON, failing t when the two differ in the
// listing or in whether they fail.
func decodeBoth(t *testing.T, what string, b []byte) {
	t.Helper()
	var got Listing
	var want listingFields
	errGot := json.Unmarshal(b, &got)
	errWant := json.Unmarshal(b, &want)
	if (errGot == nil) != (errWant == nil) || errGot == nil && !reflect.DeepEqual(got, Listing(want)) {
		t.Fatalf("%s: %.300s\ndecoded %+v (%v)\nencoding/json decodes %+v (%v)", what, b, got, errGot, want, errWant)
	}
	// Called directly, with bytes encoding/json has not checked first.
	var direct Listing
	if err := direct.UnmarshalJSON(b); (err == nil) != (errWant == nil) || err == nil && !reflect.DeepEqual(direct, Listing(want)) {
		t.Fatalf("%s: %.300s\nUnmarshalJSON gave %+v (%v)\nencoding/json decodes %+v (%v)", what, b, direct, err, want, errWant)
	}
}

func randomListing(r *rand.Rand) Listing {
	names := []string{"f000001", "", "with space", `q"uote`, `back\slash`, "<tag>&", "tab\there", "ünïcode", "日本語",
		"\xff\xfe bad", "line\u2028sep", "emoji 🐟", "\x7f"}
	some := func() bool { return r.IntN(2) == 0 }
	l := Listing{Path: "/" + names[r.IntN(len(names))]}
	if some() {
		l.Next = names[r.IntN(len(names))]
	}
	for range r.IntN(20) {
		at := func() time.Time {
			return time.Unix(0, r.Int64()>>r.IntN(8)*int64(1-2*r.IntN(2))).UTC()
		}
		e := DirEntry{Name: names[r.IntN(len(names))], Attr: Attr{
			Ino: r.Uint64() >> r.IntN(64), Type: TypeFile, Size: r.Int64() - math.MaxInt64/2, Mode: r.Uint32N(0o10000),
			ModeOctal: "0644", Nlink: r.Uint32(), Uid: r.Uint32() >> r.IntN(32), Gid: r.Uint32(),
			ATime: at(), MTime: at(), CTime: at(), Gen: r.Uint64(),
		}}
		if some() {
			e.Target = names[r.IntN(len(names))]
		}
		if some() {
			e.Rdev = r.Uint64()
		}
		if some() {
			e.Usage = &Usage{Bytes: r.Int64(), Files: -r.Int64N(9), Dirs: r.Int64N(1000)}
		}
		l.Entries = append(l.Entries, e)
	}
	return l
}

// A listing decodes as encoding/json decodes it, however it is laid
// out, and what the fast reader leaves to encoding/json (unknown or
// differently cased fields, nulls, escapes, invalid UTF-8, fractions,
// numbers out of range, JSON that is not JSON, listings cut short)
// decodes, or fails, as encoding/json has it.
func TestListingDecodesAsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for i := range 1000 {
		l := randomListing(r)
		compact, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		indented, _ := json.MarshalIndent(l, "", "  ")
		for j, b := range [][]byte{compact, indented} {
			decodeBoth(t, fmt.Sprintf("listing %d, layout %d", i, j), b)
			if p := (listingParser{b: b}); p.listing(&Listing{}) {
				fast++
			}
			for range 3 {
				cut := r.IntN(len(b))
				decodeBoth(t, fmt.Sprintf("listing %d, layout %d, cut at %d", i, j, cut), b[:cut])
			}
		}
	}
	if fast == 0 {
		t.Fatal("no listing was read by the fast reader")
	}
	entry := `{"name":"a","ino":2,"type":"file","size":-3,"mode":420,"mode_octal":"0644","nlink":1,"uid":0,"gid":0,` +
		`"atime":"2024-01-01T00:00:00Z","mtime":"2024-01-01T00:00:00.5Z","ctime":"1970-01-01T00:00:00Z","gen":7}`
	for _, b := range []string{
		`{"path":"/d","entries":[` + entry + `]}`,
		` { "entries" : [ ` + entry + ` , ` + entry + ` ] , "path" : "/d" , "next" : "a" } `,
		`{"path":"/d","entries":[]}`, `{"path":"/d","entries":null}`, `{}`, `null`, `[]`, ``, `{"path":"/d",}`,
		`{"path":"/d"}{}`, `{"Path":"/d"}`, `{"path":"/d","extra":1}`, `{"path":"/\u00e9\n"}`, `{"path":"\xff"}`,
		`{"entries":[{"NAME":"x"}]}`, `{"entries":[{"name":"x","extra":[1,2]}]}`, `{"entries":[{"ino":1.5}]}`,
		`{"entries":[{"ino":1e3}]}`, `{"entries":[{"ino":-1}]}`, `{"entries":[{"ino":18446744073709551615}]}`,
		`{"entries":[{"ino":18446744073709551616}]}`, `{"entries":[{"mode":4294967295}]}`, `{"entries":[{"mode":4294967296}]}`,
		`{"entries":[{"size":-9223372036854775808}]}`, `{"entries":[{"size":-9223372036854775809}]}`,
		`{"entries":[{"size":9223372036854775807}]}`, `{"entries":[{"size":9223372036854775808}]}`,
		`{"entries":[{"size":-0}]}`, `{"entries":[{"size":- 1}]}`, `{"entries":[{"size":01}]}`, `{"entries":[{"size":"1"}]}`,
		`{"entries":[{"mtime":"2024-13-01T00:00:00Z"}]}`, `{"entries":[{"mtime":"2024-01-01 00:00:00Z"}]}`,
		`{"entries":[{"mtime":null}]}`, `{"entries":[{"mtime":"2024-01-01T00:00:00+02:00"}]}`,
		`{"entries":[{"usage":{"bytes":1},"usage":{"files":2}}]}`, `{"entries":[{"usage":null}]}`,
		`{"entries":[{"name":"a","name":"b"}]}`, `{"entries":[{}],"entries":[{"name":"c"}]}`,
		`{"entries":[{"name":"a","ino":5}],"entries":[{"name":"c"}]}`,
		`{"entries":[{"name":"a"}`, `{"entries":[{"name":"a"},]}`, `{"entries":[{"name":"a"} {"name":"b"}]}`,
	} {
		decodeBoth(t, "case", []byte(b))
	}
	// Through a json.Decoder, as the client reads an answer.
	l := randomListing(r)
	b, _ := json.MarshalIndent(l, "", "  ")
	var got Listing
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&got); err != nil || !reflect.DeepEqual(got, decodeFields(t, b)) {
		t.Fatalf("through a Decoder: %+v, %v", got, err)
	}
}

func decodeFields(t *testing.T, b []byte) Listing {
	t.Helper()
	var l listingFields
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return Listing(l)
}

// FuzzListingUnmarshalJSON: whatever the bytes, a listing decodes, or
// fails, as encoding/json has it.
func FuzzListingUnmarshalJSON(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 4 {
		b, _ := json.MarshalIndent(randomListing(r), "", "  ")
		f.Add(b)
	}
	f.Add([]byte(`{"path":"/d","entries":[{"name":"a","ino":5,"usage":{"bytes":1}}],"entries":[{"name":"c"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { decodeBoth(t, "fuzz", b) })
}
