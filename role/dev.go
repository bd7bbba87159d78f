package role

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"shoal/client"
	"shoal/gossip"
	"shoal/meta"
	"shoal/secure"
)

// DevConfig configures `shoal dev`: in this process, on 127.0.0.1, one
// router, groups g1 (the meta group) and g2 of a primary and two replicas
// each, and two standbys.
type DevConfig struct {
	// HTTP is the router's API address (default 127.0.0.1:8080).
	HTTP string
	// S3 is the router's S3 API address (default 127.0.0.1:9000; ""
	// serves none). With security, the admin gets an access key, kept in
	// DataDir/secrets/s3.env for the S3 clients on this machine.
	S3 string
	// DataDir holds one subdirectory per node (default ./shoal-dev).
	DataDir string
	// PortBase is the first of the ports the nodes use: node i listens
	// for peers on PortBase+i and gossips on PortBase+10+i, and the
	// router gossips on PortBase+19 (default 7400).
	PortBase int
	// Insecure runs the cluster without TLS, gossip encryption, users or
	// encryption at rest. By default the secrets are made in
	// DataDir/secrets on the first start and found there afterwards.
	Insecure bool
	// CredentialsFile is where the admin's credentials are written for
	// the CLI and the mount on this machine ("" writes none). A file that
	// another cluster's credentials already occupy is left alone.
	CredentialsFile string
	Logger          *slog.Logger
	// Metrics, if set, is the process's metrics endpoint: every node and
	// the router register there, and the banner names it.
	Metrics *MetricsEndpoint
	// Out receives the banner that says where the cluster listens
	// (default standard output).
	Out io.Writer
}

// devPorts is how many ports from PortBase the dev cluster uses.
const devPorts = 20

// DefaultDevConfig returns a DevConfig with the defaults of `shoal dev`.
func DefaultDevConfig() DevConfig {
	return DevConfig{
		HTTP:     "127.0.0.1:8080",
		S3:       "127.0.0.1:9000",
		DataDir:  "./shoal-dev",
		PortBase: 7400,
		Logger:   slog.Default(),
		Out:      os.Stdout,
	}
}

// Validate reports the first invalid field, wrapped in ErrBadConfig.
func (c DevConfig) Validate() error {
	switch {
	case c.DataDir == "":
		return fmt.Errorf("%w: --data is required: the directory that keeps the nodes' state", ErrBadConfig)
	case c.PortBase < 1 || c.PortBase > 65536-devPorts:
		return fmt.Errorf("%w: --port-base %d: want 1 to %d: the cluster uses %d ports from there", ErrBadConfig, c.PortBase, 65536-devPorts, devPorts)
	case c.Logger == nil:
		return fmt.Errorf("%w: Logger is nil", ErrBadConfig)
	case c.Out == nil:
		return fmt.Errorf("%w: Out is nil", ErrBadConfig)
	}
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		return fmt.Errorf("%w: --http %q: want HOST:PORT: %w", ErrBadConfig, c.HTTP, err)
	}
	if _, _, err := net.SplitHostPort(c.S3); c.S3 != "" && err != nil {
		return fmt.Errorf("%w: --s3 %q: want HOST:PORT, or \"\" for no S3 API: %w", ErrBadConfig, c.S3, err)
	}
	return nil
}

