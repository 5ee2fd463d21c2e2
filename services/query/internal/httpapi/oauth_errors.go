package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/fault"
)

// Error codes of RFC 6749 section 5.2 (and temporarily_unavailable of
// section 4.1.2.1, which clients also understand at the token endpoint).
const (
	ErrInvalidRequest         = "invalid_request"
	ErrInvalidGrant           = "invalid_grant"
	ErrUnsupportedGrantType   = "unsupported_grant_type"
	ErrInvalidClient          = "invalid_client"
	ErrUnauthorizedClient     = "unauthorized_client"
	ErrServerError            = "server_error"
	ErrTemporarilyUnavailable = "temporarily_unavailable"
)

// ErrorBody is an RFC 6749 section 5.2 error response.
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// invalidRequest is a malformed request: fault.Invalid, answered as
// invalid_request with msg.
func invalidRequest(msg string) error { return fault.New(fault.Invalid, "invalid-request", msg) }

// unsupportedGrant is a grant type this server does not know.
var errUnsupportedGrant = fault.New(fault.Invalid, "unsupported-grant-type", "grant_type must be password or refresh_token")

// writeError answers err as an RFC 6749 error body. Refused credentials and
// refresh tokens (fault.Unauthenticated) are invalid_grant with status 400,
// as section 5.2 requires; bad input is invalid_request (or
// unsupported_grant_type); an overloaded or unreachable dependency is 503
// temporarily_unavailable with Retry-After; a rate-limited attempt
// (fault.TooMany) is 429 with Retry-After and temporarily_unavailable too,
// since RFC 6749 has no code for throttling at the token endpoint and that
// is the one clients already treat as "retry later" (the status tells the
// two apart); anything else is a logged 500 server_error that shows no
// detail.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, body := http.StatusBadRequest, ErrorBody{Error: ErrInvalidRequest, Description: fault.MessageOf(err)}
	switch code := fault.CodeOf(err); {
	case fault.ReasonOf(err) == "invalid-client":
		status, body.Error = http.StatusUnauthorized, ErrInvalidClient
		w.Header().Set("WWW-Authenticate", `Basic realm="authstream"`)
	case fault.ReasonOf(err) == "unauthorized-client":
		body.Error = ErrUnauthorizedClient
	case code == fault.Unauthenticated:
		body.Error = ErrInvalidGrant
		log.DebugContext(r.Context(), "grant refused", "path", r.URL.Path, "cause", err.Error())
	case code == fault.Invalid && fault.ReasonOf(err) == "unsupported-grant-type":
		body.Error = ErrUnsupportedGrantType
	case code == fault.Invalid:
	case code == fault.TooMany:
		status, body.Error = http.StatusTooManyRequests, ErrTemporarilyUnavailable
		setRetryAfter(w, err)
	case code == fault.Unavailable:
		status, body.Error = http.StatusServiceUnavailable, ErrTemporarilyUnavailable
		setRetryAfter(w, err)
		log.WarnContext(r.Context(), "token request unavailable", "path", r.URL.Path, "error", err.Error())
	default:
		status, body = http.StatusInternalServerError, ErrorBody{Error: ErrServerError, Description: "internal error"}
		log.ErrorContext(r.Context(), "token request failed", "path", r.URL.Path, "error", err.Error())
	}
	writeJSON(w, status, body)
}

// setRetryAfter sets the Retry-After of err (whole seconds, rounded up, at
// least 1; one second when err carries none).
func setRetryAfter(w http.ResponseWriter, err error) {
	d, ok := fault.RetryAfterOf(err)
	if !ok {
		d = time.Second
	}
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int((d+time.Second-1)/time.Second))))
}

// writeJSON answers v with the no-store headers section 5.1 requires of
// every token endpoint answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	b, err := json.Marshal(v)
	if err != nil { // the bodies here always marshal
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
