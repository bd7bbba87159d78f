// Package mount serves a Shoal cluster as a POSIX file system through
// FUSE. It talks to routers only, through the client package's inode API.
package mount

import (
	"errors"
	"log/slog"
	"time"
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
	// AllowOther lets users other than the one who mounted use the mount
	// (needs user_allow_other in /etc/fuse.conf for a non-root mounter).
	AllowOther bool
	// Debug logs every FUSE request.
	Debug bool
	// Name is shown as the mount's source in /proc/mounts (the router URL).
	Name   string
	Logger *slog.Logger
}

// DefaultConfig returns the defaults; Client must still be set.
func DefaultConfig() Config {
	return Config{
		AttrTimeout:  time.Second,
		EntryTimeout: time.Second,
		ReadCache:    4,
		Name:         "shoal",
		Logger:       slog.Default(),
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Client == nil || c.Logger == nil:
		return errors.New("mount: a client and a logger are required")
	case c.AttrTimeout < 0 || c.EntryTimeout < 0 || c.NegativeTimeout < 0:
		return errors.New("mount: cache timeouts must not be negative")
	case c.WriteBuffer < 0:
		return errors.New("mount: the write buffer must not be negative")
	case c.ReadCache < 2:
		return errors.New("mount: the read cache needs at least 2 windows")
	}
	return nil
}
