package secure

import "errors"

// Errors returned by this package. Callers test them with errors.Is; the
// wrapping error names the file or value that failed and what to do.
var (
	// ErrBadKey: a key (gossip or data) is not base64 of 16, 24 or 32
	// bytes, or a key file holds none.
	ErrBadKey = errors.New("invalid key")
	// ErrBadCert: a certificate or private key cannot be read, is not
	// signed by the cluster's CA, has expired, or is for another role.
	ErrBadCert = errors.New("invalid certificate")
	// ErrSealed: content sealed at rest cannot be opened: the data key
	// that sealed it is missing, or the bytes were altered.
	ErrSealed = errors.New("cannot open sealed content")
	// ErrExists: a file that would be created exists already.
	ErrExists = errors.New("file exists")
)
