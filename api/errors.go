package api

// Code is the stable name of an error, carried in the "error" field of
// every error answer (ErrorBody). Clients match on the code, never on the
// message, so a code keeps its meaning once sent.
type Code string

// The error codes, each with the HTTP status it comes with. The router
// chooses both in one place (router/errmap.go); the client maps codes
// back to its errors (client/errors.go).
const (
	CodeInvalidPath        Code = "invalid_path"        // 400: a path that is not canonical, or too long
	CodeInvalidOp          Code = "invalid_op"          // 400: a bad operation, parameter or body
	CodeTimeout            Code = "timeout"             // 408: the request body stalled
	CodeNotFound           Code = "not_found"           // 404
	CodeExists             Code = "exists"              // 409: the target exists and is not replaced
	CodeNotEmpty           Code = "not_empty"           // 409: a directory with entries
	CodeNotDir             Code = "not_dir"             // 409: a file where a directory is needed
	CodeIsDir              Code = "is_dir"              // 409: a directory where a file is needed
	CodeConflict           Code = "conflict"            // 409: the tree changed meanwhile
	CodeNotPermitted       Code = "not_permitted"       // 403: never allowed on this kind of file
	CodePermissionDenied   Code = "permission_denied"   // 403: the caller's rights forbid it
	CodeUnauthorized       Code = "unauthorized"        // 401: no token, or one naming no user
	CodeTooManyRequests    Code = "too_many_requests"   // 429: too many failed authentications
	CodeTooLarge           Code = "too_large"           // 413: over a size limit
	CodeKeyReused          Code = "key_reused"          // 422: an Idempotency-Key already used for another request
	CodeBadRange           Code = "bad_range"           // 416: a Range outside the file
	CodePreconditionFailed Code = "precondition_failed" // 412: If-Match or If-None-Match did not hold; nothing changed
	CodeMethodNotAllowed   Code = "method_not_allowed"  // 405
	CodeLocked             Code = "locked"              // 409: the lock is held, or others wait for it first
	CodeNotHolder          Code = "not_holder"          // 409: the lease named was released or ran out
	CodeFenced             Code = "fenced"              // 409: the Shoal-Fence token no longer holds its lock; nothing changed
	CodeNoSpace            Code = "no_space"            // 507: every group is full, or the meta group's disks are
	CodeUnavailable        Code = "unavailable"         // 503: no primary or quorum in time; retry
	CodeSealed             Code = "sealed"              // 500: content sealed with a data key the router lacks
	CodeInternal           Code = "internal"            // 500
)

// ErrorBody is the JSON body of every error answer, such as
// {"error": "not_found", "message": "/a: no such file or directory"}.
type ErrorBody struct {
	Code Code `json:"error"`
	// Message says, for a person, what failed and what to do.
	Message string `json:"message"`
}
