package role

import "errors"

// Errors returned by this package. Callers test them with errors.Is.
var (
	// ErrBadConfig: a NodeConfig, RouterConfig or DevConfig field is
	// missing or out of range. The wrapping error names the field by its
	// command-line flag where it has one, and says what it wants.
	ErrBadConfig = errors.New("invalid configuration")
)
