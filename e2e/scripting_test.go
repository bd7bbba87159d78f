package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shoal/api"
	"shoal/client"
)

// Every command that prints takes --json and prints what a script can
// parse: one JSON document, or JSON lines for a stream.
func TestEveryJSON(t *testing.T) {
	c := newCluster(t, 3)
	dir := t.TempDir()
	local := filepath.Join(dir, "f.txt")
	os.WriteFile(local, []byte("twelve bytes"), 0o644)
	os.MkdirAll(filepath.Join(dir, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree", "sub", "g"), []byte("seven b"), 0o600)

	var st api.Stat
	var sum struct{ Files, Dirs, Symlinks, Bytes, Failed int64 }
	var listing api.Listing
	var lock api.LockInfo
	var exists struct {
		Path   string
		Exists bool
	}
	var status struct {
		Health  string
		Cluster api.Cluster
	}
	var statfs api.Statfs
	var user api.User
	var users []api.User
	var keyring api.KeyringResult
	var version struct{ Version, Go, Platform string }
	var synced struct{ Copied, Unchanged int64 }
	var found api.Stat
	var du []struct {
		Path               string
		Bytes, Files, Dirs int64
	}
	steps := []struct {
		args  []string
		code  int
		into  any
		check func() bool
	}{
		{[]string{"put", "--json", local, "/j/f.txt"}, 0, &st, func() bool { return st.Path == "/j/f.txt" && st.Size == 12 && st.ModeOctal == "0644" }},
		{[]string{"put", "-r", "--json", filepath.Join(dir, "tree"), "/j/tree"}, 0, &sum, func() bool { return sum.Files == 1 && sum.Dirs == 2 && sum.Bytes == 7 }},
		{[]string{"get", "--json", "/j/f.txt", filepath.Join(dir, "back.txt")}, 0, &sum, func() bool { return sum.Files == 1 && sum.Bytes == 12 }},
		{[]string{"get", "-r", "--json", "/j/tree", filepath.Join(dir, "back")}, 0, &sum, func() bool { return sum.Files == 1 && sum.Dirs == 2 && sum.Failed == 0 }},
		{[]string{"ls", "--json", "/j"}, 0, &listing, func() bool { return listing.Path == "/j" && len(listing.Entries) == 2 }},
		{[]string{"ls", "--json", "/j/f.txt"}, 0, &listing, func() bool { return len(listing.Entries) == 1 && listing.Entries[0].Size == 12 }},
		{[]string{"stat", "--json", "/j/tree/sub/g"}, 0, &st, func() bool { return st.Mode == 0o600 && st.Type == "file" }},
		{[]string{"exists", "--json", "/j/f.txt"}, 0, &exists, func() bool { return exists.Exists && exists.Path == "/j/f.txt" }},
		{[]string{"exists", "--json", "/j/nothing"}, 1, &exists, func() bool { return !exists.Exists }},
		{[]string{"status", "--json"}, 0, &status, func() bool { return status.Health == "ok" && len(status.Cluster.Groups) == 1 }},
		{[]string{"df", "--json"}, 0, &statfs, func() bool { return statfs.Groups == 1 && statfs.ChunkSize > 0 }},
		{[]string{"whoami", "--json"}, 0, &user, func() bool { return user.Name == "admin" && user.Admin }},
		{[]string{"user", "add", "--json", "carol"}, 0, &user, func() bool { return user.Name == "carol" && user.Token != "" }},
		{[]string{"user", "list", "--json"}, 0, &users, func() bool { return len(users) == 2 }},
		{[]string{"user", "token", "rotate", "--json", "carol"}, 0, &user, func() bool { return user.Name == "carol" && user.Token != "" }},
		{[]string{"keyring", "list", "--json"}, 0, &keyring, func() bool { return keyring.Responses > 0 && len(keyring.Keys) > 0 }},
		{[]string{"version", "--json"}, 0, &version, func() bool { return version.Go != "" && version.Platform != "" }},
		{[]string{"sync", "--json", filepath.Join(dir, "tree"), ":/j/synced"}, 0, &synced, func() bool { return synced.Copied == 1 }},
		{[]string{"du", "--json", "-s", "/j/tree"}, 0, &du, func() bool {
			return len(du) == 1 && du[0].Path == "/j/tree" && du[0].Bytes == 7 && du[0].Files == 1 && du[0].Dirs == 1
		}},
		{[]string{"lock", "--status", "--json", "/j/f.txt"}, 0, &lock, func() bool { return lock.Path == "/j/f.txt" && len(lock.Holders) == 0 }},
		// One match: one JSON line is one document.
		{[]string{"find", "--json", "/j", "--name", "f.txt"}, 0, &found, func() bool { return found.Path == "/j/f.txt" && found.Size == 12 }},
	}
	tested := map[string]bool{}
	for _, s := range steps {
		out, errOut, code := c.run(s.args...)
		if code != s.code {
			t.Fatalf("shoal %s: exit %d, stderr %q; want %d", strings.Join(s.args, " "), code, errOut, s.code)
		}
		// Unmarshal takes one JSON value and nothing after it.
		if err := json.Unmarshal([]byte(out), s.into); err != nil {
			t.Fatalf("shoal %s printed %q: not one JSON document: %v", strings.Join(s.args, " "), out, err)
		}
		if !s.check() {
			t.Fatalf("shoal %s printed %s", strings.Join(s.args, " "), out)
		}
		tested[s.args[0]] = true
	}

	// ls --owner streams JSON lines, one per file.
	out, errOut, code := c.run("ls", "--json", "--owner", "admin")
	if code != 0 {
		t.Fatalf("ls --owner --json: exit %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		var f api.OwnedFile
		if err := json.Unmarshal([]byte(l), &f); err != nil || f.Ino == 0 {
			t.Fatalf("ls --owner --json line %q: %v", l, err)
		}
	}
	if len(lines) < 5 {
		t.Fatalf("ls --owner --json printed %d lines, want every file and directory the admin made", len(lines))
	}

	if _, errOut, code := c.run("cat", "--json", "/j/f.txt"); code != 2 || !strings.Contains(errOut, "unknown flag: --json") {
		t.Errorf("cat --json: exit %d %q; want a usage error: cat prints the file's bytes", code, errOut)
	}

	// A named cluster is reached by its name, whatever the environment
	// points at.
	credentials := filepath.Join(dir, "credentials")
	shoal := func(stdin string, env []string, args ...string) (string, string, int) {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return out.String(), errb.String(), code
	}
	elsewhere := []string{"SHOAL_CREDENTIALS=" + credentials, "SHOAL_ROUTER=https://127.0.0.1:1", "SHOAL_TOKEN=shoal_not_this_one", "SHOAL_CA="}
	if _, errOut, code := shoal(c.Creds.Token+"\n", elsewhere, "alias", "set", "test", c.API, "--ca", c.Creds.CA, "--token", "-"); code != 0 {
		t.Fatalf("alias set: exit %d %s", code, errOut)
	}
	if out, errOut, code := shoal("", elsewhere, "ls", "--cluster", "test", "/j"); code != 0 || !strings.Contains(out, "f.txt") {
		t.Fatalf("ls --cluster test: exit %d %q %q", code, out, errOut)
	}
	if out, errOut, code := shoal("", append(elsewhere, "SHOAL_CLUSTER=test"), "stat", "/j/f.txt"); code != 0 || !strings.Contains(out, "size:  12") {
		t.Fatalf("SHOAL_CLUSTER=test shoal stat: exit %d %q %q", code, out, errOut)
	}
	out, _, _ = shoal("", elsewhere, "alias", "list", "--json")
	var aliases []struct {
		Name, Router string
		Token        bool
	}
	if err := json.Unmarshal([]byte(out), &aliases); err != nil || len(aliases) != 1 || aliases[0].Name != "test" || !aliases[0].Token {
		t.Fatalf("alias list --json: %q %v", out, err)
	}
	tested["alias"] = true

	// Every command that says it takes --json is tested above.
	for _, cmd := range client.Commands {
		help, _, _ := c.run(cmd.Name, "--help")
		if strings.Contains(help, "--json") && !tested[cmd.Name] {
			t.Errorf("shoal %s takes --json, but no step above parses it", cmd.Name)
		}
	}
}

// The completion scripts load, complete commands and flags from
// the binary, and remote paths from the cluster.
func TestCompletionScripts(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("SKIPPED: bash is not installed; the completion script is not checked")
	}
	c := newCluster(t, 3)
	cl := c.client()
	for _, p := range []string{"/docs/a.txt", "/docs/b.txt", "/docs/sub/c"} {
		if _, err := cl.Put(t.Context(), p, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	bin := binary(t)
	complete := func(words ...string) []string {
		t.Helper()
		script := `source <("$BIN" completion bash) || exit 3
complete -p shoal >/dev/null || exit 4
COMP_WORDS=("$BIN" "$@"); COMP_CWORD=$#
_shoal
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, append([]string{"-c", script, "bash"}, words...)...)
		cmd.Env = append(append(os.Environ(), c.cliEnv()...), "BIN="+bin)
		cmd.Dir = t.TempDir()
		os.WriteFile(filepath.Join(cmd.Dir, "local.txt"), nil, 0o644)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("complete %q: %v: %s", words, err, out)
		}
		got := strings.Fields(string(out))
		slices.Sort(got)
		return got
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"sta"}, []string{"standby", "stat", "status"}},
		{[]string{"put", "--no-c"}, []string{"--no-clobber"}},
		{[]string{"router", "--cors"}, []string{"--cors-origin"}},
		{[]string{"ls", "/do"}, []string{"/docs/"}},
		{[]string{"ls", "/docs/"}, []string{"/docs/a.txt", "/docs/b.txt", "/docs/sub/"}},
		{[]string{"rm", "/docs/s"}, []string{"/docs/sub/"}},
		{[]string{"get", "/docs/a"}, []string{"/docs/a.txt"}},
		{[]string{"put", "loc"}, []string{"local.txt"}}, // put's LOCAL is a local file
		{[]string{"put", "local.txt", "/docs/b"}, []string{"/docs/b.txt"}},
		{[]string{"completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"ls", "--router", "http://127.0.0.1:1", "/"}, nil}, // an unreachable router: nothing, at once
	} {
		if got := complete(tc.words...); !slices.Equal(got, tc.want) {
			t.Errorf("complete %q = %q, want %q", tc.words, got, tc.want)
		}
	}
	// fish completes a command line itself (complete -C), so the script
	// is checked end to end there too; zsh's is loaded and registered.
	if fish, err := exec.LookPath("fish"); err != nil {
		t.Log("SKIPPED: fish is not installed (apt-get install fish); its completion script is not checked")
	} else {
		script := `set PATH $BINDIR $PATH; shoal completion fish | source; complete -C "shoal ls /docs/"`
		cmd := exec.Command(fish, "-c", script)
		cmd.Env = append(append(os.Environ(), c.cliEnv()...), "BINDIR="+filepath.Dir(bin))
		out, err := cmd.CombinedOutput()
		got := strings.Fields(string(out))
		slices.Sort(got)
		if want := []string{"/docs/a.txt", "/docs/b.txt", "/docs/sub/"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("fish completes 'shoal ls /docs/' with %q (%v), want %q", out, err, want)
		}
	}
	if zsh, err := exec.LookPath("zsh"); err != nil {
		t.Log("SKIPPED: zsh is not installed (apt-get install zsh); its completion script is not checked")
	} else {
		script := `autoload -U compinit && compinit -u && source <("$BIN" completion zsh) && print -r -- $_comps[shoal]`
		cmd := exec.Command(zsh, "-c", script)
		cmd.Env = append(os.Environ(), "BIN="+bin, "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "_shoal" {
			t.Errorf("zsh loading the completion script: %v %q, want _shoal registered for shoal", err, out)
		}
	}
}

// On a terminal, put and get draw a progress line, redrawn in place and
// left as a summary; in a pipe, or with --quiet, they print nothing.
func TestProgressLine(t *testing.T) {
	scriptCmd, err := exec.LookPath("script")
	if err != nil {
		t.Skip("SKIPPED: script (util-linux) is not installed; the progress line is not checked under a terminal")
	}
	c := newCluster(t, 3)
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("progress"), 3<<20), 0o644); err != nil { // 24 MiB
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "tree", "a"), 0o755)
	for _, n := range []string{"1", "2", "a/3"} {
		os.WriteFile(filepath.Join(dir, "tree", n), bytes.Repeat([]byte(n), 1<<20), 0o644)
	}
	// onTerminal runs the CLI under a pseudo-terminal made by script(1)
	// and returns what the terminal showed.
	onTerminal := func(args ...string) string {
		t.Helper()
		line := binary(t)
		for _, a := range args {
			line += " '" + a + "'"
		}
		cmd := exec.Command(scriptCmd, "-qfec", line, "/dev/null")
		cmd.Env = append(append(os.Environ(), c.cliEnv()...), "COLUMNS=120")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s on a terminal: %v %q", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"put", big, "/p/big"}, []string{"put ", "24.0 MiB / 24.0 MiB (100%)", "MiB/s in "}},
		{[]string{"get", "/p/big", filepath.Join(dir, "back")}, []string{"get ", "24.0 MiB / 24.0 MiB (100%)"}},
		{[]string{"put", "-r", filepath.Join(dir, "tree"), "/p/tree"}, []string{"put ", "3/3 files"}},
		{[]string{"get", "-r", "/p/tree", filepath.Join(dir, "tree-back")}, []string{"get ", "3/3 files"}},
	} {
		out := onTerminal(tc.args...)
		for _, w := range append(tc.want, "\r") {
			if !strings.Contains(out, w) {
				t.Errorf("%s on a terminal showed %q; want %q in it", strings.Join(tc.args, " "), out, w)
			}
		}
	}
	if out := onTerminal("put", "--quiet", big, "/p/quiet"); strings.TrimSpace(out) != "" {
		t.Errorf("put --quiet on a terminal showed %q", out)
	}
	// In a pipe: nothing on stderr.
	if out, errOut, code := c.run("put", big, "/p/piped"); code != 0 || out != "" || errOut != "" {
		t.Errorf("put in a pipe: exit %d, stdout %q, stderr %q; want nothing", code, out, errOut)
	}
}
