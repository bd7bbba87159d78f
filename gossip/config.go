package gossip

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// Config configures a Node. Start from DefaultConfig and set Name, Tags,
// BindAddr and Join; main fills it from flags.
type Config struct {
	// Name is the node's gossip name; it must be unique in the cluster and
	// stable across restarts, so that a restarted node replaces its own
	// failed entry instead of appearing twice.
	Name string
	// BindAddr is the ip:port that gossip listens on, TCP and UDP on the
	// same port. The host must be an IP literal (0.0.0.0 for every
	// interface). Port 0 picks a free port; GossipAddr reports it.
	BindAddr string
	// AdvertiseAddr is the ip:port other nodes use to reach this one, for
	// NAT or containers. Empty means BindAddr, or a private address of this
	// host when BindAddr is unspecified. Port 0 means the bound port.
	AdvertiseAddr string
	// Join lists seed addresses host:port of nodes already in the cluster.
	// One answering seed is enough; empty means this node starts a cluster.
	Join []string
	// Tags are the node's initial tags; SetTags changes them later.
	Tags Tags
	// ProbeInterval is how often the node probes a random peer. Together
	// with ProbeTimeout and SuspicionMult it sets how fast a dead node is
	// noticed (roughly 2 ProbeInterval + SuspicionMult ProbeInterval).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack before asking other
	// nodes to probe indirectly; about the network's 99th percentile RTT,
	// and below ProbeInterval.
	ProbeTimeout time.Duration
	// GossipInterval is how often queued updates (tags, joins, failures)
	// are sent to a few random peers.
	GossipInterval time.Duration
	// SuspicionMult scales how long a suspected node has to refute before
	// it is declared failed: SuspicionMult × ProbeInterval × max(1,
	// log10(cluster size)). Larger values mean fewer false failures on a
	// lossy network and slower detection.
	SuspicionMult int
	// PushPullInterval is how often the node exchanges its whole view
	// with a random peer over TCP. Besides repairing any update a peer
	// missed, it is how a restarted node learns the incarnation its peers
	// remember from before the restart and refutes it, so that they
	// believe its tags again: with a whole group restarted, the seeds it
	// joins through remember nothing, and until such an exchange the
	// rest of the cluster ignores it (0: memberlist's 30 s).
	PushPullInterval time.Duration
	// JoinRetry is how often to retry joining while no seed has answered.
	JoinRetry time.Duration
	// LeaveTimeout bounds the graceful leave in Close; also the time SetTags
	// waits for its update to go out.
	LeaveTimeout time.Duration
	// TCPTimeout bounds one TCP exchange with a peer (join, state sync,
	// fallback probe). Close may wait this long for a join in flight.
	TCPTimeout time.Duration
	// ReconnectTimeout is how long a failed member stays in the view (as
	// failed) before it is forgotten. Keep it well above the time a role
	// change or replacement takes to notice the failure.
	ReconnectTimeout time.Duration
	// TombstoneTimeout is how long a member that left gracefully stays in
	// the view (as left).
	TombstoneTimeout time.Duration
	// Keys encrypt and authenticate every gossip message (AES-GCM, with
	// memberlist's keyring): the first key sends, every key is tried on
	// what arrives, and a message no key opens is dropped, so a process
	// without the cluster's key can neither join nor be believed about
	// its tags. Each key is 16, 24 or 32 bytes. Empty: gossip travels in
	// clear and anyone who reaches the port may join (--insecure).
	Keys [][]byte
	// KeyringFile, when set, is where the keyring is kept when keys are
	// installed, made primary or removed at run time (Node.Keyring), and
	// read back at the next start, so a node restarted after a key
	// rotation still speaks the cluster's key.
	KeyringFile string
	// Logger receives serf and memberlist logs at Debug level and the
	// node's own warnings; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns settings for a LAN: a node killed without warning
// is seen as failed by its peers in about 0.35-0.5 s on loopback
// (TestNodeDetectsCrash logs it). SuspicionMult stays at 2 on purpose: from
// 3 up, memberlist waits for peer confirmations and a 3-node group can take
// 6 times longer. On a slower or lossy network, raise ProbeInterval and
// ProbeTimeout together.
func DefaultConfig() Config {
	return Config{
		BindAddr:         "0.0.0.0:7946",
		ProbeInterval:    100 * time.Millisecond,
		ProbeTimeout:     50 * time.Millisecond,
		GossipInterval:   50 * time.Millisecond,
		SuspicionMult:    2,
		PushPullInterval: time.Second,
		JoinRetry:        time.Second,
		LeaveTimeout:     time.Second,
		TCPTimeout:       2 * time.Second,
		ReconnectTimeout: 24 * time.Hour,
		TombstoneTimeout: time.Hour,
	}
}

// Validate reports the first invalid field, wrapped in ErrBadConfig.
func (c Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: Name is empty: give every node a unique name", ErrBadConfig)
	}
	if err := checkIPPort(c.BindAddr, true); err != nil {
		return fmt.Errorf("%w: BindAddr: %w", ErrBadConfig, err)
	}
	if c.AdvertiseAddr != "" {
		if err := checkIPPort(c.AdvertiseAddr, false); err != nil {
			return fmt.Errorf("%w: AdvertiseAddr: %w", ErrBadConfig, err)
		}
	}
	for _, seed := range c.Join {
		if err := checkSeed(seed); err != nil {
			return fmt.Errorf("%w: Join: %w", ErrBadConfig, err)
		}
	}
	if err := c.Tags.Validate(); err != nil {
		return fmt.Errorf("%w: Tags: %w", ErrBadConfig, err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval},
		{"JoinRetry", c.JoinRetry},
		{"LeaveTimeout", c.LeaveTimeout},
		{"TCPTimeout", c.TCPTimeout},
		{"ReconnectTimeout", c.ReconnectTimeout},
		{"TombstoneTimeout", c.TombstoneTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s is %v: it must be positive (see DefaultConfig)", ErrBadConfig, d.name, d.v)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("%w: ProbeTimeout %v must be below ProbeInterval %v, or indirect probes never run", ErrBadConfig, c.ProbeTimeout, c.ProbeInterval)
	}
	for i, k := range c.Keys {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("%w: gossip key %d has %d bytes: want 16, 24 or 32 (make one with 'shoal keygen')", ErrBadConfig, i+1, n)
		}
	}
	if c.SuspicionMult < 1 {
		return fmt.Errorf("%w: SuspicionMult is %d: it must be at least 1", ErrBadConfig, c.SuspicionMult)
	}
	return nil
}

// checkIPPort accepts ip:port with an IP literal; memberlist binds a
// hostname it cannot parse to every interface, so a hostname is refused
// rather than silently widened. An unspecified IP is allowed only to bind.
func checkIPPort(addr string, bind bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not ip:port: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("%q: host must be an IP address, not a name", addr)
	}
	if !bind && ip.IsUnspecified() {
		return fmt.Errorf("%q: other nodes cannot reach an unspecified address: give this host's IP", addr)
	}
	if _, err := parsePort(port, true); err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	return nil
}

// checkSeed accepts host:port where host may be a name, resolved at join.
func checkSeed(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("seed %q is not host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("seed %q has no host", addr)
	}
	if _, err := parsePort(port, false); err != nil {
		return fmt.Errorf("seed %q: %w", addr, err)
	}
	return nil
}

func parsePort(s string, zeroOK bool) (int, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || (p == 0 && !zeroOK) {
		return 0, fmt.Errorf("port %q is not a number in 1-65535", s)
	}
	return int(p), nil
}
