package meta

import (
	"strings"
	"testing"
)

// FuzzParseHash: a parsed hash is the 64 hex digits it was parsed from
// (in either case), and its String form parses back to it.
func FuzzParseHash(f *testing.F) {
	h := HashOf([]byte("x")).String()
	for _, s := range []string{h, strings.ToUpper(h), h[:63], h + "0", "", "zz", h[:62] + "g0", " " + h[1:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err != nil {
			if h != (Hash{}) {
				t.Fatalf("ParseHash(%q) = %s with error %v", s, h, err)
			}
			return
		}
		if len(s) != 64 || !strings.EqualFold(h.String(), s) {
			t.Fatalf("ParseHash(%q) = %s: not the hash written", s, h)
		}
		if back, err := ParseHash(h.String()); err != nil || back != h {
			t.Fatalf("ParseHash(%s) = %s, %v: String does not parse back", h, back, err)
		}
	})
}
