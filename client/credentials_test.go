package client

import (
	"encoding/json"
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
	// A token is for the router beside it: --router naming another gets
	// neither the file's token nor one from an environment that names
	// its own router; the same router, written otherwise, gets it.
	for _, tc := range []struct {
		flag, envRouter, envToken, want string
	}{
		{"https://elsewhere:9", "", "", ""},
		{"https://elsewhere:9", "https://10.0.0.5:8080", "shoal_env", ""},
		{"https://elsewhere:9", "", "shoal_env", "shoal_env"},
		{"10.0.0.5:8080", "", "", "shoal_x"},
		{"https://10.0.0.5:8080/", "", "", "shoal_x"},
		{"http://10.0.0.5:8080", "", "", ""}, // the same host in clear: no token
		{"", "https://elsewhere:9", "", ""},
		{"", "https://elsewhere:9", "shoal_env", "shoal_env"},
	} {
		env := map[string]string{"SHOAL_CREDENTIALS": path, "SHOAL_ROUTER": tc.envRouter, "SHOAL_TOKEN": tc.envToken}
		res, _, err := ResolveCredentials(Credentials{Router: tc.flag}, func(k string) string { return env[k] })
		if err != nil || res.Token != tc.want || res.CA != want.CA {
			t.Errorf("--router %q, SHOAL_ROUTER %q, SHOAL_TOKEN %q: token %q (want %q), CA %q, %v",
				tc.flag, tc.envRouter, tc.envToken, res.Token, tc.want, res.CA, err)
		}
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

// Named clusters live in sections of the credentials file: written
// without losing the default, read back, picked by --cluster or
// $SHOAL_CLUSTER from their section alone.
func TestNamedClusters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	def := Credentials{Router: "https://127.0.0.1:8080", CA: "/dev/ca.pem", Token: "shoal_dev"}
	if err := WriteCredentials(path, def, "dev"); err != nil {
		t.Fatal(err)
	}
	f, err := ReadCredentialsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Set(Credentials{Cluster: "prod", Router: "https://prod:8080", Token: "shoal_prod"})
	f.Set(Credentials{Cluster: "lab", Router: "https://lab:8080"})
	if err := f.Write(path, "test"); err != nil {
		t.Fatal(err)
	}
	// Rewriting the default (as shoal dev does at each start) keeps them.
	def.Token = "shoal_dev2"
	if err := WriteCredentials(path, def, "dev again"); err != nil {
		t.Fatal(err)
	}
	f, err = ReadCredentialsFile(path)
	if err != nil || f.Default != def || len(f.Clusters) != 2 || f.Clusters[0].Cluster != "prod" || f.Clusters[1].Router != "https://lab:8080" {
		t.Fatalf("read back %+v, %v", f, err)
	}

	env := map[string]string{"SHOAL_CREDENTIALS": path, "SHOAL_TOKEN": "shoal_env", "SHOAL_CA": "/env/ca.pem"}
	getenv := func(k string) string { return env[k] }
	res, _, err := ResolveCredentials(Credentials{Cluster: "prod"}, getenv)
	if err != nil || res.Router != "https://prod:8080" || res.Token != "shoal_prod" || res.CA != "" {
		t.Fatalf("--cluster prod resolved %+v, %v; want prod's entry and nothing from the environment", res, err)
	}
	// lab keeps no token: the environment's, another cluster's, is not sent.
	if res, _, err = ResolveCredentials(Credentials{Cluster: "lab"}, getenv); err != nil || res.Token != "" {
		t.Fatalf("--cluster lab resolved %+v, %v; want no token", res, err)
	}
	if res, _, err = ResolveCredentials(Credentials{Cluster: "lab", Token: "shoal_flag"}, getenv); err != nil || res.Token != "shoal_flag" {
		t.Fatalf("--cluster lab --token resolved %+v, %v; want the flag's token", res, err)
	}
	env["SHOAL_CLUSTER"] = "prod"
	if res, _, err = ResolveCredentials(Credentials{}, getenv); err != nil || res.Router != "https://prod:8080" {
		t.Fatalf("$SHOAL_CLUSTER=prod resolved %+v, %v", res, err)
	}
	env["SHOAL_CLUSTER"] = "nowhere"
	if _, _, err = ResolveCredentials(Credentials{}, getenv); err == nil || !strings.Contains(err.Error(), "shoal alias set nowhere") {
		t.Fatalf("an unknown cluster: %v", err)
	}

	for _, bad := range []string{"[prod\n", "[]\n", "[a b]\n", "[x]\n[x]\n", "[x]\nrouter https://x\n"} {
		p := filepath.Join(dir, "bad")
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := ReadCredentialsFile(p); err == nil {
			t.Errorf("file %q read without error", bad)
		}
	}
}

// shoal alias set, list and remove edit the credentials file, and work
// with no router at all.
func TestCLIAlias(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, []byte("not read here"), 0o600)
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errb strings.Builder
		getenv := func(k string) string {
			if k == "SHOAL_CREDENTIALS" {
				return path
			}
			return ""
		}
		code := Run(args[0], args[1:], strings.NewReader(stdin), &out, &errb, getenv)
		return code, out.String(), errb.String()
	}
	t.Chdir(dir)
	if code, _, errs := run("shoal_secret\n", "alias", "set", "prod", "https://prod.example.com:8080", "--ca", "ca.pem", "--token", "-"); code != 0 {
		t.Fatalf("alias set: %d %s", code, errs)
	}
	if code, _, errs := run("", "alias", "set", "lab", "lab:8080"); code != 0 {
		t.Fatalf("alias set without a scheme: %d %s", code, errs)
	}
	f, err := ReadCredentialsFile(path)
	if p, _ := f.Named("prod"); err != nil || p.Token != "shoal_secret" || p.CA != ca || p.Router != "https://prod.example.com:8080" {
		t.Fatalf("after alias set: %+v, %v", f, err)
	}
	code, out, _ := run("", "alias", "list")
	if code != 0 || !strings.Contains(out, "prod") || !strings.Contains(out, "kept") || strings.Contains(out, "shoal_secret") {
		t.Fatalf("alias list: %d %q (the token must not show)", code, out)
	}
	code, out, _ = run("", "alias", "list", "--json")
	var list []aliasEntry
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 2 || !list[0].Token || list[1].Token {
		t.Fatalf("alias list --json: %d %q %v", code, out, err)
	}
	for _, bad := range [][]string{
		{"alias", "set", "no spaces", "https://x"},
		{"alias", "set", "x", "ftp://x"},
		{"alias", "set", "x", "https://x", "--ca", "missing.pem"},
		{"alias", "remove", "nowhere"},
		{"alias", "rename", "a", "b"},
	} {
		if code, _, errs := run("", bad...); code == 0 || strings.Count(errs, "\n") != 1 {
			t.Errorf("shoal %s: exit %d, stderr %q; want one line and a failure", strings.Join(bad, " "), code, errs)
		}
	}
	if code, _, errs := run("", "alias", "remove", "prod"); code != 0 {
		t.Fatalf("alias remove: %d %s", code, errs)
	}
	if f, _ := ReadCredentialsFile(path); len(f.Clusters) != 1 || f.Clusters[0].Cluster != "lab" {
		t.Fatalf("after remove: %+v", f)
	}
	if code, _, errs := run("", "ls", "--cluster", "prod", "/"); code != 2 || !strings.Contains(errs, `no cluster "prod"`) {
		t.Fatalf("ls --cluster of a removed cluster: %d %q", code, errs)
	}
}
