package client

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"shoal/secure"
)

// Credentials say which router to talk to and how to prove who the caller
// is. The CLI and the mount take each field from a flag, else from its
// environment variable, else from the credentials file (see
// CredentialsPath), so a cluster started with 'shoal dev' is reached from
// the same machine with no flag at all. The file may also name other
// clusters, each in a section of its own (see 'shoal alias'), which
// --cluster NAME picks.
type Credentials struct {
	Router string // base URL, $SHOAL_ROUTER
	CA     string // the cluster's CA certificate file, $SHOAL_CA
	Token  string // the user's token, $SHOAL_TOKEN
	// Cert and Key are a mount host's certificate and key ($SHOAL_CERT,
	// $SHOAL_KEY): with a token that has the mount capability, they let a
	// mount act for the uids of the host's users.
	Cert, Key string
	// Cluster names the section of the credentials file to read
	// ($SHOAL_CLUSTER); "" reads its unnamed first section. A named
	// cluster's values are used instead of the environment's: naming it
	// says which cluster to talk to.
	Cluster string
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

// envCredentials names the variable that points at a credentials file,
// envCluster the one that names a cluster in it.
const (
	envCredentials = "SHOAL_CREDENTIALS"
	envCluster     = "SHOAL_CLUSTER"
)

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

// CredentialsFile is a credentials file's content: the unnamed first
// section (the default cluster) and the named ones, in file order.
type CredentialsFile struct {
	Default  Credentials
	Clusters []Credentials // each with its Cluster name
}

// Named returns the cluster called name.
func (f *CredentialsFile) Named(name string) (Credentials, bool) {
	for _, c := range f.Clusters {
		if c.Cluster == name {
			return c, true
		}
	}
	return Credentials{}, false
}

// Set adds the cluster c.Cluster, or replaces it.
func (f *CredentialsFile) Set(c Credentials) {
	for i := range f.Clusters {
		if f.Clusters[i].Cluster == c.Cluster {
			f.Clusters[i] = c
			return
		}
	}
	f.Clusters = append(f.Clusters, c)
}

// Remove removes the cluster called name and reports whether it was there.
func (f *CredentialsFile) Remove(name string) bool {
	n := len(f.Clusters)
	f.Clusters = slices.DeleteFunc(f.Clusters, func(c Credentials) bool { return c.Cluster == name })
	return len(f.Clusters) < n
}

// validClusterName reports whether name can name a section.
func validClusterName(name string) bool {
	return name != "" && len(name) <= 64 && strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}

// ReadCredentialsFile reads a credentials file: lines of "key = value"
// with the keys router, ca, token, cert and key, and "[NAME]" lines that
// start the section of a named cluster; # starts a comment. A missing
// file holds nothing.
func ReadCredentialsFile(path string) (CredentialsFile, error) {
	var f CredentialsFile
	if path == "" {
		return f, nil
	}
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("credentials file: %w", err)
	}
	defer file.Close()
	cur := &f.Default
	sc := bufio.NewScanner(file)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if name, ok := strings.CutPrefix(line, "["); ok {
			name, ok = strings.CutSuffix(name, "]")
			if !ok || !validClusterName(name) {
				return CredentialsFile{}, fmt.Errorf("credentials file %s, line %d: want [NAME], a name of letters, digits, '-', '_' and '.'", path, n)
			}
			if _, dup := f.Named(name); dup {
				return CredentialsFile{}, fmt.Errorf("credentials file %s, line %d: cluster %s is named twice", path, n, name)
			}
			f.Clusters = append(f.Clusters, Credentials{Cluster: name})
			cur = &f.Clusters[len(f.Clusters)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		found := false
		for _, fl := range credentialFields {
			if fl.key == k {
				*fl.get(cur), found = v, true
			}
		}
		if !ok || !found {
			return CredentialsFile{}, fmt.Errorf("credentials file %s, line %d: want key = value with a key among router, ca, token, cert, key, or [NAME]", path, n)
		}
	}
	return f, sc.Err()
}

// ReadCredentials reads the default cluster of a credentials file.
func ReadCredentials(path string) (Credentials, error) {
	f, err := ReadCredentialsFile(path)
	return f.Default, err
}

// Write writes f to path (mode 0600, its directory made if missing),
// after the comment lines of header, replacing the file in one step.
func (f CredentialsFile) Write(path, header string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(header), "\n") {
		b.WriteString("# " + l + "\n")
	}
	section := func(c Credentials) {
		for _, fl := range credentialFields {
			if v := *fl.get(&c); v != "" {
				fmt.Fprintf(&b, "%s = %s\n", fl.key, v)
			}
		}
	}
	section(f.Default)
	for _, c := range f.Clusters {
		fmt.Fprintf(&b, "\n[%s]\n", c.Cluster)
		section(c)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteCredentials makes c the default cluster of the credentials file at
// path, keeping the named clusters it holds.
func WriteCredentials(path string, c Credentials, header string) error {
	f, err := ReadCredentialsFile(path)
	if err != nil {
		return err
	}
	c.Cluster = ""
	f.Default = c
	return f.Write(path, header)
}

// ResolveCredentials fills every field of given left empty from the
// environment, then from the credentials file, and returns the result and
// the file it read ("" when none). A cluster named by given.Cluster or
// $SHOAL_CLUSTER must have a section in the file, and fills the fields
// from it alone: the environment's token may be another cluster's.
func ResolveCredentials(given Credentials, getenv func(string) string) (Credentials, string, error) {
	path := CredentialsPath(getenv)
	f, err := ReadCredentialsFile(path)
	if err != nil {
		return Credentials{}, "", err
	}
	out := given
	if out.Cluster == "" {
		out.Cluster = getenv(envCluster)
	}
	file := f.Default
	if out.Cluster != "" {
		named, ok := f.Named(out.Cluster)
		if !ok {
			where := path
			if where == "" {
				where = "the credentials file"
			}
			return Credentials{}, "", fmt.Errorf("no cluster %q in %s; add it with 'shoal alias set %s URL'", out.Cluster, where, out.Cluster)
		}
		// Only flags and the section: a token in the environment is for
		// another cluster, and must not be sent to this one.
		for _, fl := range credentialFields {
			if p := fl.get(&out); *p == "" {
				*p = *fl.get(&named)
			}
		}
		return out, path, nil
	}
	// A token (or client certificate) from the environment or the file is
	// for the router given beside it: when the router in effect (from a
	// flag, else the environment) is another, it is not sent there.
	envRouter := getenv(credentialFields[0].env)
	router := cmp.Or(given.Router, envRouter, file.Router)
	for _, fl := range credentialFields {
		p := fl.get(&out)
		secret := fl.key == "token" || fl.key == "cert" || fl.key == "key"
		if *p == "" && (!secret || envRouter == "" || sameRouter(router, envRouter)) {
			*p = getenv(fl.env)
		}
		if *p == "" && (!secret || file.Router == "" || sameRouter(router, file.Router)) {
			*p = *fl.get(&file)
		}
	}
	if f.Default == (Credentials{}) && len(f.Clusters) == 0 {
		path = ""
	}
	return out, path, nil
}

// sameRouter reports whether two router URLs (with or without a scheme,
// https by default) name the same scheme, host, port and path: a token
// for https://r must not go to http://r in clear.
func sameRouter(a, b string) bool {
	ua, erra := parseRouter(a)
	ub, errb := parseRouter(b)
	if erra != nil || errb != nil {
		return a == b
	}
	pa, _ := url.Parse(ua)
	pb, _ := url.Parse(ub)
	return strings.EqualFold(pa.Scheme, pb.Scheme) && strings.EqualFold(pa.Host, pb.Host) && pa.Path == pb.Path
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
