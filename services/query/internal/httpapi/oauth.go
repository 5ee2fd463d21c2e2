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

// token is POST /oauth/token.
func (h *handlers) token(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	form, err := parseForm(w, r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	switch form.Get("grant_type") {
	case "password":
		h.passwordGrant(w, r, tenant, form)
	case "refresh_token":
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
	case "":
		writeError(w, r, h.log, invalidRequest("grant_type is required"))
	default:
		writeError(w, r, h.log, errUnsupportedGrant)
	}
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
		h.passwordGrant(w, r, tenant, url.Values{"username": {body.Username}, "password": {body.Password}})
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
	h.passwordGrant(w, r, tenant, form)
}

// passwordGrant logs in with form's username and password. scope and
// client_id are accepted and ignored: every client is public here.
func (h *handlers) passwordGrant(w http.ResponseWriter, r *http.Request, tenant string, form url.Values) {
	username, password := form.Get("username"), form.Get("password")
	if username == "" || password == "" {
		writeError(w, r, h.log, invalidRequest("username and password are required"))
		return
	}
	t, err := h.app.PasswordLogin(r.Context(), app.PasswordLogin{
		Tenant: tenant, Username: username, Password: password, Client: clientAddress(r, h.trusted),
	})
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeTokens(w, t)
}

// revoke is POST /oauth/revoke (RFC 7009): 200 for any token, known or
// not; invalid_request without one.
func (h *handlers) revoke(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	form, err := parseForm(w, r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeError(w, r, h.log, invalidRequest("token is required"))
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
