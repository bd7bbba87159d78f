package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"shoal/client"
	"shoal/harness"
	"shoal/meta"
	"shoal/secure"
	"shoal/wire"
)

// TestSecureByDefault: a server given no secrets refuses to start and
// says how to make them; with --insecure it starts and says, loudly, what
// that means.
func TestSecureByDefault(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"primary", "--group", "g1", "--data", filepath.Join(dir, "n"), "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"--gossip", fmt.Sprintf("127.0.0.1:%d", freePort(t))},
		{"router", "--http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--gossip", fmt.Sprintf("127.0.0.1:%d", freePort(t))},
	} {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = append(os.Environ(), "SHOAL_CREDENTIALS="+os.DevNull)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("shoal %s without secrets: %v, want exit status 1\n%s", args[0], err, out)
		}
		for _, want := range []string{"refusing to run without TLS", "shoal secrets init", "--insecure"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("shoal %s without secrets does not say %q:\n%s", args[0], want, out)
			}
		}
	}
	// A secure router refuses to start without a data key.
	sec := secure.Dir(filepath.Join(dir, "secrets"))
	if _, err := sec.Init(secure.DefaultInitOptions()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "router", "--http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--gossip", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--gossip-key-file", sec.GossipKey(), "--tls-ca", sec.CA(), "--tls-cert", sec.Cert(secure.RoleRouter), "--tls-key", sec.Key(secure.RoleRouter))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--data-key-file") {
		t.Fatalf("a router without a data key: %v\n%s", err, out)
	}
	// A node given the router's certificate refuses it.
	cmd = exec.Command(binary(t), "replica", "--group", "g1", "--data", filepath.Join(dir, "m"), "--secrets", string(sec),
		"--tls-cert", sec.Cert(secure.RoleRouter), "--tls-key", sec.Key(secure.RoleRouter))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is not a node certificate") {
		t.Fatalf("a node with a router's certificate: %v\n%s", err, out)
	}
}

// TestInsecureSmoke runs a cluster with --insecure: plain HTTP works as
// before, and every process says it runs insecure.
func TestInsecureSmoke(t *testing.T) {
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}, Insecure: true})
	if !strings.HasPrefix(c.API, "http://") {
		t.Fatalf("insecure router at %s", c.API)
	}
	c.expect("PUT", "/v1/fs/smoke/a.txt", strings.NewReader("plain"), 201)
	if b := c.expect("GET", "/v1/fs/smoke/a.txt", nil, 200); string(b) != "plain" {
		t.Fatalf("read back %q", b)
	}
	out, errOut, code := c.run("cat", "/smoke/a.txt")
	if code != 0 || out != "plain" {
		t.Fatalf("shoal cat: %d %q %s", code, out, errOut)
	}
	for _, p := range c.Servers() {
		b, _ := os.ReadFile(p.Log)
		if !strings.Contains(string(b), "running with --insecure") {
			t.Errorf("%s does not warn that it runs insecure", p.Name)
		}
	}
}

