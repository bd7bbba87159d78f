package router

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanPathAccepts(t *testing.T) {
	name255 := strings.Repeat("n", MaxNameBytes)
	full := longestPath()

	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/a", "/a"},
		{"a", "/a"},
		{"a/b", "/a/b"},
		{"/a/b/", "/a/b"},
		{"a/b/", "/a/b"},
		{"/a b/c?d#e%f", "/a b/c?d#e%f"},
		{`/a\b/..\c`, `/a\b/..\c`},
		{"/...", "/..."},
		{"/.hidden/..x/x..", "/.hidden/..x/x.."},
		{"/日本/ファイル.txt", "/日本/ファイル.txt"},
		{"/" + name255, "/" + name255},
		{full, full},
		{full + "/", full},
		{strings.TrimPrefix(full, "/"), full},
	}
	for _, tt := range tests {
		got, err := CleanPath(tt.in)
		if err != nil {
			t.Errorf("CleanPath(%s) error: %v", quote(tt.in), err)
			continue
		}
		if got != tt.want {
			t.Errorf("CleanPath(%s) = %s, want %s", quote(tt.in), quote(got), quote(tt.want))
		}
	}
}

// longestPath returns a valid path of exactly MaxPathBytes bytes: "/" and 15
// names of 255 bytes is 15*256 = 3840 bytes, and a last name of 255 bytes
// fills it up.
func longestPath() string {
	var b strings.Builder
	for range 15 {
		b.WriteString("/" + strings.Repeat("n", MaxNameBytes))
	}
	b.WriteString("/" + strings.Repeat("x", MaxPathBytes-b.Len()-1))
	return b.String()
}

func TestLongestPath(t *testing.T) {
	if p := longestPath(); len(p) != MaxPathBytes {
		t.Fatalf("longestPath is %d bytes, want %d", len(p), MaxPathBytes)
	}
}

func TestCleanPathRejects(t *testing.T) {
	name256 := strings.Repeat("n", MaxNameBytes+1)
	// One byte over the limit, every component within its own limit.
	over := longestPath()[:MaxPathBytes-1] + "/y"

	tests := []struct {
		in   string
		rule string // a fragment the error message must contain
	}{
		{"//", "empty component"},
		{"/a//b", "empty component"},
		{"//a", "empty component"},
		{"/a//", "empty component"},
		{"/a/b//", "empty component"},
		{"/.", `component "." is not allowed`},
		{"/a/./b", `component "." is not allowed`},
		{"/a/../b", `component ".." is not allowed`},
		{"..", `component ".." is not allowed`},
		{"/a/..", `component ".." is not allowed`}, // "/a/%2e%2e" after percent-decoding
		{"/a/../", `component ".." is not allowed`},
		{"/" + name256, "256 bytes long, over the 255-byte limit"},
		{"/a/" + name256 + "/b", "256 bytes long, over the 255-byte limit"},
		{over, "4097 bytes long, over the 4096-byte limit"},
		{"/a\x00b", "NUL byte"},
		{"\x00", "NUL byte"},
		{"/a/\xff", "not valid UTF-8"},
		{"/\xc3", "not valid UTF-8"},
		{"/\xed\xa0\x80", "not valid UTF-8"}, // a UTF-16 surrogate encoded as UTF-8
	}
	for _, tt := range tests {
		got, err := CleanPath(tt.in)
		if err == nil {
			t.Errorf("CleanPath(%s) = %s, want an error", quote(tt.in), quote(got))
			continue
		}
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("CleanPath(%s) error %v does not wrap ErrBadPath", quote(tt.in), err)
		}
		if !strings.Contains(err.Error(), tt.rule) {
			t.Errorf("CleanPath(%s) error %q does not say %q", quote(tt.in), err, tt.rule)
		}
		if len(err.Error()) > 4*quoteLimit+100 {
			t.Errorf("CleanPath(%s) error is %d bytes long; it should quote a short prefix", quote(tt.in), len(err.Error()))
		}
	}
}

func TestCleanPathErrorMessage(t *testing.T) {
	_, err := CleanPath("/a/../b")
	want := `invalid path "/a/../b": component ".." is not allowed`
	if err == nil || err.Error() != want {
		t.Fatalf("CleanPath error = %v, want %s", err, want)
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"", "/", "a", "/a/b/", "//", "/a/../b", "/./", "/a\x00", "\xff",
		"/" + strings.Repeat("n", MaxNameBytes+1), "/a b/%2e%2e", `\..\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CleanPath(in)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("CleanPath(%q) error %v does not wrap ErrBadPath", in, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("CleanPath(%q) = %q: no leading slash", in, out)
		}
		again, err := CleanPath(out)
		if err != nil || again != out {
			t.Fatalf("CleanPath(%q) = %q, which re-cleans to %q, %v", in, out, again, err)
		}
		if len(out) > MaxPathBytes || !utf8.ValidString(out) || strings.IndexByte(out, 0) >= 0 {
			t.Fatalf("CleanPath(%q) = %q: outside the limits", in, out)
		}
		if out == "/" {
			return
		}
		for name := range strings.SplitSeq(out[1:], "/") {
			if name == "" || name == "." || name == ".." || len(name) > MaxNameBytes {
				t.Fatalf("CleanPath(%q) = %q: bad component %q", in, out, name)
			}
		}
	})
}
