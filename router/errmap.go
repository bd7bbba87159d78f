package router

import (
	"encoding/json"
	"errors"
	"net/http"

	"shoal/api"
	"shoal/meta"
	"shoal/wire"
)

// statusOf maps an error to its HTTP status and stable code. This is the
// only place errors become status codes.
func statusOf(err error) (int, api.Code) {
	switch {
	case errors.Is(err, ErrBadPath):
		return http.StatusBadRequest, api.CodeInvalidPath
	case errors.Is(err, ErrBodyTimeout): // before ErrBadRequest: a failed body read wraps both
		return http.StatusRequestTimeout, api.CodeTimeout
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest, api.CodeInvalidOp
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, api.CodeTooLarge
	case errors.Is(err, meta.ErrNotFound):
		return http.StatusNotFound, api.CodeNotFound
	case errors.Is(err, meta.ErrExists):
		return http.StatusConflict, api.CodeExists
	case errors.Is(err, meta.ErrNotEmpty):
		return http.StatusConflict, api.CodeNotEmpty
	case errors.Is(err, meta.ErrNotDir):
		return http.StatusConflict, api.CodeNotDir
	case errors.Is(err, meta.ErrIsDir):
		return http.StatusConflict, api.CodeIsDir
	case errors.Is(err, meta.ErrInvalid):
		return http.StatusBadRequest, api.CodeInvalidOp
	case errors.Is(err, meta.ErrPrecondition):
		return http.StatusPreconditionFailed, api.CodePreconditionFailed
	case errors.Is(err, meta.ErrKeyReused):
		return http.StatusUnprocessableEntity, api.CodeKeyReused
	case errors.Is(err, meta.ErrLocked):
		return http.StatusConflict, api.CodeLocked
	case errors.Is(err, meta.ErrNotHolder):
		return http.StatusConflict, api.CodeNotHolder
	case errors.Is(err, meta.ErrFenced):
		return http.StatusConflict, api.CodeFenced
	case errors.Is(err, meta.ErrConflict):
		return http.StatusConflict, api.CodeConflict
	case errors.Is(err, meta.ErrNotPermitted):
		return http.StatusForbidden, api.CodeNotPermitted
	case errors.Is(err, meta.ErrPermission), errors.Is(err, ErrDenied):
		return http.StatusForbidden, api.CodePermissionDenied
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, api.CodeUnauthorized
	case errors.Is(err, ErrTooManyRequests):
		return http.StatusTooManyRequests, api.CodeTooManyRequests
	case errors.Is(err, ErrSealed):
		return http.StatusInternalServerError, api.CodeSealed
	case errors.Is(err, meta.ErrNoSpace):
		return http.StatusInsufficientStorage, api.CodeNoSpace
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrNoPrimary), errors.Is(err, ErrNoGroup),
		errors.Is(err, meta.ErrDiskFailed), // a member that can write takes over
		errors.Is(err, wire.ErrNoQuorum), errors.Is(err, wire.ErrNotPrimary),
		errors.Is(err, wire.ErrNotReady), errors.Is(err, wire.ErrDeposed),
		errors.Is(err, wire.ErrUnreachable), errors.Is(err, wire.ErrChunksMissing), errors.Is(err, wire.ErrBusy):
		return http.StatusServiceUnavailable, api.CodeUnavailable
	}
	return http.StatusInternalServerError, api.CodeInternal
}

func writeError(w http.ResponseWriter, err error) {
	status, code := statusOf(err)
	switch status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case http.StatusUnauthorized:
		if errors.Is(err, errBadToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal", error="invalid_token"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
		}
	}
	writeJSON(w, status, api.ErrorBody{Code: code, Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
