package client

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"shoal/secure"
)

// Credentials say which router to talk to and how to prove who the caller
// is. The CLI and the mount take each field from a flag, else from its
// environment variable, else from the credentials file (see
// CredentialsPath), so a cluster started with 'shoal dev' is reached from
// the same machine with no flag at all.
type Credentials struct {
	Router string // base URL, $SHOAL_ROUTER
	CA     string // the cluster's CA certificate file, $SHOAL_CA
	Token  string // the user's token, $SHOAL_TOKEN
	// Cert and Key are a mount host's certificate and key ($SHOAL_CERT,
	// $SHOAL_KEY): with a token that has the mount capability, they let a
	// mount act for the uids of the host's users.
	Cert, Key string
}

// The credentials file's keys, and the environment variables of each.
var credentialFields = []struct {
	key, env string
	get      func(*Credentials) *string
}{
	{"router", "SHOAL_ROUTER", func(c *Credentials) *string { return &c.Router }},
	{"ca", "SHOAL_CA", func(c *Credentials) *string { return &c.CA }},
	{"token", "SHOAL_TOKEN", func(c *Credentials) *string { return &c.Token }},
	{"cert", "SHOAL_CERT", func(c *Credentials) *string { return &c.Cert }},
	{"key", "SHOAL_KEY", func(c *Credentials) *string { return &c.Key }},
}

// envCredentials names the variable that points at a credentials file.
const envCredentials = "SHOAL_CREDENTIALS"

// CredentialsPath is the credentials file: $SHOAL_CREDENTIALS, else
// $XDG_CONFIG_HOME/shoal/credentials, else ~/.config/shoal/credentials;
// "" when none can be named.
func CredentialsPath(getenv func(string) string) string {
	if p := getenv(envCredentials); p != "" {
		return p
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "shoal", "credentials")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "shoal", "credentials")
	}
	return ""
}

// ReadCredentials reads a credentials file: lines of "key = value" with
// the keys router, ca, token, cert and key; # starts a comment. A missing
// file holds nothing.
func ReadCredentials(path string) (Credentials, error) {
	var c Credentials
	if path == "" {
		return c, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("credentials file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		found := false
		for _, fl := range credentialFields {
			if fl.key == k {
				*fl.get(&c), found = v, true
			}
		}
		if !ok || !found {
			return Credentials{}, fmt.Errorf("credentials file %s, line %d: want key = value with a key among router, ca, token, cert, key", path, n)
		}
	}
	return c, sc.Err()
}

// WriteCredentials writes c to path (mode 0600, its directory made if
// missing), after the comment lines of header.
func WriteCredentials(path string, c Credentials, header string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(header), "\n") {
		b.WriteString("# " + l + "\n")
	}
	for _, fl := range credentialFields {
		if v := *fl.get(&c); v != "" {
			fmt.Fprintf(&b, "%s = %s\n", fl.key, v)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ResolveCredentials fills every field of given left empty from the
// environment, then from the credentials file, and returns the result and
// the file it read ("" when none).
func ResolveCredentials(given Credentials, getenv func(string) string) (Credentials, string, error) {
	path := CredentialsPath(getenv)
	file, err := ReadCredentials(path)
	if err != nil {
		return Credentials{}, "", err
	}
	out := given
	for _, fl := range credentialFields {
		p := fl.get(&out)
		if *p == "" {
			*p = getenv(fl.env)
		}
		if *p == "" {
			*p = *fl.get(&file)
		}
	}
	if file == (Credentials{}) {
		path = ""
	}
	return out, path, nil
}

// Config returns a client Config for c (DefaultConfig otherwise): the
// router, TLS trusting c.CA and presenting c.Cert, and the token.
func (c Credentials) Config() (Config, error) {
	cfg := DefaultConfig()
	if c.Router != "" {
		cfg.Router = c.Router
	}
	cfg.Token = c.Token
	if c.CA != "" || c.Cert != "" || c.Key != "" {
		t, err := secure.ClientConfig(c.CA, c.Cert, c.Key)
		if err != nil {
			return Config{}, err
		}
		cfg.TLS = t
	}
	return cfg, nil
}

// Flags returns the command-line flags that give c to a shoal command
// (--ca, --token, --cert, --key; the router is left to the caller).
func (c Credentials) Flags() []string {
	var out []string
	for _, f := range []struct{ name, v string }{{"--ca", c.CA}, {"--token", c.Token}, {"--cert", c.Cert}, {"--key", c.Key}} {
		if f.v != "" {
			out = append(out, f.name, f.v)
		}
	}
	return out
}
