package role

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzLoadClaim reads arbitrary claim files: loadClaim answers an error or
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
		c, ok, err := loadClaim(dir)
		switch {
		case err != nil && (ok || c != claim{}):
			t.Fatalf("loadClaim(%q) = %+v, %v with error %v", data, c, ok, err)
		case err == nil && !ok:
			t.Fatalf("loadClaim(%q) found no claim in an existing file and no error", data)
		case err == nil:
			if gerr := checkGroupName(c.Group); gerr != nil {
				t.Fatalf("loadClaim(%q) = group %q, which no claim could name: %v", data, c.Group, gerr)
			}
			claimRoundTrip(t, c)
		}
		// The same bytes as the group name of a claim message.
		if c := (claim{Group: string(data), Boot: boot}); checkGroupName(c.Group) == nil {
			claimRoundTrip(t, c)
		}
	})
}

func claimRoundTrip(t *testing.T, c claim) {
	t.Helper()
	dir := t.TempDir()
	if err := saveClaim(dir, c); err != nil {
		t.Fatalf("saveClaim(%+v): %v", c, err)
	}
	got, ok, err := loadClaim(dir)
	if err != nil || !ok || got != c {
		t.Fatalf("saved %+v, loaded %+v, %v, %v", c, got, ok, err)
	}
}

// FuzzLoadID reads arbitrary node ID files: LoadID answers an error or
// the non-zero ID the file holds, which matches want when want is set,
// and leaves the file as it was.
func FuzzLoadID(f *testing.F) {
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
		id, err := LoadID(dir, want)
		if after, rerr := os.ReadFile(p); rerr != nil || string(after) != string(data) {
			t.Fatalf("LoadID(%q, %d) changed the file to %q (%v)", data, want, after, rerr)
		}
		if err != nil {
			if id != 0 {
				t.Fatalf("LoadID(%q, %d) = %d with error %v", data, want, id, err)
			}
			return
		}
		have, perr := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		switch {
		case id == 0:
			t.Fatalf("LoadID(%q, %d) = 0 without an error", data, want)
		case perr != nil || id != have:
			t.Fatalf("LoadID(%q, %d) = %d: not the ID the file holds", data, want, id)
		case want != 0 && id != want:
			t.Fatalf("LoadID(%q, %d) = %d: not the ID asked for", data, want, id)
		}
	})
}
