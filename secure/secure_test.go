package secure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a CA and the files of one certificate per role.
type testPKI struct {
	dir          string
	caPEM, caKey []byte
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	c, k, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{dir: t.TempDir(), caPEM: c, caKey: k}
}

// issue writes a certificate for req and returns its files.
func (p *testPKI) issue(t *testing.T, req CertRequest) TLSFiles {
	t.Helper()
	if req.ValidFor == 0 {
		req.ValidFor = time.Hour
	}
	c, k, err := IssueCert(p.caPEM, p.caKey, req)
	if err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{CA: filepath.Join(p.dir, "ca.pem"), Cert: filepath.Join(p.dir, req.Name+".pem"), Key: filepath.Join(p.dir, req.Name+"-key.pem")}
	for path, b := range map[string][]byte{f.CA: p.caPEM, f.Cert: c, f.Key: k} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (p *testPKI) bundle(t *testing.T, name string, r Role) *Bundle {
	t.Helper()
	b, err := LoadBundle(p.issue(t, CertRequest{Name: name, Role: r}), r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIssueBindsRole(t *testing.T) {
	p := newPKI(t)
	f := p.issue(t, CertRequest{Name: "r1", Role: RoleRouter, DNS: []string{"router.example"}, IPs: []net.IP{net.IPv4(10, 0, 0, 1)}})
	b, err := LoadBundle(f, RoleRouter)
	if err != nil {
		t.Fatal(err)
	}
	if b.Role != RoleRouter || !b.Leaf.IPAddresses[0].Equal(net.IPv4(10, 0, 0, 1)) {
		t.Fatalf("role %q, IPs %v", b.Role, b.Leaf.IPAddresses)
	}
	if _, err := LoadBundle(f, RoleNode); !errors.Is(err, ErrBadCert) {
		t.Fatalf("a router certificate loaded as a node's: %v", err)
	}
	if _, _, err := IssueCert(p.caPEM, p.caKey, CertRequest{Name: "x", Role: RoleNode, DNS: []string{"router.shoal"}, ValidFor: time.Hour}); !errors.Is(err, ErrBadCert) {
		t.Fatalf("a role name given as a DNS name was accepted: %v", err)
	}
	if _, _, err := IssueCert(p.caPEM, p.caKey, CertRequest{Name: "x", Role: "admin", ValidFor: time.Hour}); !errors.Is(err, ErrBadCert) {
		t.Fatalf("unknown role accepted: %v", err)
	}
}

func TestLoadBundleRefusesForeignAndExpired(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	f := other.issue(t, CertRequest{Name: "n", Role: RoleNode})
	f.CA = p.issue(t, CertRequest{Name: "ours", Role: RoleNode}).CA
	if _, err := LoadBundle(f, RoleNode); !errors.Is(err, ErrBadCert) || !strings.Contains(err.Error(), "not usable with the CA") {
		t.Fatalf("a certificate of another CA loaded: %v", err)
	}
	old := p.issue(t, CertRequest{Name: "old", Role: RoleNode, NotBefore: time.Now().Add(-3 * time.Hour), ValidFor: time.Hour})
	if _, err := LoadBundle(old, RoleNode); !errors.Is(err, ErrBadCert) {
		t.Fatalf("an expired certificate loaded: %v", err)
	}
}

// handshake runs one TLS handshake between a server and a client config
// and returns each side's error.
func handshake(t *testing.T, server, client *tls.Config) (serr, cerr error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		a, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		s := tls.Server(a, server)
		err = s.HandshakeContext(ctx)
		if err == nil {
			// TLS 1.3 clients finish before the server has checked their
			// certificate: read once so a refusal reaches the client.
			s.Write([]byte{1})
		}
		s.Close()
		done <- err
	}()
	b, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(b, client)
	cerr = c.HandshakeContext(ctx)
	c.Close()
	return <-done, cerr
}

func TestPeerHandshakes(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	node := p.bundle(t, "n1", RoleNode)
	node2 := p.bundle(t, "n2", RoleNode)
	router := p.bundle(t, "r", RoleRouter)
	client := p.bundle(t, "c", RoleClient)
	foreign := other.bundle(t, "intruder", RoleNode)

	if serr, cerr := handshake(t, node.PeerServer(), node2.PeerClient()); serr != nil || cerr != nil {
		t.Fatalf("node to node: %v / %v", serr, cerr)
	}
	if serr, cerr := handshake(t, node.PeerServer(), router.PeerClient()); serr != nil || cerr != nil {
		t.Fatalf("router to node: %v / %v", serr, cerr)
	}
	if serr, _ := handshake(t, node.PeerServer(), client.PeerClient()); serr == nil {
		t.Fatal("a mount host's certificate got through a peer port")
	}
	if serr, _ := handshake(t, node.PeerServer(), foreign.PeerClient()); serr == nil {
		t.Fatal("a certificate of another CA got through a peer port")
	}
	// A certificate of the cluster's CA that has expired.
	old := p.issue(t, CertRequest{Name: "old", Role: RoleNode, NotBefore: time.Now().Add(-3 * time.Hour), ValidFor: time.Hour})
	oldCert, err := tls.LoadX509KeyPair(old.Cert, old.Key)
	if err != nil {
		t.Fatal(err)
	}
	expired := node2.PeerClient()
	expired.Certificates = []tls.Certificate{oldCert}
	if serr, _ := handshake(t, node.PeerServer(), expired); serr == nil {
		t.Fatal("an expired certificate got through a peer port")
	}
	noCert := &tls.Config{RootCAs: node.Pool, ServerName: RoleNode.ServerName(), MinVersion: tls.VersionTLS13}
	if serr, _ := handshake(t, node.PeerServer(), noCert); serr == nil {
		t.Fatal("a peer without a certificate got through")
	}
	// A node dialling something that is not a node (a router's HTTPS
	// port, say) refuses it.
	if _, cerr := handshake(t, router.HTTPServer(), node.PeerClient()); cerr == nil {
		t.Fatal("a node accepted a router as a storage node")
	}
}

func TestKeysAndTokens(t *testing.T) {
	k, err := ParseKey(NewKey())
	if err != nil || len(k) != KeySize {
		t.Fatalf("NewKey: %d bytes, %v", len(k), err)
	}
	for _, bad := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q): %v", bad, err)
		}
	}
	keys, err := ParseKeys("# current first\n" + NewKey() + "\n\n" + NewKey() + "\n")
	if err != nil || len(keys) != 2 {
		t.Fatalf("ParseKeys: %d keys, %v", len(keys), err)
	}
	if _, err := ParseKeys("# nothing\n"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("an empty key file: %v", err)
	}
	tok := NewToken()
	if !WellFormedToken(tok) || tok == NewToken() {
		t.Fatalf("token %q", tok)
	}
	for _, bad := range []string{"", "shoal_", tok + "x", strings.TrimPrefix(tok, "shoal_"), "shoal_" + strings.Repeat("!", 43)} {
		if WellFormedToken(bad) {
			t.Errorf("%q passed as a token", bad)
		}
	}
	if HashToken(tok) == HashToken(NewToken()) {
		t.Fatal("two tokens hash alike")
	}
}