// RunDev runs a whole local cluster until ctx ends.
func RunDev(ctx context.Context, cfg DevConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	host := "127.0.0.1"
	gossipAddr := func(i int) string { return net.JoinHostPort(host, strconv.Itoa(cfg.PortBase+10+i)) }
	seeds := []string{gossipAddr(0)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	sec := Security{Insecure: cfg.Insecure}
	if !cfg.Insecure {
		dir, err := secure.Dir(filepath.Join(cfg.DataDir, "secrets")).Abs()
		if err != nil {
			return err
		}
		made, err := dir.Init(secure.DefaultInitOptions())
		if err != nil {
			return fmt.Errorf("make the dev cluster's secrets: %w", err)
		}
		if len(made) > 0 {
			cfg.Logger.Info("made the cluster's secrets", "dir", dir, "files", len(made))
		}
		sec.Secrets = string(dir)
	}
	type devNode struct {
		role  gossip.Role
		group string
	}
	metaGroup := meta.DefaultMetaGroup
	nodes := []devNode{
		{gossip.RolePrimary, metaGroup}, {gossip.RoleReplica, metaGroup}, {gossip.RoleReplica, metaGroup},
		{gossip.RolePrimary, "g2"}, {gossip.RoleReplica, "g2"}, {gossip.RoleReplica, "g2"},
		{gossip.RoleStandby, ""}, {gossip.RoleStandby, ""},
	}
	names := devNames(cfg.DataDir, len(nodes), func(i int) string { return nodes[i].group })
	for i, d := range nodes {
		nc := DefaultNodeConfig()
		nc.Start, nc.Group, nc.Name = d.role, d.group, names[i]
		nc.DataDir = filepath.Join(cfg.DataDir, names[i])
		nc.Listen = net.JoinHostPort(host, strconv.Itoa(cfg.PortBase+i))
		nc.Gossip.BindAddr, nc.Gossip.Join = gossipAddr(i), seeds
		nc.Security, nc.Logger = sec, cfg.Logger
		nc.Metrics = cfg.Metrics
		run(func() error { return RunNode(ctx, nc) })
	}
	ready := make(chan string, 1)
	rc := DefaultRouterConfig()
	rc.HTTP, rc.Name, rc.Security, rc.Logger = cfg.HTTP, "router", sec, cfg.Logger
	rc.Metrics = cfg.Metrics
	rc.Gossip.BindAddr, rc.Gossip.Join = gossipAddr(9), seeds
	rc.Ready = func(a string) { ready <- a }
	s3ready := make(chan string, 1)
	rc.S3, rc.S3Ready = cfg.S3, func(a string) { s3ready <- a }
	run(func() error { return RunRouter(ctx, rc) })
	select {
	case url := <-ready:
		s3url := ""
		if cfg.S3 != "" {
			s3url = <-s3ready // announced before the API
		}
		banner(ctx, cfg, sec, url, s3url)
	case <-ctx.Done():
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// devNames names the dev cluster's n nodes so a person can tell them
// apart: g1-n1, g1-n2, ... by the group they start in, standby-1, ...
// for the rest (a standby may later serve a group, and a primary fail
// over, so the name says where a node started, not what it is now). Each
// node's data directory has its name. A data directory made before nodes
// had such names (node0 ...) keeps its old names, so its cluster starts
// again with its data.
func devNames(dataDir string, n int, group func(i int) string) []string {
	names := make([]string, n)
	if _, err := os.Stat(filepath.Join(dataDir, "node0")); err == nil {
		for i := range names {
			names[i] = fmt.Sprintf("node%d", i)
		}
		return names
	}
	counts := map[string]int{}
	for i := range names {
		g := group(i)
		counts[g]++
		if g == "" {
			names[i] = fmt.Sprintf("standby-%d", counts[g])
		} else {
			names[i] = fmt.Sprintf("%s-n%d", g, counts[g])
		}
	}
	return names
}

// banner tells where the cluster listens and, when it is secure, where its
// secrets are and how the CLI on this machine finds them.
func banner(ctx context.Context, cfg DevConfig, sec Security, url, s3url string) {
	fmt.Fprintf(cfg.Out, "Shoal dev cluster: 1 router, groups %s (meta) and g2 of 3 nodes each, 2 standbys (data in %s)\n  API:     %s\n", meta.DefaultMetaGroup, cfg.DataDir, url)
	console := "log in with the admin token; trust the cluster's CA, " + secure.Dir(sec.Secrets).CA() + ", or the browser warns"
	if sec.Insecure {
		console = "no login with --insecure"
	}
	fmt.Fprintf(cfg.Out, "  Console: %s/ui/ (%s)\n", url, console)
	if cfg.Metrics != nil {
		fmt.Fprintf(cfg.Out, "  Metrics: %s/metrics (Prometheus, every node of this process)\n", cfg.Metrics.URL)
	}
	if s3url != "" && sec.Insecure {
		fmt.Fprintf(cfg.Out, "  S3:      %s (any access key: every request acts as root)\n", s3url)
	}
	if sec.Insecure {
		fmt.Fprintf(cfg.Out, `  INSECURE: no TLS, no users, no encryption at rest (--insecure)
  Try:     shoal put --router %[1]s ./README.md /docs/readme.md
  Or curl: curl -T README.md %[1]s/v1/fs/docs/readme.md
Press Ctrl-C to stop; starting again finds the data again.
`, url)
		return
	}
	d := secure.Dir(sec.Secrets)
	creds := client.Credentials{Router: url, CA: d.CA(), Cert: d.Cert(secure.RoleClient), Key: d.Key(secure.RoleClient)}
	creds.Token, _ = secure.LoadToken(d.AdminToken())
	where := writeDevCredentials(cfg, creds)
	if s3url != "" {
		if env, err := devS3Key(ctx, d, creds); err != nil {
			fmt.Fprintf(cfg.Out, "  S3:      %s (no access key yet: %v; make one with 'shoal user key add')\n", s3url, err)
		} else {
			fmt.Fprintf(cfg.Out, "  S3:      %[1]s, the admin's access key in %[2]s\n  Try:     . %[2]s && aws --endpoint-url %[1]s s3 ls\n", s3url, env)
		}
	}
	fmt.Fprintf(cfg.Out, `  Secrets: %[2]s (CA, certificates, gossip and data keys, admin token)
  Admin:   user admin, token in %[3]s
  CLI:     %[4]s
  Try:     shoal put ./README.md /docs/readme.md && shoal ls /docs && shoal status
  Or curl: curl --cacert %[5]s -H "Authorization: Bearer $(cat %[3]s)" -T README.md %[1]s/v1/fs/docs/readme.md
Press Ctrl-C to stop; starting again finds the data again.
`, url, d, d.AdminToken(), where, d.CA())
}

// devS3Key returns the file that holds the admin's S3 access key, as
// environment variables the S3 clients read (AWS_ACCESS_KEY_ID and the
// like), making the key on the first start, or again if it was removed.
func devS3Key(ctx context.Context, d secure.Dir, creds client.Credentials) (string, error) {
	env := filepath.Join(string(d), "s3.env")
	tlsc, err := secure.ClientConfig(creds.CA, "", "")
	if err != nil {
		return "", err
	}
	c, err := client.New(client.Config{Router: creds.Router, TLS: tlsc, Token: creds.Token, Timeout: 5 * time.Second, Retry503: 30 * time.Second})
	if err != nil {
		return "", err
	}
	// The admin is made as the meta group first elects a primary:
	// until then its token is refused.
	var keys []client.AccessKey
	deadline := time.Now().Add(30 * time.Second)
	for {
		if keys, err = c.AccessKeys(ctx, "admin"); err == nil || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return "", err
	}
	if b, err := os.ReadFile(env); err == nil {
		_, id, _ := strings.Cut(string(b), "AWS_ACCESS_KEY_ID=")
		id, _, _ = strings.Cut(id, "\n")
		for _, k := range keys {
			if k.ID == id {
				return env, nil
			}
		}
	}
	k, err := c.AddAccessKey(ctx, "admin")
	if err != nil {
		return "", err
	}
	content := fmt.Sprintf("# The S3 access key of the dev cluster's admin, written by shoal dev: . this file\n"+
		"export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_CA_BUNDLE=%s\nexport AWS_DEFAULT_REGION=us-east-1\n",
		k.ID, k.Secret, creds.CA)
	return env, os.WriteFile(env, []byte(content), 0o600)
}

// devCredentialsHeader marks a credentials file written by shoal dev: only
// such a file is replaced by a later dev start.
const devCredentialsHeader = "written by shoal dev"

// writeDevCredentials writes the admin's credentials where the CLI looks,
// unless the file there holds another cluster's, and says what it did.
func writeDevCredentials(cfg DevConfig, creds client.Credentials) string {
	p := cfg.CredentialsFile
	if p == "" {
		return "pass --router, --ca and --token (or $SHOAL_ROUTER, $SHOAL_CA, $SHOAL_TOKEN)"
	}
	if b, err := os.ReadFile(p); err == nil && !strings.Contains(string(b), devCredentialsHeader) {
		return fmt.Sprintf("%s holds other credentials, left alone: pass --router %s --ca %s --token ... (or set $SHOAL_CREDENTIALS)", p, creds.Router, creds.CA)
	}
	header := devCredentialsHeader + " for the cluster in " + cfg.DataDir + ";\nit is replaced when shoal dev starts again. The CLI and the mount read it."
	if err := client.WriteCredentials(p, creds, header); err != nil {
		return fmt.Sprintf("could not write %s (%v): pass --router, --ca and --token", p, err)
	}
	return "finds the router, CA and admin token in " + p + " (no flags needed)"
}
