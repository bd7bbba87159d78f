// Package mount serves a Shoal cluster as a POSIX file system through
// FUSE. It talks to routers only, through the client package's inode API.
package mount

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a mount.
type Config struct {
	// Client reaches a router of the cluster: a *client.Client, given a
	// long Retry503, since a program writing through the mount should
	// see a failover as a stall, not an error.
	Client Client
	// AttrTimeout is how long the kernel (and the mount, for the entries
	// of a listing) may use an inode's attributes without asking again.
	AttrTimeout time.Duration
	// EntryTimeout is how long the kernel may use a name's lookup.
	EntryTimeout time.Duration
	// NegativeTimeout is how long the kernel may remember that a name does
	// not exist. 0 (the default) asks again every time, so a file another
	// host created is seen at once.
	NegativeTimeout time.Duration
	// WriteBuffer is how many bytes written to one open file gather in
	// memory before they are sent to the cluster, in the background while
	// the next ones gather; 0 means four chunks (16 MiB by default), as
	// many as the router stores at once. close(2) and fsync(2) send
	// everything, and wait for it.
	WriteBuffer int64
	// ReadCache is how many chunk-sized windows of each open file are
	// kept for reads, the one being read included (default 4): for a
	// sequential reader all but two of them are fetched ahead.
	ReadCache int
	// ActAs sends each request as the user of the process that made it
	// (uid, gid and groups), for a token that may act for a mount host's
	// users (one with the mount capability, with the host's certificate,
	// or an admin's). Without it every request is the token's own user.
	ActAs bool
	// LockTTL is the lease of the file locks (flock, fcntl) programs
	// take through the mount, which are the cluster's (see locks.go):
	// the mount renews them while it runs, and a mount that dies loses
	// them this long after its last renewal. 0 keeps locks local to this
	// host, as the kernel keeps them.
	LockTTL time.Duration
	// AllowOther lets users other than the one who mounted use the mount
	// (needs user_allow_other in /etc/fuse.conf for a non-root mounter).
	AllowOther bool
	// Debug logs every FUSE request.
	Debug bool
	// Name is shown as the mount's source in /proc/mounts (the router URL).
	Name string
	// Metrics, if set, is where the mount registers its Prometheus
	// metrics (FUSE operations, errors, write-back bytes) once mounted;
	// a registry serves one mount.
	Metrics prometheus.Registerer
	Logger  *slog.Logger
}

// DefaultConfig returns the defaults; Client must still be set.
func DefaultConfig() Config {
	return Config{
		AttrTimeout:  time.Second,
		EntryTimeout: time.Second,
		ReadCache:    4,
		LockTTL:      30 * time.Second,
		Name:         "shoal",
		Logger:       slog.Default(),
	}
}

// Validate reports the first invalid field, wrapped in ErrBadConfig.
func (c Config) Validate() error {
	switch {
	case c.Client == nil:
		return fmt.Errorf("%w: Client is nil", ErrBadConfig)
	case c.Logger == nil:
		return fmt.Errorf("%w: Logger is nil", ErrBadConfig)
	case c.AttrTimeout < 0:
		return fmt.Errorf("%w: AttrTimeout is %v: it must not be negative", ErrBadConfig, c.AttrTimeout)
	case c.EntryTimeout < 0:
		return fmt.Errorf("%w: EntryTimeout is %v: it must not be negative", ErrBadConfig, c.EntryTimeout)
	case c.LockTTL != 0 && (c.LockTTL < time.Second || c.LockTTL > 24*time.Hour):
		return fmt.Errorf("%w: LockTTL is %v: give 1s to 24h, or 0 for locks local to this host", ErrBadConfig, c.LockTTL)
	case c.NegativeTimeout < 0:
		return fmt.Errorf("%w: NegativeTimeout is %v: it must not be negative", ErrBadConfig, c.NegativeTimeout)
	case c.WriteBuffer < 0:
		return fmt.Errorf("%w: WriteBuffer is %d: it must not be negative (0 means four chunks)", ErrBadConfig, c.WriteBuffer)
	case c.ReadCache < 2:
		return fmt.Errorf("%w: ReadCache is %d: it needs at least 2 windows", ErrBadConfig, c.ReadCache)
	}
	return nil
}
