package httpserver

import (
	"log/slog"
	"net/http"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
)

// ErrMissingToken answers a request that carries no bearer token (no
// Authorization header, another scheme, an empty token): 401 with
// "WWW-Authenticate: Bearer" and no error code, as RFC 6750 section 3.1
// asks of a request that lacks bearer authentication.
var ErrMissingToken = fault.New(fault.Unauthenticated, ReasonMissingToken, "a bearer token is required")

// Authenticate returns the middleware every service's protected routes
// share: it takes each request's bearer token (authn.BearerToken) and hands
// it to verify, which returns the request the next handler serves (usually
// with the caller in its context) or an error that WriteError answers. A
// request without a token is answered ErrMissingToken before verify runs.
func Authenticate(log *slog.Logger, verify func(r *http.Request, token string) (*http.Request, error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := authn.BearerToken(r)
			if !ok {
				WriteError(w, r, log, ErrMissingToken)
				return
			}
			r, err := verify(r, token)
			if err != nil {
				WriteError(w, r, log, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
