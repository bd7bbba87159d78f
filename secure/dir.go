package secure

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Dir is a secrets directory as 'shoal secrets init' makes it and --secrets
// reads it:
//
//	ca.pem, ca-key.pem           the cluster's certificate authority
//	node.pem, node-key.pem       storage nodes' certificate (role node)
//	router.pem, router-key.pem   routers' certificate (role router)
//	client.pem, client-key.pem   mount hosts' certificate (role client)
//	gossip.key                   the gossip encryption key
//	data.key                     the data key content is sealed with
//	admin.token                  the first admin's token
//
// Private keys, keys and tokens are written with mode 0600.
type Dir string

// CA is the cluster's CA certificate; CAKey its private key.
func (d Dir) CA() string    { return d.file("ca.pem") }
func (d Dir) CAKey() string { return d.file("ca-key.pem") }

// Cert and Key are the certificate and private key of role r.
func (d Dir) Cert(r Role) string { return d.file(string(r) + ".pem") }
func (d Dir) Key(r Role) string  { return d.file(string(r) + "-key.pem") }

// TLS is the TLS identity of role r.
func (d Dir) TLS(r Role) TLSFiles { return TLSFiles{CA: d.CA(), Cert: d.Cert(r), Key: d.Key(r)} }

// GossipKey, DataKey and AdminToken are the key and token files.
func (d Dir) GossipKey() string  { return d.file("gossip.key") }
func (d Dir) DataKey() string    { return d.file("data.key") }
func (d Dir) AdminToken() string { return d.file("admin.token") }

func (d Dir) file(name string) string { return filepath.Join(string(d), name) }

// Abs returns d as an absolute path, which stays right whatever the
// working directory of whoever reads it later.
func (d Dir) Abs() (Dir, error) {
	a, err := filepath.Abs(string(d))
	return Dir(a), err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (d Dir) readCA() ([]byte, []byte, error) {
	c, err := os.ReadFile(d.CA())
	if err != nil {
		return nil, nil, err
	}
	k, err := os.ReadFile(d.CAKey())
	return c, k, err
}

// InitOptions says what 'shoal secrets init' puts in the certificates.
type InitOptions struct {
	// IPs and DNS are the addresses clients reach routers at, added to the
	// router certificate (which always holds localhost and 127.0.0.1).
	IPs []net.IP
	DNS []string
	// CAValidFor and CertValidFor are the certificates' lifetimes.
	CAValidFor, CertValidFor time.Duration
}

// DefaultInitOptions returns lifetimes of ten years for the CA and two
// years for certificates.
func DefaultInitOptions() InitOptions {
	return InitOptions{CAValidFor: 10 * 365 * 24 * time.Hour, CertValidFor: 2 * 365 * 24 * time.Hour}
}

// Init makes every file of the directory that is missing, keeping those
// that exist, and returns the paths it wrote. Running it again on a
// complete directory changes nothing.
func (d Dir) Init(o InitOptions) ([]string, error) {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("create secrets directory: %w", err)
	}
	var made []string
	write := func(path string, data []byte, mode os.FileMode) error {
		if err := WriteNew(path, data, mode); err != nil {
			return err
		}
		made = append(made, path)
		return nil
	}
	if !exists(d.CA()) {
		if exists(d.CAKey()) {
			return nil, fmt.Errorf("%s exists without %s: restore the certificate or remove the key", d.CAKey(), d.CA())
		}
		c, k, err := NewCA("Shoal cluster CA", o.CAValidFor)
		if err != nil {
			return nil, err
		}
		if err := write(d.CAKey(), k, 0o600); err != nil {
			return nil, err
		}
		if err := write(d.CA(), c, 0o644); err != nil {
			return nil, err
		}
	}
	routerDNS := append([]string{"localhost"}, o.DNS...)
	routerIPs := append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, o.IPs...)
	for _, r := range []CertRequest{
		{Name: "node", Role: RoleNode},
		{Name: "router", Role: RoleRouter, DNS: routerDNS, IPs: routerIPs},
		{Name: "client", Role: RoleClient},
	} {
		if exists(d.Cert(r.Role)) && exists(d.Key(r.Role)) {
			continue
		}
		caCert, caKey, err := d.readCA()
		if err != nil {
			return nil, fmt.Errorf("read the CA to issue the %s certificate: %w", r.Role, err)
		}
		r.ValidFor = o.CertValidFor
		c, k, err := IssueCert(caCert, caKey, r)
		if err != nil {
			return nil, err
		}
		os.Remove(d.Cert(r.Role)) // one of the pair was missing: replace both
		os.Remove(d.Key(r.Role))
		if err := write(d.Key(r.Role), k, 0o600); err != nil {
			return nil, err
		}
		if err := write(d.Cert(r.Role), c, 0o644); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		path    string
		content string
	}{
		{d.GossipKey(), NewKey() + "\n"},
		{d.DataKey(), NewKey() + "\n"},
		{d.AdminToken(), NewToken() + "\n"},
	} {
		if exists(f.path) {
			continue
		}
		if err := write(f.path, []byte(f.content), 0o600); err != nil {
			return nil, err
		}
	}
	return made, nil
}

// WriteNew creates path with data and mode, refusing to replace a file
// that exists, and syncs it so a crash cannot leave half a key.
func WriteNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s (remove it first to replace it)", ErrExists, path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
