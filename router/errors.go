package router

import "errors"

// Errors returned by the router. Callers test them with errors.Is; the
// HTTP layer maps them to status codes (errmap.go).
var (
	// ErrBadPath: the file-system path of a request breaks one of the rules
	// of CleanPath. The wrapping error names the path and the rule.
	ErrBadPath = errors.New("invalid path")
	// ErrUnavailable: the request could not be served in time because no
	// primary or no quorum answered; the client should retry.
	ErrUnavailable = errors.New("service unavailable")
	// ErrTooLarge: the body exceeds the configured maximum file size.
	ErrTooLarge = errors.New("file too large")
	// ErrBadRequest: the request is malformed (a bad operation, a missing
	// parameter, a body shorter than its Content-Length).
	ErrBadRequest = errors.New("bad request")
	// ErrBodyTimeout: the request body stalled (no byte arrived) for longer
	// than Config.BodyTimeout, or came slower than Config.BodyMinRate.
	ErrBodyTimeout = errors.New("request body timed out")
	// ErrNoPrimary: no primary of the group could be reached in time.
	ErrNoPrimary = errors.New("no primary available")
	// ErrNoGroup: the gossip view holds no live member of a group the
	// request needs (the meta group, or the group of a chunk). The
	// wrapping error names the group.
	ErrNoGroup = errors.New("no live member")
	// ErrUnauthenticated: the request carries no token, or one that names
	// no user (401).
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrDenied: the caller may not make this request at all: an admin's
	// request from another user, acting for others without the right
	// (403).
	ErrDenied = errors.New("permission denied")
	// ErrTooManyRequests: too many failed authentications from the
	// caller's address, or too many unknown tokens at once (429).
	ErrTooManyRequests = errors.New("too many requests")
	// ErrSealed: content sealed at rest cannot be opened by this router:
	// its data key is missing from --data-key-file.
	ErrSealed = errors.New("cannot open content sealed at rest")
	// ErrBadConfig: a Config field is missing or out of range; the
	// wrapping error names the field. New returns it, no request does.
	ErrBadConfig = errors.New("invalid router config")
)