// TestIntruders: a storage node with another cluster's secrets (another
// gossip key and CA), a peer presenting a self-signed certificate, and a
// process writing raw msgpack to the peer ports: none joins, claims a role
// or changes a byte.
func TestIntruders(t *testing.T) {
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}})
	data := randomBytes(11, 200<<10)
	c.expect("PUT", "/v1/fs/keep/data.bin", strings.NewReader(string(data)), 201)
	c.expect("PUT", "/v1/fs/keep/note.txt", strings.NewReader("hello"), 201)
	harness.Await(t, 20*time.Second, "every member to hold the file's chunks", func() bool {
		for _, p := range c.Nodes {
			if len(c.chunkFiles(p)) == 0 {
				return false
			}
		}
		return true
	})
	before := c.state()

	// A replica of g1 with its own secrets, and a high ID, joining through
	// the cluster's seed.
	other := secure.Dir(filepath.Join(c.Dir, "other-secrets"))
	if _, err := other.Init(secure.DefaultInitOptions()); err != nil {
		t.Fatal(err)
	}
	intruder := c.NewProc("intruder", "primary", "--group", "g1", "--name", "intruder", "--id", "999999",
		"--data", filepath.Join(c.Dir, "intruder"), "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--gossip", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--join", c.Seed, "--secrets", string(other))
	c.Nodes = append(c.Nodes, intruder) // listed with the rest: state() reads its chunks too
	c.start(intruder)
	harness.Await(t, 20*time.Second, "the intruder to log that its join was refused", func() bool {
		b, _ := os.ReadFile(intruder.Log)
		return strings.Contains(string(b), "gossip join refused")
	})
	harness.Await(t, 20*time.Second, "a member to log a gossip message no key opens", func() bool {
		for _, p := range c.Nodes[:3] {
			if b, _ := os.ReadFile(p.Log); strings.Contains(string(b), "no gossip key opens") {
				return true
			}
		}
		return false
	})

	// A self-signed certificate, and plain msgpack, at every peer port.
	ca, caKey, err := secure.NewCA("self", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := secure.IssueCert(ca, caKey, secure.CertRequest{Name: "self", Role: secure.RoleNode, ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	self, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	selfTLS := &tls.Config{Certificates: []tls.Certificate{self}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	harmful := []wire.Message{
		&wire.DeleteChunks{Group: "g1", Hashes: []meta.Hash{}, Idle: 0},
		&wire.Claim{Group: "g1", By: "intruder"},
		&wire.Propose{Group: "g1", Op: meta.Op{Kind: meta.OpDelete, Path: "/keep", Recursive: true}},
		&wire.Propose{Group: "g1", Op: meta.Op{Kind: meta.OpConfig, Members: []meta.Member{{ID: 1, Name: "x", Addr: "127.0.0.1:1"}}}},
	}
	for _, p := range c.Nodes[:3] {
		addr := p.Arg("--listen")
		for _, m := range harmful {
			body, err := wire.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			frame := append([]byte{byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
			if got := exchange(t, addr, nil, frame); got != "" {
				t.Errorf("%s answered plain msgpack type %d: %q", p.Name, m.Type(), got)
			}
			if got := exchange(t, addr, selfTLS, frame); got != "" {
				t.Errorf("%s answered a self-signed peer's type %d: %q", p.Name, m.Type(), got)
			}
		}
	}

	// Plain HTTP to the router's HTTPS port is answered 400, and nothing
	// more.
	u := strings.TrimPrefix(c.API, "https://")
	plain, err := net.DialTimeout("tcp", u, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	plain.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(plain, "PUT /v1/fs/keep/data.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	answer := make([]byte, 200)
	n, _ := plain.Read(answer)
	plain.Close()
	if !strings.HasPrefix(string(answer[:n]), "HTTP/1.0 400") {
		t.Errorf("plain HTTP to the HTTPS port answered %q", answer[:n])
	}

	// Nobody outside the cluster is in the router's view, no term moved,
	// and not a byte changed.
	cs, ok := c.clusterView()
	if !ok {
		t.Fatal("no cluster view")
	}
	for _, n := range cs.Nodes {
		if n.Name == "intruder" || n.Term > 1 {
			t.Errorf("the router sees %+v", n)
		}
	}
	after := c.state()
	if got := after.chunks["intruder"]; len(got) != 0 {
		t.Errorf("the intruder received chunks: %v", got)
	}
	delete(after.chunks, "intruder")
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("intruders changed the cluster:\nbefore %v\nafter  %v", before, after)
	}
	if b := c.expect("GET", "/v1/fs/keep/data.bin", nil, 200); string(b) != string(data) {
		t.Fatal("the file reads back differently")
	}
	c.expect("PUT", "/v1/fs/keep/after.txt", strings.NewReader("still writable"), 201)
}

// exchange sends frame to addr (through TLS with cfg, when not nil) and
// returns whatever came back before the connection closed, "" for nothing.
func exchange(t *testing.T, addr string, cfg *tls.Config, frame []byte) string {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	var conn net.Conn = raw
	if cfg != nil {
		tc := tls.Client(raw, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if tc.HandshakeContext(ctx) != nil {
			return ""
		}
		conn = tc
	}
	if _, err := conn.Write(frame); err != nil {
		return ""
	}
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	return string(buf[:n])
}

// TestDev runs 'shoal dev' as the README's first command does, then the
// CLI with no flag at all: it finds the router, the CA and the admin's
// token in the credentials file dev wrote.
func TestDev(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "config", "credentials")
	env := append(os.Environ(), "SHOAL_CREDENTIALS="+creds, "SHOAL_ROUTER=", "SHOAL_CA=", "SHOAL_TOKEN=")
	// The same ports on every start, as a user's 'shoal dev' has.
	base, err := ports.Block(20)
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, portBase := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprint(base)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s3Addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// Each start logs to a file of its own, so that its banner is its own.
	var dev *harness.Proc
	start := func(run int) {
		dev = &harness.Proc{Name: "shoal dev", Log: filepath.Join(dir, fmt.Sprintf("dev%d.log", run)),
			Args: []string{binary(t), "dev", "--data", filepath.Join(dir, "data"), "--http", httpAddr, "--port-base", portBase, "--metrics", metricsAddr, "--s3", s3Addr},
			Env:  []string{"SHOAL_CREDENTIALS=" + creds}}
		if err := dev.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(dev.Kill)
		harness.Await(t, 30*time.Second, "shoal dev's banner", func() bool { return strings.Contains(dev.Tail(100), "Press Ctrl-C") })
	}
	t.Cleanup(func() {
		if t.Failed() && dev != nil {
			t.Logf("last lines of shoal dev:\n%s", dev.Tail(30))
		}
	})
	cli := func(args ...string) (string, string, int) {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = env
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return o.String(), e.String(), code
	}
	start(1)
	if st, err := os.Stat(creds); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	first, _ := os.ReadFile(creds)
	if b, _ := os.ReadFile(dev.Log); !strings.Contains(string(b), "https://") {
		t.Fatal("dev does not serve HTTPS")
	}
	// The banner names the metrics of every node of the process, and the
	// console, which the router serves to a browser without a token.
	if !strings.Contains(dev.Tail(100), "Metrics: http://"+metricsAddr+"/metrics") {
		t.Fatalf("the banner does not name the metrics address %s:\n%s", metricsAddr, dev.Tail(20))
	}
	consoleURL := "https://" + httpAddr + "/ui/"
	if !strings.Contains(dev.Tail(100), "Console: "+consoleURL) {
		t.Fatalf("the banner does not name the console %s:\n%s", consoleURL, dev.Tail(20))
	}
	cl, err := client.ReadCredentials(creds)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cl.Config()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cc.TLS}, Timeout: 10 * time.Second}).Get(consoleURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<title>Shoal console</title>") {
		t.Fatalf("GET %s: %s, %.200q; want the console's page", consoleURL, resp.Status, page)
	}
	harness.Await(t, 10*time.Second, "dev's metrics to show both groups' primaries", func() (bool, error) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `shoal_node_info{group="g1",node="g1-n1",role="primary"} 1`) &&
			strings.Contains(string(b), `shoal_node_info{group="g2",node="g2-n1",role="primary"} 1`), err
	})
	var stdout, stderr string
	var code int
	harness.Await(t, 30*time.Second, "shoal put through the dev cluster with no flags", func() bool {
		_, stderr, code = cli("put", "-", "/docs/x")
		return code == 0
	})
	if stdout, stderr, code = cli("cat", "/docs/x"); code != 0 || stdout != "" {
		t.Fatalf("shoal cat: %d %q %s", code, stdout, stderr)
	}
	// The S3 API, with the admin's key dev made and keeps for the AWS
	// tools in secrets/s3.env.
	s3env := filepath.Join(dir, "data", "secrets", "s3.env")
	if !strings.Contains(dev.Tail(100), "S3:      https://"+s3Addr+", the admin's access key in "+s3env) {
		t.Fatalf("the banner does not name the S3 endpoint %s and %s:\n%s", s3Addr, s3env, dev.Tail(20))
	}
	s3key := func() (string, string) {
		b, err := os.ReadFile(s3env)
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok {
				vars[k] = v
			}
		}
		if vars["AWS_CA_BUNDLE"] != cl.CA {
			t.Fatalf("%s names the CA %q, not %q", s3env, vars["AWS_CA_BUNDLE"], cl.CA)
		}
		return vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"]
	}
	id, secret := s3key()
	m, err := minio.New(s3Addr, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), Secure: true,
		Transport: &http.Transport{TLSClientConfig: cc.TLS}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.MakeBucket(context.Background(), "devbucket", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make a bucket with the key of %s: %v", s3env, err)
	}
	if _, err := m.PutObject(context.Background(), "devbucket", "k", strings.NewReader("by s3"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code = cli("cat", "/devbucket/k"); code != 0 || stdout != "by s3" {
		t.Fatalf("shoal cat of an object: %d %q %s", code, stdout, stderr)
	}
	// As Ctrl-C would (SIGTERM is handled alike).
	if err := dev.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Starting again finds the same secrets and data.
	start(2)
	again, _ := os.ReadFile(creds)
	if tokenLine(first) != tokenLine(again) || tokenLine(first) == "" {
		t.Fatalf("the admin token changed across restarts:\n%s\n%s", first, again)
	}
	harness.Await(t, 30*time.Second, "the file after a restart", func() (bool, error) {
		if _, stderr, code = cli("stat", "/docs/x"); code != 0 {
			return false, fmt.Errorf("shoal stat: %s", strings.TrimSpace(stderr))
		}
		return true, nil
	})
	if cl, err := client.ReadCredentials(creds); err != nil || cl.CA == "" || cl.Token == "" {
		t.Fatalf("credentials %+v: %v", cl, err)
	}
	harness.Await(t, 30*time.Second, "the S3 line of the second banner", func() bool { return strings.Contains(dev.Tail(100), "S3: ") })
	if id2, secret2 := s3key(); id2 != id || secret2 != secret {
		t.Fatalf("a restart made another S3 key (%s, was %s)", id2, id)
	}
}

func tokenLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "token = ") {
			return l
		}
	}
	return ""
}
