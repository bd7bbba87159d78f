package role

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"shoal/secure"
)

// Security is how a server proves itself and protects what it sends. The
// default is secure: a server given neither secrets nor Insecure refuses
// to start.
type Security struct {
	// Insecure runs without TLS, gossip encryption, users or encryption at
	// rest: anyone who reaches a port owns the cluster. It is logged at
	// start and every InsecureNag.
	Insecure bool
	// Secrets is a directory made by 'shoal secrets init': every file
	// below left empty is taken from it.
	Secrets string
	// GossipKey is a base64 gossip key; GossipKeyFile a file of them (one
	// per line, the first in use).
	GossipKey, GossipKeyFile string
	// TLSCA, TLSCert and TLSKey are the cluster's CA certificate and this
	// server's certificate and key (PEM).
	TLSCA, TLSCert, TLSKey string
	// DataKeyFile holds the data keys content is sealed with at rest
	// (routers only: storage nodes never see plaintext).
	DataKeyFile string
	// AdminTokenFile holds the first admin's token: a router creates the
	// admin user with it when the cluster has no user yet (routers only).
	AdminTokenFile string
}

// InsecureNag is how often a server running with --insecure says so again.
const InsecureNag = 5 * time.Minute

// secrets is a Security loaded for one role.
type secrets struct {
	insecure   bool
	gossipKeys [][]byte
	tls        *secure.Bundle
	sealer     *secure.Sealer
	adminToken string
}

// errNoSecrets explains why a server without secrets does not start.
var errNoSecrets = errors.New("refusing to run without TLS and a gossip key: anyone who reached its ports would own the cluster")

// load reads the files role r needs. A missing file is an error that says
// how to make it, or how to run without it on purpose.
func (s Security) load(r secure.Role) (*secrets, error) {
	if s.Insecure {
		return &secrets{insecure: true}, nil
	}
	if s.Secrets != "" {
		d := secure.Dir(s.Secrets)
		fill := func(p *string, v string) {
			if *p == "" {
				*p = v
			}
		}
		if s.GossipKey == "" {
			fill(&s.GossipKeyFile, d.GossipKey())
		}
		fill(&s.TLSCA, d.CA())
		fill(&s.TLSCert, d.Cert(r))
		fill(&s.TLSKey, d.Key(r))
		if r == secure.RoleRouter {
			fill(&s.DataKeyFile, d.DataKey())
			// The admin token is needed once, for the first start: an
			// operator may take it out of the directory afterwards.
			if _, err := os.Stat(d.AdminToken()); err == nil {
				fill(&s.AdminTokenFile, d.AdminToken())
			}
		}
	}
	hint := "make them with 'shoal secrets init DIR' and start with --secrets DIR (or give --gossip-key, --tls-ca, --tls-cert and --tls-key), or run with --insecure"
	if s.GossipKey == "" && s.GossipKeyFile == "" || s.TLSCA == "" || s.TLSCert == "" || s.TLSKey == "" {
		return nil, fmt.Errorf("%w; %s", errNoSecrets, hint)
	}
	out := &secrets{}
	var err error
	if s.GossipKey != "" {
		k, err := secure.ParseKey(s.GossipKey)
		if err != nil {
			return nil, fmt.Errorf("--gossip-key: %w", err)
		}
		out.gossipKeys = [][]byte{k}
	} else if out.gossipKeys, err = secure.LoadKeys(s.GossipKeyFile); err != nil {
		return nil, fmt.Errorf("--gossip-key-file: %w", err)
	}
	if out.tls, err = secure.LoadBundle(secure.TLSFiles{CA: s.TLSCA, Cert: s.TLSCert, Key: s.TLSKey}, r); err != nil {
		return nil, err
	}
	if r != secure.RoleRouter {
		return out, nil
	}
	if s.DataKeyFile == "" {
		return nil, fmt.Errorf("%w: a router needs --data-key-file to seal content at rest; %s", errNoSecrets, hint)
	}
	keys, err := secure.LoadKeys(s.DataKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--data-key-file: %w", err)
	}
	if out.sealer, err = secure.NewSealer(keys); err != nil {
		return nil, fmt.Errorf("--data-key-file: %w", err)
	}
	if s.AdminTokenFile != "" {
		if out.adminToken, err = secure.LoadToken(s.AdminTokenFile); err != nil {
			return nil, fmt.Errorf("--admin-token-file: %w", err)
		}
	}
	return out, nil
}

// The TLS configurations of each side of a connection; nil with
// --insecure, which the transports and the HTTP server take as plain TCP.
func (s *secrets) peerClient() *tls.Config {
	if s.insecure {
		return nil
	}
	return s.tls.PeerClient()
}

func (s *secrets) peerServer() *tls.Config {
	if s.insecure {
		return nil
	}
	return s.tls.PeerServer()
}

func (s *secrets) httpServer() *tls.Config {
	if s.insecure {
		return nil
	}
	return s.tls.HTTPServer()
}

// warn logs what the secrets mean for this server, and with --insecure
// keeps saying so every InsecureNag until ctx ends.
func (s *secrets) warn(ctx context.Context, log *slog.Logger, what string) {
	if !s.insecure {
		log.Info("running secure", "tls_cert", s.tls.Leaf.Subject.CommonName, "role", s.tls.Role,
			"cert_expires", s.tls.Expires().Format(time.DateOnly), "gossip_keys", len(s.gossipKeys))
		if left := time.Until(s.tls.Expires()); left < 30*24*time.Hour {
			log.Warn("the TLS certificate expires soon: issue a new one with 'shoal tls cert create' and restart", "expires", s.tls.Expires(), "in", left.Round(time.Hour))
		}
		return
	}
	nag := func() {
		log.Warn("running with --insecure: " + what + " anyone who reaches its ports can read, change or delete every file and join the cluster")
	}
	nag()
	go func() {
		t := time.NewTicker(InsecureNag)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				nag()
			}
		}
	}()
}
