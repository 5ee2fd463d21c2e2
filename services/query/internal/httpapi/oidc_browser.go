package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The browser-facing endpoints of the provider: authorization (GET and
// POST) and RP-initiated logout. What the library answers there is
// reworked for a browser (browserOP): an error that must not go back to
// the client (an unknown client, a redirect URI it did not register, a
// bad logout request) becomes an HTML error page with status 400, never
// a redirect; every authorization response redirected to a client
// carries iss (RFC 9207), the library's error redirects included.

// Bounds of the authorization request's parameters: each well beyond what
// a real request sends, so that a longer one is an attack or a bug,
// refused with an error page before it is echoed anywhere.
const (
	maxAuthQuery    = 16 << 10
	maxRedirectURI  = 2048
	maxState        = 2048
	maxNonce        = 512
	maxLoginHint    = 256
	maxScope        = 1024
	maxClientID     = 128
	maxIDTokenHint  = 8 << 10
	maxLogoutParams = 12 << 10
)

// tooLong returns the name of the first parameter of r longer than its
// bound, "" when none is.
func tooLong(r *oidc.AuthRequest) string {
	for _, p := range []struct {
		name string
		v    string
		max  int
	}{
		{"client_id", r.ClientID, maxClientID},
		{"redirect_uri", r.RedirectURI, maxRedirectURI},
		{"state", r.State, maxState},
		{"nonce", r.Nonce, maxNonce},
		{"login_hint", r.LoginHint, maxLoginHint},
		{"scope", strings.Join(r.Scopes, " "), maxScope},
		{"code_challenge", r.CodeChallenge, 128},
		{"id_token_hint", r.IDTokenHint, maxIDTokenHint},
	} {
		if len(p.v) > p.max {
			return p.name
		}
	}
	return ""
}

// pageError is an error the browser endpoints answer with an error page.
func pageError(desc string) error {
	return oidc.ErrInvalidRequestRedirectURI().WithDescription("%s", desc)
}

// VerifyAuthRequest finds the client of an authorization request and
// checks its redirect URI, exactly, against the client's registration,
// before anything else: until both hold, no error may go to the
// redirect URI, so each refusal here is an error page. Oversized
// parameters are refused the same way, before they are echoed.
func (s *oidcServer) VerifyAuthRequest(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	if name := tooLong(r.Data); name != "" {
		return nil, pageError("the parameter " + name + " is too long")
	}
	if r.Data.ClientID == "" {
		return nil, pageError("client_id is missing")
	}
	cl, err := s.h.app.Client(ctx, tenantFrom(ctx), r.Data.ClientID)
	if err != nil {
		if errors.Is(err, app.ErrClientNotFound) || fault.CodeOf(err) == fault.NotFound {
			return nil, pageError("the application is not registered here")
		}
		return nil, s.h.oauthError(ctx, err)
	}
	if r.Data.RedirectURI == "" || !containsString(cl.RedirectURIs, r.Data.RedirectURI) {
		return nil, pageError("the redirect_uri is not one the application registered")
	}
	return &op.ClientRequest[oidc.AuthRequest]{Request: r, Client: opClient{cl}}, nil
}

// Authorize decides a request whose client and redirect URI hold, and
// whose prompt, scopes, response type and PKCE method the library has
// checked; its refusals go to the redirect URI.
func (s *oidcServer) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	d := r.Data
	switch {
	case d.RequestParam != "":
		return nil, oidc.ErrRequestNotSupported().WithDescription("request objects are not supported")
	case r.Form.Get("request_uri") != "":
		return nil, &oidc.Error{ErrorType: "request_uri_not_supported", Description: "request_uri is not supported"}
	case d.ResponseMode != "" && d.ResponseMode != oidc.ResponseModeQuery:
		d.ResponseMode = "" // the refusal itself goes in the query
		return nil, oidc.ErrInvalidRequest().WithDescription("response_mode must be query")
	}
	req := app.AuthRequest{
		ClientID: d.ClientID, RedirectURI: d.RedirectURI, Scopes: d.Scopes, State: d.State, Nonce: d.Nonce,
		CodeChallenge: d.CodeChallenge, CodeChallengeMethod: string(d.CodeChallengeMethod),
		Prompt: d.Prompt, LoginHint: d.LoginHint, IDTokenHint: d.IDTokenHint,
	}
	if d.MaxAge != nil {
		m := int64(min(*d.MaxAge, math.MaxInt64))
		req.MaxAge = &m
	}
	tenant := tenantFrom(ctx)
	to, err := s.h.app.Authorize(ctx, tenant, req, s.h.browserCookie(r.Header, tenant))
	if err != nil {
		return nil, s.h.oauthError(ctx, err)
	}
	return op.NewRedirect(to), nil
}