func TestSealChunk(t *testing.T) {
	k1, _ := ParseKey(NewKey())
	k2, _ := ParseKey(NewKey())
	s, err := NewSealer([][]byte{k1})
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte("secret content "), 1000)
	a, id := s.SealChunk(nil, plain)
	b, _ := s.SealChunk(make([]byte, 0, 8), plain)
	if !bytes.Equal(a, b) || len(a) != len(plain)+ChunkOverhead {
		t.Fatal("sealing the same content twice gave different chunks: deduplication would break")
	}
	if bytes.Contains(a, []byte("secret content")) {
		t.Fatal("the sealed chunk holds the plaintext")
	}
	c, _ := s.SealChunk(nil, append(bytes.Clone(plain), '!'))
	if bytes.Equal(a[:32], c[:32]) {
		t.Fatal("different content got the same siv")
	}
	got, err := s.OpenChunk(nil, a, id)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %v", err)
	}
	a[100] ^= 1
	if _, err := s.OpenChunk(nil, a, id); !errors.Is(err, ErrSealed) {
		t.Fatalf("a tampered chunk opened: %v", err)
	}
	other, _ := NewSealer([][]byte{k2})
	b2, _ := other.SealChunk(nil, plain)
	if bytes.Equal(b, b2) {
		t.Fatal("two data keys seal alike")
	}
	if _, err := s.OpenChunk(nil, b2, other.KeyID()); !errors.Is(err, ErrSealed) {
		t.Fatalf("a chunk of an unknown key opened: %v", err)
	}
	// Rotation: a key file with a new key first still opens the old.
	rot, err := NewSealer([][]byte{k2, k1})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rot.OpenChunk(nil, b, id); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("after rotation the old key's chunk: %v", err)
	}
	if rot.KeyID() != other.KeyID() {
		t.Fatal("the first key of the file does not seal")
	}
}

func TestSealInline(t *testing.T) {
	k, _ := ParseKey(NewKey())
	s, _ := NewSealer([][]byte{k})
	plain := []byte("a small file's secret")
	a, id := s.SealInline(plain)
	if bytes.Contains(a, plain) || len(a) != len(plain)+InlineOverhead {
		t.Fatal("inline content not sealed")
	}
	got, err := s.OpenInline(a, id)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q %v", got, err)
	}
	a[len(a)-1] ^= 1
	if _, err := s.OpenInline(a, id); !errors.Is(err, ErrSealed) {
		t.Fatalf("tampered inline content opened: %v", err)
	}
	if _, err := NewSealer([][]byte{k[:16]}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("a 16-byte data key: %v", err)
	}
}

