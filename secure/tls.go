package secure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"shoal/clock"
)

// TLSFiles names the PEM files of a process's TLS identity.
type TLSFiles struct {
	CA   string // the cluster's CA certificate
	Cert string // this process's certificate, signed by the CA
	Key  string // its private key
}

// Bundle is a loaded TLS identity: the cluster's CA and this process's
// certificate, checked against each other.
type Bundle struct {
	Pool *x509.CertPool
	Cert tls.Certificate
	Leaf *x509.Certificate
	Role Role
}

// LoadBundle reads f and checks that the certificate is signed by the CA,
// is valid now and carries role want. Every error says which file is at
// fault and how to make a good one.
func LoadBundle(f TLSFiles, want Role) (*Bundle, error) {
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("%w: read CA certificate: %w", ErrBadCert, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrBadCert, f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: load %s and %s: %w", ErrBadCert, f.Cert, f.Key, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadCert, f.Cert, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: %s is not usable with the CA in %s: %w (issue one with 'shoal tls cert create')", ErrBadCert, f.Cert, f.CA, err)
	}
	role, ok := RoleOf(leaf)
	if !ok || role != want {
		return nil, fmt.Errorf("%w: %s is not a %s certificate (it names %q); issue one with 'shoal tls cert create --role %s'",
			ErrBadCert, f.Cert, want, role, want)
	}
	return &Bundle{Pool: pool, Cert: cert, Leaf: leaf, Role: role}, nil
}

// Expires reports when the certificate stops being valid.
func (b *Bundle) Expires() time.Time { return b.Leaf.NotAfter }

// peerRole checks the certificate a peer presented (already verified
// against the CA by crypto/tls) and returns its role.
func peerRole(cs tls.ConnectionState) (Role, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", errors.New("the peer presented no certificate")
	}
	r, ok := RoleOf(cs.PeerCertificates[0])
	if !ok {
		return "", fmt.Errorf("the peer's certificate %q carries no role", cs.PeerCertificates[0].Subject.CommonName)
	}
	return r, nil
}

// PeerRole returns the role of the verified certificate a peer presented
// on a connection, or false when it presented none.
func PeerRole(cs tls.ConnectionState) (Role, bool) {
	r, err := peerRole(cs)
	return r, err == nil
}

// PeerServer is the TLS configuration of a storage node's peer port:
// TLS 1.3, and only peers with a certificate from the cluster's CA for a
// node or a router get through the handshake.
func (b *Bundle) PeerServer() *tls.Config {
	return &tls.Config{
		MinVersion:                  tls.VersionTLS13,
		Time:                        clock.Now,
		Certificates:                []tls.Certificate{b.Cert},
		ClientCAs:                   b.Pool,
		ClientAuth:                  tls.RequireAndVerifyClientCert,
		DynamicRecordSizingDisabled: true, // full records from the start: see BatchWrites
		VerifyConnection: func(cs tls.ConnectionState) error {
			r, err := peerRole(cs)
			if err != nil {
				return err
			}
			if r != RoleNode && r != RoleRouter {
				return fmt.Errorf("a %s certificate may not call storage nodes", r)
			}
			return nil
		},
	}
}

// PeerClient is the TLS configuration for dialling storage nodes: the
// node must prove the node role, and this process proves its own.
func (b *Bundle) PeerClient() *tls.Config {
	return &tls.Config{
		MinVersion:                  tls.VersionTLS13,
		Time:                        clock.Now,
		Certificates:                []tls.Certificate{b.Cert},
		RootCAs:                     b.Pool,
		ServerName:                  RoleNode.ServerName(),
		DynamicRecordSizingDisabled: true,
		// Resumed sessions skip the certificate signatures of a full
		// handshake when a pooled connection has to be made again.
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
		VerifyConnection: func(cs tls.ConnectionState) error {
			if r, err := peerRole(cs); err != nil || r != RoleNode {
				return fmt.Errorf("the peer is not a storage node (role %q): %v", r, err)
			}
			return nil
		},
	}
}

// HTTPServer is the TLS configuration of a router's HTTPS API: TLS 1.2 or
// later; a client may present a certificate from the cluster's CA (a
// mount host), which the router then knows by its role.
func (b *Bundle) HTTPServer() *tls.Config {
	return &tls.Config{
		MinVersion:                  tls.VersionTLS12,
		Time:                        clock.Now,
		Certificates:                []tls.Certificate{b.Cert},
		ClientCAs:                   b.Pool,
		ClientAuth:                  tls.VerifyClientCertIfGiven,
		DynamicRecordSizingDisabled: true,
	}
}

// ClientConfig is the TLS configuration of a client of a router (the CLI,
// the mount, the Go library): it trusts the CA in caFile (the system's
// roots when caFile is empty) and, when certFile is set, presents that
// certificate (a mount host's).
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		caPEM, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: read CA certificate: %w", ErrBadCert, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrBadCert, caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, fmt.Errorf("%w: a client certificate needs both a certificate and a key file", ErrBadCert)
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: load %s and %s: %w", ErrBadCert, certFile, keyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