// EndSession is RP-initiated logout: the application ends the browser
// session and says where to go; the session cookie is cleared either way.
// Without a place to go, the provider's own page confirms the logout.
func (s *oidcServer) EndSession(ctx context.Context, r *op.Request[oidc.EndSessionRequest]) (*op.Redirect, error) {
	d := r.Data
	if len(d.IdTokenHint)+len(d.PostLogoutRedirectURI)+len(d.State)+len(d.ClientID) > maxLogoutParams {
		return nil, pageError("the logout request is too long")
	}
	tenant := tenantFrom(ctx)
	to, err := s.h.app.EndSession(ctx, app.EndSession{
		Tenant: tenant, IDTokenHint: d.IdTokenHint, ClientID: d.ClientID,
		PostLogoutRedirectURI: d.PostLogoutRedirectURI, State: d.State, Cookie: s.h.browserCookie(r.Header, tenant),
	})
	if err != nil {
		if fault.CodeOf(err) == fault.Invalid {
			s.h.log.DebugContext(ctx, "logout refused", "cause", err.Error())
			return nil, pageError("the logout request is invalid")
		}
		return nil, s.h.oauthError(ctx, err)
	}
	clear := s.h.clearBrowserCookie(tenant)
	if to == "" {
		// browserOP renders the page the slot names in place of the
		// redirect, which only keeps the library from calling this an
		// error.
		slotOf(ctx).set(http.StatusOK, pageSignedOut, clear)
		return op.NewRedirect(s.h.app.Issuer(tenant)), nil
	}
	red := op.NewRedirect(to)
	red.Header.Add("Set-Cookie", clear.String())
	return red, nil
}

// pageSlot carries a page a Server method decided on to browserOP.
type pageSlot struct {
	status int
	page   string
	cookie *http.Cookie
}

type slotKey struct{}

func slotOf(ctx context.Context) *pageSlot {
	s, _ := ctx.Value(slotKey{}).(*pageSlot)
	if s == nil {
		return &pageSlot{}
	}
	return s
}

func (s *pageSlot) set(status int, page string, cookie *http.Cookie) {
	s.status, s.page, s.cookie = status, page, cookie
}

// recorder keeps what the library answers, for browserOP to rework.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len() > 64<<10 {
		return len(b), nil
	}
	return r.body.Write(b)
}

// browserOP serves a browser-facing request through the library and
// reworks the answer for a browser (see above).
func (h *handlers) browserOP(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	slot := &pageSlot{}
	rec := &recorder{header: http.Header{}}
	h.serveOP(rec, r.WithContext(context.WithValue(r.Context(), slotKey{}, slot)))
	setPageHeaders(w.Header(), "")
	if slot.page != "" {
		if slot.cookie != nil {
			http.SetCookie(w, slot.cookie)
		}
		h.renderPage(w, r, slot.status, slot.page, pageData{Tenant: tenant})
		return
	}
	if rec.status >= 300 && rec.status < 400 {
		loc := rec.header.Get("Location")
		if iss := h.app.Issuer(tenant); !strings.HasPrefix(loc, iss+"/") {
			loc = withIss(loc, iss)
		}
		for _, c := range rec.header.Values("Set-Cookie") {
			w.Header().Add("Set-Cookie", c)
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(rec.status)
		return
	}
	if rec.status >= 400 {
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &body)
		status, msg := http.StatusBadRequest, body.Description
		switch {
		case rec.status >= 500:
			status, msg = rec.status, "The service cannot answer this request right now. Try again shortly."
		case msg == "":
			msg = "The request is invalid."
		}
		h.renderPage(w, r, status, pageError400, pageData{Tenant: tenant, Message: msg})
		return
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// withIss adds iss to the query of a redirect to a client (RFC 9207),
// unless it is there already.
func withIss(loc, iss string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	q := u.Query()
	if q.Get("iss") != "" {
		return loc
	}
	q.Set("iss", iss)
	u.RawQuery = q.Encode()
	return u.String()
}
