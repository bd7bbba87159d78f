package gossip

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"shoal/meta"
)

func TestTagsRoundTrip(t *testing.T) {
	cases := []Tags{
		{},
		{ID: 1, Role: RoleRouter, HTTP: "10.0.0.1:8080"},
		{ID: 7, Role: RoleStandby, Addr: "10.0.0.2:7000", Cap: 1 << 40},
		{ID: 8, Role: RoleReplica, Group: "g2", Addr: "10.0.0.4:7000", Used: 12345, Cap: math.MaxUint64},
		{ID: 9, Role: RoleReplica, Group: "g1", Term: 3, Addr: "10.0.0.3:7000", InSync: true},
		{ID: math.MaxUint64, Role: RolePrimary, Group: "meta", Term: meta.MaxTerm, Addr: "[::1]:7000", InSync: true, Boot: true, Voter: true},
	}
	for _, want := range cases {
		m, err := want.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v): %v", want, err)
		}
		got, err := DecodeTags(m)
		if err != nil {
			t.Fatalf("DecodeTags(%v): %v", m, err)
		}
		if got != want {
			t.Errorf("round trip: got %+v, want %+v (map %v)", got, want, m)
		}
	}
}

func TestTagsEncodeOmitsZeroFields(t *testing.T) {
	m, err := Tags{ID: 5, Role: RoleReplica, Group: "g"}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m["id"] != "5" || m["r"] != "replica" || m["g"] != "g" {
		t.Errorf("Encode = %v, want exactly id, r, g", m)
	}
}

func TestDecodeTagsErrors(t *testing.T) {
	cases := map[string]map[string]string{
		"id not a number":   {"id": "x"},
		"id negative":       {"id": "-1"},
		"id overflow":       {"id": "18446744073709551616"},
		"term not a number": {"t": "1.5"},
		"term beyond limit": {"t": "4611686018427387905"},
		"term max uint64":   {"t": "18446744073709551615"},
		"unknown role":      {"r": "leader"},
		"empty role value":  {"r": ""},
		"flag not 1":        {"s": "true"},
		"boot flag empty":   {"b": ""},
	}
	for name, m := range cases {
		if _, err := DecodeTags(m); !errors.Is(err, ErrBadTags) {
			t.Errorf("%s: DecodeTags(%v) = %v, want ErrBadTags", name, m, err)
		}
	}
	// Keys from a newer version are ignored, not an error.
	if _, err := DecodeTags(map[string]string{"zz": "future"}); err != nil {
		t.Errorf("unknown key: %v", err)
	}
}

func TestTagsEncodeErrors(t *testing.T) {
	if _, err := (Tags{Role: "leader"}).Encode(); !errors.Is(err, ErrBadTags) {
		t.Errorf("unknown role: got %v, want ErrBadTags", err)
	}
	if _, err := (Tags{Role: RolePrimary, Term: meta.MaxTerm + 1}).Encode(); !errors.Is(err, ErrBadTags) {
		t.Errorf("term beyond the limit: got %v, want ErrBadTags", err)
	}
	big := Tags{ID: 1, Role: RoleReplica, Group: strings.Repeat("g", 500)}
	if _, err := big.Encode(); !errors.Is(err, ErrTagsTooLarge) {
		t.Errorf("500-byte group: got %v, want ErrTagsTooLarge", err)
	}
}

func TestTagsValidate(t *testing.T) {
	ok := []Tags{
		{ID: 1, Role: RoleRouter, HTTP: ":8080"},
		{ID: 1, Role: RoleStandby},
		{ID: 1, Role: RolePrimary, Group: "g", Boot: true},
	}
	for _, tg := range ok {
		if err := tg.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", tg, err)
		}
	}
	bad := []Tags{
		{ID: 1},                    // no role
		{Role: RoleRouter},         // no ID
		{ID: 1, Role: RoleReplica}, // no group
		{ID: 1, Role: "boss"},      // unknown role
		{ID: 1, Role: RolePrimary, Group: strings.Repeat("x", 600)},
	}
	for _, tg := range bad {
		if err := tg.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", tg)
		}
	}
}

// TestEncodedSizeMatchesSerf checks the size estimate against the encoding
// serf really uses (magic byte + go-msgpack default handle) around the
// header-size boundaries, so the 512-byte check agrees with serf's.
func TestEncodedSizeMatchesSerf(t *testing.T) {
	for _, n := range []int{0, 1, 30, 31, 32, 33, 255, 256, 400, 500, 70000} {
		for _, entries := range []int{1, 15, 16, 17} {
			m := make(map[string]string)
			for i := range entries {
				m[strings.Repeat("k", i+1)] = strings.Repeat("v", n)
			}
			var buf bytes.Buffer
			buf.WriteByte(0xff) // serf's tag magic byte
			if err := codec.NewEncoder(&buf, &codec.MsgpackHandle{}).Encode(m); err != nil {
				t.Fatal(err)
			}
			if got, want := encodedSize(m), buf.Len(); got != want {
				t.Errorf("value len %d, %d entries: encodedSize = %d, serf encodes %d bytes", n, entries, got, want)
			}
		}
	}
}

func FuzzDecodeTags(f *testing.F) {
	f.Add(uint64(1), uint64(0), "primary", "g1", "127.0.0.1:7000", "", true, true, "r", "replica")
	f.Add(uint64(0), uint64(99), "", "", "", ":8080", false, false, "id", "-3")
	f.Add(uint64(1<<63), uint64(1), "router", "", "", "x", false, true, "zz", "")
	f.Fuzz(func(t *testing.T, id, term uint64, role, group, addr, http string, inSync, boot bool, key, val string) {
		in := Tags{ID: id, Role: Role(role), Group: group, Term: term, Addr: addr, HTTP: http, InSync: inSync, Boot: boot, Used: term / 3, Cap: id / 2}
		m, err := in.Encode()
		if err == nil {
			out, err := DecodeTags(m)
			if err != nil {
				t.Fatalf("DecodeTags(Encode(%+v)) failed: %v", in, err)
			}
			if out != in {
				t.Fatalf("round trip: got %+v, want %+v", out, in)
			}
		} else {
			m = map[string]string{}
		}
		// Arbitrary input from a peer: never panic; what decodes must
		// re-encode to the same Tags.
		m[key] = val
		dec, err := DecodeTags(m)
		if err != nil {
			if !errors.Is(err, ErrBadTags) {
				t.Fatalf("DecodeTags(%v) error %v does not wrap ErrBadTags", m, err)
			}
			return
		}
		m2, err := dec.Encode()
		if err != nil {
			return // a peer's map may be over our size limit; serf would refuse it anyway
		}
		again, err := DecodeTags(m2)
		if err != nil || again != dec {
			t.Fatalf("re-encode of %+v: got %+v, %v", dec, again, err)
		}
	})
}
