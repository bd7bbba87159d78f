package store

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"shoal/meta"
)

var chunkNameRE = regexp.MustCompile(`^([0-9a-f]{64})(-[0-9a-f]{8})?$`)

// FuzzChunkStoreLoad opens a chunk directory holding one file of any name
// in any fan-out directory: the index takes it only if it sits where the
// store would write the chunk its name spells, and opening removes only
// leftover temporary files.
func FuzzChunkStoreLoad(f *testing.F) {
	h := meta.HashOf([]byte("chunk"))
	x := h.String()
	for _, s := range [][2]string{
		{x[:2], x}, {x[2:4], x}, {x[:2], strings.ToUpper(x)}, {x[:2], x[:63]}, {x[:2], tempPrefix + "1"},
		{"", x}, {x[:2], x + ".bak"}, {"zz", "zz"}, {x[:2] + "/" + x[:2], x},
		{x[:2], x + "-0123abcd"}, {x[:2], x + "-0123ABCD"}, {x[:2], x + "-0123abc"}, {x[:2], x + "-+123abcd"},
		{x[:2], x + "_0123abcd"}, {x[:2], x + "-0123abcd0"},
	} {
		f.Add(s[0], s[1], []byte("chunk"))
	}
	f.Fuzz(func(t *testing.T, sub, name string, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, sub, name)
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			return // climbs out of dir, or is dir itself
		}
		name = filepath.Base(p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return // NUL, too long, or a component that is not a directory name
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return
		}
		s, err := OpenChunkStore(OSFS{}, dir)
		if err != nil {
			t.Fatalf("open with a file %q: %v", p, err)
		}
		// Ours: 64 lower-case hex digits, then a dash and 8 more or
		// nothing, in the fan-out directory of its first two.
		m := chunkNameRE.FindStringSubmatch(name)
		ours := m != nil && p == filepath.Join(dir, name[:2], name)
		var want meta.Hash
		if ours {
			want, _ = meta.ParseHash(m[1])
		}
		if got := s.ListAll(); ours != (len(got) == 1) || ours && got[0] != want {
			t.Fatalf("file %q: index %v, want it taken: %v", p, got, ours)
		}
		if ours && s.Used() != int64(len(data)) {
			t.Fatalf("file %q of %d bytes: used %d", p, len(data), s.Used())
		}
		after, rerr := os.ReadFile(p)
		switch temp := strings.HasPrefix(name, tempPrefix); {
		case temp && rerr == nil:
			t.Fatalf("leftover temporary file %q kept", p)
		case !temp && (rerr != nil || !bytes.Equal(after, data)):
			t.Fatalf("file %q changed or removed by open: %v", p, rerr)
		}
	})
}

// FuzzLoadClaim reads arbitrary claim files: LoadClaim answers an error or
// a claim whose group a claim message could name, which saves and loads
// back unchanged. And any claim a claim message could make survives a
// save and a load unchanged, so a restarted standby serves the group
// that claimed it and no other.
func FuzzLoadClaim(f *testing.F) {
	for _, s := range []string{
		"group=g2\n", "group=g3\nboot=1\n", "boot=1\ngroup=g4", "group=g5\r\nboot=1\r\n",
		"group=\n", "", "garbage", "group=a=b\n", "group= g \n", "group=g\ngroup=h\n",
		"group=" + strings.Repeat("x", 65) + "\n", "\x00\xff",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("g\nboot=1"), false) // a group name that is also a second line
	f.Add([]byte("g "), true)
	f.Fuzz(func(t *testing.T, data []byte, boot bool) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, claimFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, ok, err := LoadClaim(dir)
		switch {
		case err != nil && (ok || c != Claim{}):
			t.Fatalf("LoadClaim(%q) = %+v, %v with error %v", data, c, ok, err)
		case err == nil && !ok:
			t.Fatalf("LoadClaim(%q) found no claim in an existing file and no error", data)
		case err == nil:
			if gerr := CheckGroupName(c.Group); gerr != nil {
				t.Fatalf("LoadClaim(%q) = group %q, which no claim could name: %v", data, c.Group, gerr)
			}
			claimRoundTrip(t, c)
		}
		// The same bytes as the group name of a claim message.
		if c := (Claim{Group: string(data), Boot: boot}); CheckGroupName(c.Group) == nil {
			claimRoundTrip(t, c)
		}
	})
}

func claimRoundTrip(t *testing.T, c Claim) {
	t.Helper()
	dir := t.TempDir()
	if err := SaveClaim(dir, c); err != nil {
		t.Fatalf("SaveClaim(%+v): %v", c, err)
	}
	got, ok, err := LoadClaim(dir)
	if err != nil || !ok || got != c {
		t.Fatalf("saved %+v, loaded %+v, %v, %v", c, got, ok, err)
	}
}

// FuzzLoadNodeID reads arbitrary node ID files: LoadNodeID answers an
// error or the non-zero ID the file holds, which matches want when want
// is set, and leaves the file as it was.
func FuzzLoadNodeID(f *testing.F) {
	for _, s := range []string{"7\n", "7", " 7 \n", "0\n", "", "-1", "+7", "007",
		"18446744073709551615", "18446744073709551616", "7\n8\n", "0x10", "\x00"} {
		f.Add([]byte(s), uint64(0))
		f.Add([]byte(s), uint64(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, want uint64) {
		dir := t.TempDir()
		p := filepath.Join(dir, idFile)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		id, ok, err := LoadNodeID(dir, want)
		if after, rerr := os.ReadFile(p); rerr != nil || string(after) != string(data) {
			t.Fatalf("LoadNodeID(%q, %d) changed the file to %q (%v)", data, want, after, rerr)
		}
		if err != nil {
			if id != 0 || ok {
				t.Fatalf("LoadNodeID(%q, %d) = %d, %v with error %v", data, want, id, ok, err)
			}
			return
		}
		have, perr := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		switch {
		case id == 0 || !ok:
			t.Fatalf("LoadNodeID(%q, %d) = %d, %v without an error", data, want, id, ok)
		case perr != nil || id != have:
			t.Fatalf("LoadNodeID(%q, %d) = %d: not the ID the file holds", data, want, id)
		case want != 0 && id != want:
			t.Fatalf("LoadNodeID(%q, %d) = %d: not the ID asked for", data, want, id)
		}
	})
}
