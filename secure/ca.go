package secure

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"

	"shoal/clock"
)

// Role is what a certificate lets its holder be in the cluster. It is
// bound in the certificate as the DNS name Role.ServerName(), so a router's
// certificate can never pass for a storage node's.
type Role string

// The roles a certificate can carry.
const (
	// RoleNode is a storage node (primary, replica or standby): it may send
	// every node-to-node message.
	RoleNode Role = "node"
	// RoleRouter is a router: it serves HTTPS to clients and may send the
	// requests of the data path (chunk reads and writes, namespace reads
	// and proposals) to storage nodes, nothing else.
	RoleRouter Role = "router"
	// RoleClient is a mount host: presented to a router, it lets a token
	// with the mount capability act for the uids of the host's users.
	RoleClient Role = "client"
)

// roleDomain is the pseudo domain the role names live under. It is not a
// delegated top-level domain, so no public CA issues names in it.
const roleDomain = ".shoal"

// ServerName is the DNS name that binds r in a certificate, and the name a
// node verifies when it dials a peer: node.shoal for storage nodes.
func (r Role) ServerName() string { return string(r) + roleDomain }

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleNode, RoleRouter, RoleClient:
		return r, nil
	}
	return "", fmt.Errorf("role %q: use node, router or client", s)
}

// RoleOf returns the one role bound in cert; a certificate naming no role
// or several has none.
func RoleOf(cert *x509.Certificate) (Role, bool) {
	var found Role
	for _, name := range cert.DNSNames {
		r, ok := strings.CutSuffix(name, roleDomain)
		if !ok {
			continue
		}
		role, err := ParseRole(r)
		if err != nil || found != "" {
			return "", false
		}
		found = role
	}
	return found, found != ""
}

// CertRequest describes a certificate to issue.
type CertRequest struct {
	// Name is the holder's name: the subject's common name, and a DNS name
	// of the certificate when it is a valid host name.
	Name string
	Role Role
	// IPs and DNS are further addresses clients may dial the holder at
	// (a router's HTTPS address, say).
	IPs []net.IP
	DNS []string
	// NotBefore is when the certificate starts to be valid (zero:
	// skewAllowance ago); ValidFor is how long it stays valid from now.
	NotBefore time.Time
	ValidFor  time.Duration
}

// skewAllowance is how long before it is made a certificate counts as
// valid: a machine whose clock is behind by up to a day still accepts a
// certificate made on one that is right (a minute would cut a node an
// hour behind off from every peer).
const skewAllowance = 25 * time.Hour

// NewCA makes a certificate authority: a self-signed ECDSA P-256
// certificate valid for validFor, and its private key, both PEM.
func NewCA(name string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := clock.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Shoal"}},
		NotBefore:             now.Add(-skewAllowance),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// IssueCert makes a certificate for req signed by the CA, usable both to
// serve and to dial (a node does both), and its private key, both PEM.
func IssueCert(caCertPEM, caKeyPEM []byte, req CertRequest) (certPEM, keyPEM []byte, err error) {
	if req.Name == "" {
		return nil, nil, fmt.Errorf("%w: a certificate needs a name", ErrBadCert)
	}
	if _, err := ParseRole(string(req.Role)); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadCert, err)
	}
	ca, caKey, err := parseCA(caCertPEM, caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	from, until := req.NotBefore, req.NotBefore.Add(req.ValidFor)
	if from.IsZero() {
		now := clock.Now()
		from, until = now.Add(-skewAllowance), now.Add(req.ValidFor)
	}
	dns := []string{req.Role.ServerName()}
	if validHostname(req.Name) {
		dns = append(dns, req.Name)
	}
	for _, d := range req.DNS {
		if !validHostname(d) {
			return nil, nil, fmt.Errorf("%w: %q is not a DNS name", ErrBadCert, d)
		}
		if strings.HasSuffix(d, roleDomain) {
			return nil, nil, fmt.Errorf("%w: %q: names under %s are the roles' and set by --role", ErrBadCert, d, roleDomain)
		}
		if !slices.Contains(dns, d) {
			dns = append(dns, d)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: req.Name, Organization: []string{"Shoal"}, OrganizationalUnit: []string{string(req.Role)}},
		NotBefore:      from,
		NotAfter:       until,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:       dns,
		IPAddresses:    req.IPs,
		SubjectKeyId:   keyID(&key.PublicKey),
		AuthorityKeyId: ca.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate for %s: %w", req.Name, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// parseCA reads a CA certificate and its key, and checks that they belong
// together.
func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%w: %s is not a CA certificate", ErrBadCert, cert.Subject.CommonName)
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, nil, fmt.Errorf("%w: CA key: no PEM block", ErrBadCert)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: CA key: %v", ErrBadCert, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%w: the CA key does not belong to the CA certificate", ErrBadCert)
	}
	return cert, key, nil
}

func parseCert(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: no PEM certificate", ErrBadCert)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCert, err)
	}
	return c, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// keyID is the subject key identifier of pub (RFC 7093 method 1: the
// leftmost 160 bits of the SHA-256 of the key).
func keyID(pub *ecdsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return sum[:20]
}

// validHostname accepts DNS names of letters, digits, '-' and '.' labels.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
