package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/authstream/authstream/services/query/internal/app"
)

// The login endpoints: the token endpoint (RFC 6749 password and
// refresh_token grants), the simple login endpoint, and token revocation
// (RFC 7009). They parse forms, map the application's errors to RFC 6749
// error bodies (oauth_errors.go) and never let a refusal say more than
// "invalid_grant".

// maxBody bounds a token request's body; real ones are a few hundred bytes.
const maxBody = 16 << 10

// TokenResponse is the answer of a successful grant (RFC 6749 section 5.1).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

func writeTokens(w http.ResponseWriter, t app.Tokens) {
	writeJSON(w, http.StatusOK, TokenResponse{
		AccessToken: t.AccessToken, TokenType: "Bearer",
		ExpiresIn: int64(t.ExpiresIn.Seconds()), RefreshToken: t.RefreshToken,
	})
}

// token is POST /oauth/token. It dispatches on the grant: the password
// grant here (a registered client authenticating itself is checked
// first); refresh_token here when no client authenticates (the seed's
// clients, whose sessions are bound to none); everything else of a
// registered client (authorization_code, client_credentials, its
// refresh_token) to the OpenID Connect provider's library.
func (h *handlers) token(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	form, ok := h.clientForm(w, r)
	if !ok {
		return
	}
	byClient := h.op != nil && clientAuthenticates(r, form)
	switch gt := form.Get("grant_type"); {
	case gt == "password":
		var cl *app.Client
		if byClient {
			c, err := h.authenticateClient(r, tenant, form)
			if err != nil {
				writeError(w, r, h.log, err)
				return
			}
			cl = &c
		}
		h.passwordGrant(w, r, tenant, form, cl)
	case gt == "refresh_token" && !byClient:
		rt := form.Get("refresh_token")
		if rt == "" {
			writeError(w, r, h.log, invalidRequest("refresh_token is required"))
			return
		}
		t, err := h.app.Refresh(r.Context(), tenant, rt)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		writeTokens(w, t)
	case gt == "refresh_token", h.op != nil && (gt == "authorization_code" || gt == "client_credentials"):
		h.forwardForm(w, r, form)
	case gt == "":
		writeError(w, r, h.log, invalidRequest("grant_type is required"))
	default:
		writeError(w, r, h.log, errUnsupportedGrant)
	}
}

// clientAuthenticates reports whether a token or revocation request names
// a client: HTTP Basic credentials, or client_id or client_secret in the
// form. The seed's clients send none of them.
func clientAuthenticates(r *http.Request, form url.Values) bool {
	_, _, basic := r.BasicAuth()
	return basic || form.Get("client_id") != "" || form.Get("client_secret") != ""
}

// authenticateClient authenticates the client of a password grant as the
// library does for the other grants: client_secret_basic or
// client_secret_post, never both (RFC 6749 section 2.3), or a public
// client's client_id alone.
func (h *handlers) authenticateClient(r *http.Request, tenant string, form url.Values) (app.Client, error) {
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		if secret != "" {
			return app.Client{}, invalidRequest("client authentication must not use more than one method")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(bid)
		secret, err2 = url.QueryUnescape(bsecret)
		if err1 != nil || err2 != nil {
			return app.Client{}, app.ErrInvalidClient
		}
	}
	return h.app.AuthenticateClient(r.Context(), tenant, id, secret)
}

// forwardForm passes a token or revocation request, whose form parseForm
// has read, to the provider's library: the form goes back as the body,
// and the query string (never read at these endpoints) is dropped.
func (h *handlers) forwardForm(w http.ResponseWriter, r *http.Request, form url.Values) {
	body := form.Encode()
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
	r.URL.RawQuery = ""
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	h.serveOP(w, r)
}

// login is POST /login: the password grant for simple clients, with the
// form fields username and password (grant_type optional, and password if
// given) or the JSON body {"username", "password"}.
func (h *handlers) login(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		var body struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		if err := dec.Decode(&body); err != nil {
			writeError(w, r, h.log, invalidRequest("body must be a JSON object with username and password"))
			return
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			writeError(w, r, h.log, invalidRequest("body must hold one JSON object"))
			return
		}
		h.passwordGrant(w, r, tenant, url.Values{"username": {body.Username}, "password": {body.Password}}, nil)
		return
	}
	form, err := parseForm(w, r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if gt := form.Get("grant_type"); gt != "" && gt != "password" {
		writeError(w, r, h.log, errUnsupportedGrant)
		return
	}
	h.passwordGrant(w, r, tenant, form, nil)
}

// passwordGrant logs in with form's username and password, for the
// registered client cl when one authenticated (nil for the seed's
// clients, whose scope and client_id, if sent without a provider, are
// ignored).
func (h *handlers) passwordGrant(w http.ResponseWriter, r *http.Request, tenant string, form url.Values, cl *app.Client) {
	username, password := form.Get("username"), form.Get("password")
	if username == "" || password == "" {
		writeError(w, r, h.log, invalidRequest("username and password are required"))
		return
	}
	t, err := h.app.PasswordLogin(r.Context(), app.PasswordLogin{
		Tenant: tenant, Username: username, Password: password, Client: clientAddress(r, h.trusted), RegisteredClient: cl,
	})
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeTokens(w, t)
}

// revoke is POST /oauth/revoke (RFC 7009): 200 for any token, known or
// not; invalid_request without one. A registered client's request goes
// to the provider's library, which authenticates it.
func (h *handlers) revoke(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	form, ok := h.clientForm(w, r)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeError(w, r, h.log, invalidRequest("token is required"))
		return
	}
	if h.op != nil && clientAuthenticates(r, form) {
		h.forwardForm(w, r, form)
		return
	}
	if err := h.app.Revoke(r.Context(), tenant, tok); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// parseForm reads an application/x-www-form-urlencoded body (RFC 6749
// section 4.3.2 and 6; parameters in the query string are not read). A
// parameter given twice is invalid_request (section 3.2).
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, invalidRequest("body too large or unreadable")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, invalidRequest("malformed form body")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, invalidRequest("parameter " + safeName(k) + " is given more than once")
		}
	}
	return form, nil
}

// safeName shortens and cleans a parameter name before it is echoed.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return -1
		}
		return r
	}, s)
	if len(s) > 32 {
		s = s[:32]
	}
	return s
}
