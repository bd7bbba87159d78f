package gossip

import "errors"

// Errors returned by this package. Callers test them with errors.Is; the
// wrapping error names the field, value or step that failed.
var (
	// ErrBadTags: a tag map received from a peer, or Tags about to be
	// published, break an encoding rule (unknown role, malformed number,
	// missing group for a group member).
	ErrBadTags = errors.New("invalid node tags")
	// ErrTagsTooLarge: the encoded tags exceed serf's 512-byte metadata
	// limit; shorten the group name or the addresses.
	ErrTagsTooLarge = errors.New("node tags too large")
	// ErrBadConfig: a Config field is missing or out of range.
	ErrBadConfig = errors.New("invalid gossip config")
	// ErrClosed: the Node was closed; create a new one to rejoin.
	ErrClosed = errors.New("gossip node closed")
	// ErrStarted: Start was called twice on one Node.
	ErrStarted = errors.New("gossip node already started")
)
