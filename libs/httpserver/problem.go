// Package httpserver is the HTTP edge shared by the services: the one place that
// maps fault codes to statuses and RFC 9457 problem bodies, a strict JSON
// request decoder, the health, readiness and metrics endpoints, panic
// recovery, and an http.Server with timeouts that drains on shutdown.
package httpserver

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/fault"
)

// ProblemTypeBase prefixes every problem type URI: the type of an error is
// ProblemTypeBase + its reason, or + its code when it has no reason.
const ProblemTypeBase = "https://authstream.dev/problems/"

// ProblemContentType is the media type of problem bodies (RFC 9457).
const ProblemContentType = "application/problem+json"

// Reasons this package gives to its own errors. Two of them select a status
// more precise than their code's 400: an unsupported media type is a 415 and
// an oversized body a 413, so clients and proxies can tell them apart.
const (
	ReasonUnsupportedMediaType = "unsupported-media-type" // 415
	ReasonBodyTooLarge         = "body-too-large"         // 413
	ReasonHeaderTooLarge       = "header-too-large"       // 431, before routing
	ReasonMalformedJSON        = "malformed-json"         // 400
	ReasonInvalidToken         = "invalid-token"          // 401 with error="invalid_token"
	ReasonMissingToken         = "missing-token"          // 401 without an error attribute
	ReasonNotReady             = "not-ready"              // 503 from /readyz
	ReasonRouteNotFound        = "route-not-found"        // 404 from NotFound
	ReasonMethodNotAllowed     = "method-not-allowed"     // 405 from MethodNotAllowed
)

// Problem is an RFC 9457 problem body. Clients (authctl, tests) decode it.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Reason is the fault's reason slug, also the last segment of Type.
	Reason string `json:"reason,omitempty"`
	// Dependencies names what failed a readiness check (/readyz only).
	Dependencies []string `json:"dependencies,omitempty"`
}

// Status returns the HTTP status of a fault code; unknown codes are 500.
func Status(c fault.Code) int {
	switch c {
	case fault.Invalid:
		return http.StatusBadRequest
	case fault.Unprocessable:
		return http.StatusUnprocessableEntity
	case fault.Conflict:
		return http.StatusConflict
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Unauthenticated:
		return http.StatusUnauthorized
	case fault.Forbidden:
		return http.StatusForbidden
	case fault.TooMany:
		return http.StatusTooManyRequests
	case fault.Unavailable:
		return http.StatusServiceUnavailable
	case fault.Internal:
		return http.StatusInternalServerError
	}
	return http.StatusInternalServerError
}

var titles = map[fault.Code]string{
	fault.Invalid:         "Invalid request",
	fault.Unprocessable:   "Unprocessable request",
	fault.Conflict:        "Conflict",
	fault.NotFound:        "Not found",
	fault.Unauthenticated: "Authentication required",
	fault.Forbidden:       "Forbidden",
	fault.TooMany:         "Too many requests",
	fault.Unavailable:     "Service unavailable",
	fault.Internal:        "Internal error",
}

// WriteError answers err as a problem: the status follows its fault code
// (see Status; ReasonUnsupportedMediaType and ReasonBodyTooLarge refine 400
// into 415 and 413), the type is ProblemTypeBase + reason (or code), the
// detail is fault.MessageOf(err). It adds the headers the status calls for:
// WWW-Authenticate on 401 and 403 (RFC 6750), Retry-After on 429 (when err
// carries one) and 503 (1 s unless err carries one). Internal errors, and
// errors without a code, are logged at error level with their full text and
// answered with "internal error" only; 503s are logged at warn level. log
// may be nil.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := fault.CodeOf(err)
	if code == "" {
		code = fault.Internal
		err = errors.New("nil error written as a response")
	}
	if _, known := titles[code]; !known {
		code = fault.Internal
	}
	status := Status(code)
	reason := fault.ReasonOf(err)
	switch {
	case code == fault.Internal:
		reason = "" // an internal reason is for logs, not callers
	case code == fault.Invalid && reason == ReasonUnsupportedMediaType:
		status = http.StatusUnsupportedMediaType
	case code == fault.Invalid && reason == ReasonBodyTooLarge:
		status = http.StatusRequestEntityTooLarge
	}
	detail := fault.MessageOf(err)

	if log != nil {
		switch {
		case status >= 500 && code != fault.Unavailable:
			log.ErrorContext(ctxOf(r), "request failed", append(requestAttrs(r), "status", status, "error", err.Error())...)
		case code == fault.Unavailable:
			log.WarnContext(ctxOf(r), "dependency unavailable", append(requestAttrs(r), "status", status, "error", err.Error())...)
		}
	}

	h := w.Header()
	switch code {
	case fault.Unauthenticated:
		v := `Bearer realm="authstream"`
		// RFC 6750 3.1: a request that presented no token gets no error
		// code; one whose token was rejected gets invalid_token.
		if reason == ReasonInvalidToken || (reason != ReasonMissingToken && r != nil && r.Header.Get("Authorization") != "") {
			v += `, error="invalid_token", error_description="` + quoteSafe(detail) + `"`
		}
		h.Set("WWW-Authenticate", v)
	case fault.Forbidden:
		h.Set("WWW-Authenticate", `Bearer realm="authstream", error="insufficient_scope", error_description="`+quoteSafe(detail)+`"`)
	case fault.TooMany:
		if d, ok := fault.RetryAfterOf(err); ok {
			h.Set("Retry-After", retryAfterSeconds(d))
		}
	case fault.Unavailable:
		d, ok := fault.RetryAfterOf(err)
		if !ok {
			d = time.Second
		}
		h.Set("Retry-After", retryAfterSeconds(d))
	case fault.Invalid, fault.Unprocessable, fault.Conflict, fault.NotFound, fault.Internal:
		// No header of their own.
	}

	typ := string(code)
	if reason != "" {
		typ = reason
	}
	p := Problem{
		Type:   ProblemTypeBase + typ,
		Title:  titles[code],
		Status: status,
		Detail: detail,
		Reason: reason,
	}
	if r != nil {
		p.Instance = r.URL.Path
	}
	writeProblem(w, p)
}

// WriteProblem answers with a problem built from its parts, for answers that
// are not fault errors (a 405, a readiness failure). An empty reason gives
// the type "about:blank" and, when title is empty, the status text as title.
func WriteProblem(w http.ResponseWriter, status int, reason, title, detail string) {
	writeProblem(w, newProblem(status, reason, title, detail))
}

func newProblem(status int, reason, title, detail string) Problem {
	p := Problem{Type: "about:blank", Title: title, Status: status, Detail: detail, Reason: reason}
	if reason != "" {
		p.Type = ProblemTypeBase + reason
	}
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	return p
}

func writeProblem(w http.ResponseWriter, p Problem) {
	body, err := json.Marshal(p)
	if err != nil { // a Problem always marshals; keep the answer well-formed anyway
		body = []byte(`{"type":"about:blank","title":"Internal error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// WriteJSON answers v as JSON with status. A value that cannot be marshalled
// is a bug: it is answered as a 500 problem instead of a truncated body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteProblem(w, http.StatusInternalServerError, "", titles[fault.Internal], "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func retryAfterSeconds(d time.Duration) string {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(int64(s), 10)
}

// quoteSafe makes s fit an RFC 6750 quoted auth-param: printable ASCII
// without '"' and '\'.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
