package authn

import (
	"net/http"
	"strings"
)

// BearerToken returns the token of r's "Authorization: Bearer <token>"
// header (RFC 6750 section 2.1; the scheme is case-insensitive). It
// reports false when there is none: no header, another scheme (Basic, say)
// or an empty token. RFC 6750 section 3.1 treats all three alike, as a
// request that lacks bearer authentication, which is answered without an
// error code.
func BearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