func TestDirInit(t *testing.T) {
	d := Dir(filepath.Join(t.TempDir(), "secrets"))
	made, err := d.Init(DefaultInitOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 11 {
		t.Fatalf("made %d files: %v", len(made), made)
	}
	for _, p := range []string{d.CAKey(), d.Key(RoleNode), d.GossipKey(), d.DataKey(), d.AdminToken()} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", p, st.Mode(), err)
		}
	}
	for _, r := range []Role{RoleNode, RoleRouter, RoleClient} {
		if _, err := LoadBundle(d.TLS(r), r); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	if _, err := LoadToken(d.AdminToken()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(d.DataKey())
	os.Remove(d.Cert(RoleClient))
	again, err := d.Init(DefaultInitOptions())
	if err != nil || len(again) != 2 {
		t.Fatalf("second run made %v (%v); want only the client pair", again, err)
	}
	after, _ := os.ReadFile(d.DataKey())
	if !bytes.Equal(before, after) {
		t.Fatal("a second run replaced the data key")
	}
	if err := WriteNew(d.DataKey(), []byte("x"), 0o600); !errors.Is(err, ErrExists) {
		t.Fatalf("WriteNew over a file: %v", err)
	}
}

func TestThrottle(t *testing.T) {
	var th Throttle
	th.Window = time.Minute
	now := time.Unix(1000, 0)
	if !th.Allow("10.0.0.1", now) || th.Allow("10.0.0.1", now.Add(time.Second)) {
		t.Fatal("a second refusal within the window was let through")
	}
	if !th.Allow("10.0.0.2", now) {
		t.Fatal("another address was held back")
	}
	if !th.Allow("10.0.0.1", now.Add(2*time.Minute)) {
		t.Fatal("an address was held back past the window")
	}
}

// FuzzParseKeys: a key file's content is refused or yields keys of the
// sizes memberlist and AES take.
func FuzzParseKeys(f *testing.F) {
	f.Add(NewKey() + "\n")
	f.Add("# comment\n\n" + NewKey() + "\n" + NewKey())
	f.Add("not a key")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, content string) {
		keys, err := ParseKeys(content)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no key")
		}
		for _, k := range keys {
			if n := len(k); n != 16 && n != 24 && n != 32 {
				t.Fatalf("a key of %d bytes", n)
			}
		}
	})
}

// A certificate made now verifies on a machine whose clock is up to a day
// behind (or ahead, within its validity): a node an hour off still talks
// to its peers.
func TestCertificatesAllowClockSkew(t *testing.T) {
	p := newPKI(t)
	c, _, err := IssueCert(p.caPEM, p.caKey, CertRequest{Name: "n1", Role: RoleNode, ValidFor: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(p.caPEM)
	blk, _ := pem.Decode(c)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, skew := range []time.Duration{-24 * time.Hour, -time.Hour, 0, 30 * time.Minute} {
		opts := x509.VerifyOptions{Roots: roots, CurrentTime: time.Now().Add(skew), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		if _, err := cert.Verify(opts); err != nil {
			t.Errorf("a clock %v off rejects a certificate made now: %v", skew, err)
		}
	}
	if !cert.NotAfter.After(time.Now().Add(47 * time.Hour)) {
		t.Errorf("valid until %v: the allowance for skew must not shorten ValidFor", cert.NotAfter)
	}
}

// A chunk tag is the same for the same content under one key, differs
// across content and keys, holds no plain SHA-256, and needs the key.
func TestChunkTag(t *testing.T) {
	k1, _ := ParseKey(NewKey())
	k2, _ := ParseKey(NewKey())
	s1, _ := NewSealer([][]byte{k1})
	s2, _ := NewSealer([][]byte{k2})
	sum := sha256.Sum256([]byte("content"))
	a, ok := s1.ChunkTag(s1.KeyID(), sum)
	b, _ := s1.ChunkTag(s1.KeyID(), sum)
	if !ok || a != b || len(a) != TagSize {
		t.Fatalf("tags of one content: %x, %x (ok %v)", a, b, ok)
	}
	if bytes.Contains(sum[:], []byte(a)) {
		t.Fatal("the tag is part of the plain SHA-256")
	}
	if c, _ := s1.ChunkTag(s1.KeyID(), sha256.Sum256([]byte("other"))); c == a {
		t.Fatal("two contents tag alike")
	}
	if c, _ := s2.ChunkTag(s2.KeyID(), sum); c == a {
		t.Fatal("two data keys tag alike")
	}
	if _, ok := s1.ChunkTag(s2.KeyID(), sum); ok {
		t.Fatal("a tag under a key the sealer does not hold")
	}
}
