package router

import (
	"encoding/json"
	"errors"
	"net/http"

	"shoal/meta"
	"shoal/wire"
)

// apiError is the JSON body of every error answer.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// statusOf maps an error to its HTTP status and stable code. This is the
// only place errors become status codes.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, ErrBadPath):
		return http.StatusBadRequest, "invalid_path"
	case errors.Is(err, ErrBodyTimeout): // before ErrBadRequest: a failed body read wraps both
		return http.StatusRequestTimeout, "timeout"
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest, "invalid_op"
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, meta.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, meta.ErrExists):
		return http.StatusConflict, "exists"
	case errors.Is(err, meta.ErrNotEmpty):
		return http.StatusConflict, "not_empty"
	case errors.Is(err, meta.ErrNotDir):
		return http.StatusConflict, "not_dir"
	case errors.Is(err, meta.ErrIsDir):
		return http.StatusConflict, "is_dir"
	case errors.Is(err, meta.ErrInvalid):
		return http.StatusBadRequest, "invalid_op"
	case errors.Is(err, meta.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, meta.ErrNotPermitted):
		return http.StatusForbidden, "not_permitted"
	case errors.Is(err, meta.ErrPermission), errors.Is(err, ErrDenied):
		return http.StatusForbidden, "permission_denied"
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, ErrTooManyRequests):
		return http.StatusTooManyRequests, "too_many_requests"
	case errors.Is(err, ErrSealed):
		return http.StatusInternalServerError, "sealed"
	case errors.Is(err, meta.ErrNoSpace):
		return http.StatusInsufficientStorage, "no_space"
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrNoPrimary), errors.Is(err, ErrNoGroup),
		errors.Is(err, wire.ErrNoQuorum), errors.Is(err, wire.ErrNotPrimary),
		errors.Is(err, wire.ErrNotReady), errors.Is(err, wire.ErrDeposed),
		errors.Is(err, wire.ErrUnreachable), errors.Is(err, wire.ErrChunksMissing):
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
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
	writeJSON(w, status, apiError{Error: code, Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
