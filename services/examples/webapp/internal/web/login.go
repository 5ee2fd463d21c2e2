package web

import (
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// flow is what a sign-in in progress keeps in the browser's flow cookie
// until the callback: the state that the provider sends back, the nonce
// that the ID token must carry and the PKCE verifier of the code. The
// cookie is HttpOnly, limited to /callback, and lives flowTTL.
type flow struct {
	State, Nonce, Verifier string
}

// encode joins the three values; each is base64url, without dots.
func (f flow) encode() string { return f.State + "." + f.Nonce + "." + f.Verifier }

// decodeFlow reads a flow cookie's value; ok is false for anything else.
func decodeFlow(s string) (f flow, ok bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return flow{}, false
	}
	return flow{State: parts[0], Nonce: parts[1], Verifier: parts[2]}, true
}

// login starts a sign-in: it keeps a new state, nonce and PKCE verifier
// in the flow cookie and sends the browser to the provider's
// authorization endpoint with the state, the nonce and the verifier's
// S256 challenge.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	f := flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
	h.setCookie(w, flowCookie, f.encode(), "/callback", flowTTL)
	to := h.cfg.OAuth2.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	http.Redirect(w, r, to, http.StatusFound)
}
