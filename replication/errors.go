package replication

import "errors"

// Errors of this package that stay on the node; the protocol's errors,
// which survive the wire, are in package wire.
var (
	// ErrBadConfig: a Config field is missing or out of range; the
	// wrapping error names the field.
	ErrBadConfig = errors.New("invalid replication config")
)
