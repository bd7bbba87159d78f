package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "credentials")
	want := Credentials{Router: "https://10.0.0.5:8080", CA: "/etc/shoal/ca.pem", Token: "shoal_x"}
	if err := WriteCredentials(path, want, "written by a test\nsecond line"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	got, err := ReadCredentials(path)
	if err != nil || got != want {
		t.Fatalf("read back %+v, %v", got, err)
	}
	env := map[string]string{"SHOAL_CREDENTIALS": path, "SHOAL_TOKEN": "shoal_env"}
	getenv := func(k string) string { return env[k] }
	res, from, err := ResolveCredentials(Credentials{Router: "https://flag:1"}, getenv)
	if err != nil || from != path {
		t.Fatal(err, from)
	}
	// A flag beats the environment, which beats the file.
	if res.Router != "https://flag:1" || res.Token != "shoal_env" || res.CA != want.CA {
		t.Fatalf("resolved %+v", res)
	}
	if _, _, err := ResolveCredentials(Credentials{}, func(k string) string {
		if k == "SHOAL_CREDENTIALS" {
			return filepath.Join(dir, "missing")
		}
		return ""
	}); err != nil {
		t.Fatalf("a missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("router https://x\n"), 0o600)
	if _, err := ReadCredentials(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a line without =: %v", err)
	}
}

// FuzzReadCredentials: any file is refused or read into values of one
// line each.
func FuzzReadCredentials(f *testing.F) {
	f.Add("router = https://x:1\nca = /a\n# c\n\ntoken = t\n")
	f.Add("nope")
	f.Add("key = =\n")
	f.Fuzz(func(t *testing.T, content string) {
		p := filepath.Join(t.TempDir(), "c")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := ReadCredentials(p)
		if err != nil {
			return
		}
		for _, v := range []string{c.Router, c.CA, c.Token, c.Cert, c.Key} {
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("a value spans lines: %q", v)
			}
		}
	})
}
