package web

import (
	"crypto/subtle"
	"net/http"
)

// homePage is what the home page shows.
type homePage struct {
	Issuer string
	// Session is the signed-in user's; nil when nobody is signed in.
	Session *session
	// SignedOut says that the browser comes back from signing out at the
	// provider: the state of the sign-out matched.
	SignedOut bool
}

// home shows the signed-in user's claims and a sign-out button, or a
// sign-in link. It is also where the provider sends the browser back
// after signing out (the post-logout redirect URI), with the state the
// sign-out sent.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	p := homePage{Issuer: h.cfg.Issuer}
	if s, ok := h.sessions.get(cookie(r, sessionCookie)); ok {
		p.Session = &s
	}
	if state := r.URL.Query().Get("state"); state != "" {
		if want := cookie(r, signOutCookie); want != "" && subtle.ConstantTimeCompare([]byte(state), []byte(want)) == 1 {
			p.SignedOut = true
			h.setCookie(w, signOutCookie, "", "/", -1)
		}
	}
	h.render(w, r, http.StatusOK, "home.html", p)
}
