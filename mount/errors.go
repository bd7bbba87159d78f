package mount

import "errors"

// Errors returned by this package. Callers test them with errors.Is.
var (
	// ErrBadConfig: a Config field is missing or out of range; the
	// wrapping error names the field.
	ErrBadConfig = errors.New("invalid mount config")
)
