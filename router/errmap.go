package router

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

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

// writeJSON answers with v in JSON, indented by two spaces, as
// json.Encoder with SetIndent("", "  ") writes it (a newline at the end),
// in one write with its Content-Length.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a value of a type the API does not answer with fails.
		status = http.StatusInternalServerError
		b, _ = json.Marshal(api.ErrorBody{Code: api.CodeInternal, Message: "encode the answer: " + err.Error()})
	}
	writeCompact(w, status, b)
}

// writeStat answers as writeJSON(w, status, statOf(p, *in)) does, with
// the JSON made by hand (appendStatJSON): a stat and every write answer
// with one.
func writeStat(w http.ResponseWriter, status int, p string, in *meta.Inode) {
	buf := statBufs.Get().(*[]byte)
	*buf = appendStatJSON((*buf)[:0], p, in)
	writeCompact(w, status, *buf)
	if cap(*buf) <= maxPooledAnswer {
		statBufs.Put(buf)
	}
}

// statBufs holds the buffers writeStat encodes into.
var statBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeCompact answers with the compact JSON b, indented as writeJSON
// says.
func writeCompact(w http.ResponseWriter, status int, b []byte) {
	buf := answerBufs.Get().(*[]byte)
	out := appendIndented((*buf)[:0], b)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	w.Write(out)
	if cap(out) <= maxPooledAnswer {
		*buf = out
		answerBufs.Put(buf)
	}
}

// answerBufs holds the buffers JSON answers are indented into; one
// larger than maxPooledAnswer (a long listing) is left to the collector.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledAnswer = 64 << 10

// appendIndented appends the compact JSON src, as json.Marshal makes it
// (no space outside strings), indented as json.Indent(dst, src, "", "  ")
// indents it, and a newline. It does not check src: json.Indent's own
// scanner checks every byte, which costs as much as the marshalling.
func appendIndented(dst, src []byte) []byte {
	depth := 0
	open := false // after '{' or '[': a newline comes first unless it closes at once
	for i := 0; i < len(src); i++ {
		c := src[i]
		if open && c != '}' && c != ']' {
			open = false
			depth++
			dst = appendNewline(dst, depth)
		}
		switch c {
		case '"':
			// A string, copied whole: its quotes, commas and brackets are
			// text. A backslash escapes the byte after it.
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j, len(src)-1)
			dst = append(dst, src[i:j+1]...)
			i = j
		case '{', '[':
			open = true
			dst = append(dst, c)
		case '}', ']':
			if open {
				open = false // empty: {} and []
			} else {
				depth--
				dst = appendNewline(dst, depth)
			}
			dst = append(dst, c)
		case ',':
			dst = appendNewline(append(dst, c), depth)
		case ':':
			dst = append(dst, c, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '\n')
}

func appendNewline(dst []byte, depth int) []byte {
	dst = append(dst, '\n')
	for range depth {
		dst = append(dst, ' ', ' ')
	}
	return dst
}
