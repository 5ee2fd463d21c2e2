package web

import (
	"net/http"
	"net/url"
)

// logout ends the browser's session here, then at the provider
// (RP-initiated logout): the browser goes to the end_session_endpoint
// with the session's ID token as id_token_hint, the post-logout redirect
// URI (the home page) and a new state, kept in a cookie for the home page
// to check when the provider sends the browser back. A POST, so that a
// link on another site cannot sign anybody out (the session cookie is
// SameSite=Lax).
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	s, ok := h.sessions.remove(cookie(r, sessionCookie))
	h.setCookie(w, sessionCookie, "", "/", -1)
	if !ok || h.cfg.EndSession == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	to, err := url.Parse(h.cfg.EndSession)
	if err != nil {
		h.fail(w, r, http.StatusBadGateway, "The provider's sign-out address is invalid.", err)
		return
	}
	state := random()
	q := to.Query()
	q.Set("id_token_hint", s.rawIDToken)
	q.Set("post_logout_redirect_uri", h.cfg.PublicURL+"/")
	q.Set("client_id", h.cfg.OAuth2.ClientID)
	q.Set("state", state)
	to.RawQuery = q.Encode()
	h.setCookie(w, signOutCookie, state, "/", flowTTL)
	h.cfg.Log.InfoContext(r.Context(), "signed out", "sid", valueOf(s.IDToken, "sid"))
	http.Redirect(w, r, to.String(), http.StatusSeeOther)
}
