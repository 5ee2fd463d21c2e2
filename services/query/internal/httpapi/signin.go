package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/app"
)

// The hosted login page: GET /signin renders the form of the
// authorization request it carries (sealed, in ?auth=), POST /signin
// takes it. The pinned shape (DESIGN section 11.1): one <form
// method="post"> with inputs username and password, and hidden inputs
// (auth, csrf) to send back as they are. A user with a second factor then
// gets the code form of the same shape: one <form method="post"> with
// input code and hidden inputs (auth, csrf, mfa) to send back.

// codeMessage is the one message of a refused code: wrong, malformed, out
// of its window or used before, a locked account.
const codeMessage = "Incorrect code."

// passkeyMessage is the one message of a refused passkey: any response
// that does not verify, answers a ceremony answered before or whose
// counter went back, a locked account.
const passkeyMessage = "That passkey could not be used." //nolint:gosec // G101: a message, not a credential

// enrolMessage answers the right password of a user whom the tenant
// requires to hold a second factor and who holds none.
const enrolMessage = "This organisation requires a second factor (an authenticator app or a passkey) for your account, and none is set up. Ask an administrator to set one up with you, then sign in again."

// signinMessage is the one message of a refused sign-in: an unknown user,
// a wrong password, a disabled user and a locked account all read the
// same, as they answer the same at the token endpoint.
const signinMessage = "Incorrect username or password."

// rateLimitedMessage answers a sign-in over the login rate limits.
const rateLimitedMessage = "Too many sign-in attempts. Wait a minute and try again."

// maxSigninBody bounds the form of the hosted page.
const maxSigninBody = 16 << 10

// Cookie names: one browser session cookie and one CSRF cookie per tenant,
// __Host- prefixed (Secure, Path=/, no Domain) when the public URL is
// https.
func (h *handlers) cookieName(base, tenant string) string {
	if h.app.SecureCookies() {
		return "__Host-" + base + "_" + tenant
	}
	return base + "_" + tenant
}

func (h *handlers) browserCookieName(tenant string) string { return h.cookieName("authstream", tenant) }
func (h *handlers) csrfCookieName(tenant string) string {
	return h.cookieName("authstream_csrf", tenant)
}

// browserCookie returns the browser session cookie in header, "" if none.
func (h *handlers) browserCookie(header http.Header, tenant string) string {
	c, err := (&http.Request{Header: header}).Cookie(h.browserCookieName(tenant))
	if err != nil {
		return ""
	}
	return c.Value
}

// newCookie returns a cookie of the provider's: HttpOnly, SameSite=Lax
// (it must come along when the client's redirect brings the browser
// back), Path=/, Secure over https.
func (h *handlers) newCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{ //nolint:gosec // G124: Secure whenever the public URL is https; plain http only in development
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.app.SecureCookies(), SameSite: http.SameSiteLaxMode,
	}
}

// clearBrowserCookie returns the cookie that removes the browser session
// cookie.
func (h *handlers) clearBrowserCookie(tenant string) *http.Cookie {
	return h.newCookie(h.browserCookieName(tenant), "", -1)
}

// csrfCookie returns the request's CSRF cookie value, making and setting a
// new one when there is none.
func (h *handlers) csrfCookie(w http.ResponseWriter, r *http.Request, tenant string) string {
	if c, err := r.Cookie(h.csrfCookieName(tenant)); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, h.newCookie(h.csrfCookieName(tenant), v, 0))
	return v
}

// signinPage is GET /signin.
func (h *handlers) signinPage(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	if len(r.URL.RawQuery) > app.MaxSealedRequest+64 {
		setPageHeaders(w.Header(), "")
		h.renderPage(w, r, http.StatusBadRequest, pageError400, pageData{Tenant: tenant, Message: "The sign-in request is too long."})
		return
	}
	sealed := r.URL.Query().Get("auth")
	page, err := h.app.SigninPage(r.Context(), tenant, sealed)
	if err != nil {
		h.pageError(w, r, tenant, err)
		return
	}
	setPageHeaders(w.Header(), page.RedirectURI)
	csrf := h.csrfCookie(w, r, tenant)
	h.renderSignin(w, r, http.StatusOK, pageData{
		Tenant: tenant, DisplayName: page.DisplayName, Request: sealed,
		CSRF: h.app.CSRFToken(tenant, csrf), Username: page.LoginHint,
	})
}

// renderSignin renders the sign-in form with status and, where the
// tenant allows a sign-in with a passkey alone, a new passwordless
// ceremony (with the page's script allowed).
func (h *handlers) renderSignin(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	offer, err := h.app.OfferPasswordless(r.Context(), d.Tenant, d.Request)
	if err != nil {
		h.pageError(w, r, d.Tenant, err)
		return
	}
	if d.Passkey = offer; offer != nil {
		allowPageScript(w.Header())
	}
	// A settings read that fails only hides the link.
	d.Signup, _ = h.app.SignupOpen(r.Context(), d.Tenant)
	h.renderPage(w, r, status, pageSignin, d)
}

// signinPasswordless is POST /signin with the passwordless passkey form
// (input webauthn, no mfa): a refused passkey renders the sign-in form
// again with the one message of a refused passkey, status 200 (429 when
// rate-limited); a passed passkey ends the sign-in as a password does.
func (h *handlers) signinPasswordless(w http.ResponseWriter, r *http.Request, tenant string, form url.Values, page app.SigninPage) {
	sealed := form.Get("auth")
	again := pageData{Tenant: tenant, DisplayName: page.DisplayName, Request: sealed, CSRF: form.Get("csrf")}
	done, err := h.app.HostedPasswordless(r.Context(), app.HostedPasswordless{
		Tenant: tenant, Request: sealed, Ceremony: form.Get("webauthn"), Assertion: form.Get("assertion"),
		Address: clientAddress(r, h.trusted), Cookie: h.browserCookie(r.Header, tenant),
	})
	if err != nil {
		h.refuseStep(w, r, tenant, err, again, passkeyMessage, "hosted passwordless sign-in refused", h.renderSignin)
		return
	}
	h.signedIn(w, tenant, done)
}

// signin is POST /signin: a refused sign-in renders the form again, with
// status 200 and the one message (429 when rate-limited); a forged form
// (no or a wrong CSRF token) and a request that no longer opens are error
// pages; a success sets the new browser session cookie and sends the
// browser to the client with the code (303).
func (h *handlers) signin(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	form, err := parseSigninForm(w, r)
	if err != nil {
		h.pageError(w, r, tenant, err)
		return
	}
	sealed := form.Get("auth")
	page, err := h.app.SigninPage(r.Context(), tenant, sealed)
	if err != nil {
		h.pageError(w, r, tenant, err)
		return
	}
	setPageHeaders(w.Header(), page.RedirectURI)
	csrf, err := r.Cookie(h.csrfCookieName(tenant))
	if err != nil || !h.app.CheckCSRF(tenant, csrf.Value, form.Get("csrf")) {
		h.renderPage(w, r, http.StatusBadRequest, pageError400, pageData{Tenant: tenant,
			Message: "The sign-in form expired or did not come from this page. Go back to the application and try again."})
		return
	}
	if form.Has("mfa") && form.Has("webauthn") {
		h.signinPasskey(w, r, tenant, form, page)
		return
	}
	if form.Has("webauthn") {
		h.signinPasswordless(w, r, tenant, form, page)
		return
	}
	if form.Has("mfa") {
		h.signinFactor(w, r, tenant, form, page)
		return
	}
	username, password := form.Get("username"), form.Get("password")
	again := pageData{Tenant: tenant, DisplayName: page.DisplayName, Request: sealed, CSRF: form.Get("csrf"), Username: username}
	if username == "" || password == "" {
		again.Message = signinMessage
		h.renderSignin(w, r, http.StatusOK, again)
		return
	}
	done, err := h.app.HostedSignin(r.Context(), app.HostedSignin{
		Tenant: tenant, Request: sealed, Username: username, Password: password,
		Address: clientAddress(r, h.trusted), Cookie: h.browserCookie(r.Header, tenant),
	})
	switch {
	case err == nil:
	case errors.Is(err, app.ErrMFAEnrolmentRequired):
		again.Message = enrolMessage
		h.renderSignin(w, r, http.StatusOK, again)
		return
	case errors.Is(err, app.ErrEmailNotVerified):
		again.Message = verifyFirstMessage
		h.renderSignin(w, r, http.StatusOK, again)
		return
	default: // app.ErrInvalidCredentials, whatever its cause, among others
		h.refuseStep(w, r, tenant, err, again, signinMessage, "hosted sign-in refused", h.renderSignin)
		return
	}
	if done.Pending != "" {
		h.renderFactor(w, r, http.StatusOK, pageData{Tenant: tenant, DisplayName: page.DisplayName,
			Request: sealed, CSRF: form.Get("csrf"), Pending: done.Pending})
		return
	}
	h.signedIn(w, tenant, done)
}

// signedIn answers a finished sign-in: the new browser session cookie, and
// the browser sent to the client with the code (303).
func (h *handlers) signedIn(w http.ResponseWriter, tenant string, done app.SignedIn) {
	http.SetCookie(w, h.newCookie(h.browserCookieName(tenant), done.Cookie, 0))
	w.Header().Set("Location", done.Redirect)
	w.WriteHeader(http.StatusSeeOther)
}

// signinFactor is POST /signin with the code form (input mfa): a refused
// code renders the code form again with the one message, status 200 (429
// when rate-limited); a pending sign-in that expired or was forged is the
// error page; a passed code ends the sign-in as a password does.
func (h *handlers) signinFactor(w http.ResponseWriter, r *http.Request, tenant string, form url.Values, page app.SigninPage) {
	sealed, pending := form.Get("auth"), form.Get("mfa")
	again := pageData{Tenant: tenant, DisplayName: page.DisplayName, Request: sealed, CSRF: form.Get("csrf"), Pending: pending}
	done, err := h.app.HostedFactor(r.Context(), app.HostedFactor{
		Tenant: tenant, Request: sealed, Pending: pending, Code: form.Get("code"),
		Address: clientAddress(r, h.trusted), Cookie: h.browserCookie(r.Header, tenant),
	})
	if err != nil {
		h.refuseStep(w, r, tenant, err, again, codeMessage, "hosted sign-in code refused", h.renderFactor)
		return
	}
	h.signedIn(w, tenant, done)
}

// renderFactor renders the factor page of d.Pending with status: the
// code form when the user holds a TOTP factor, and a new passkey ceremony
// (with the page's script allowed) when the user holds a passkey. A
// pending sign-in that no longer opens is the error page.
func (h *handlers) renderFactor(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	f, err := h.app.FactorPage(r.Context(), d.Tenant, d.Request, d.Pending)
	if err != nil {
		h.pageError(w, r, d.Tenant, err)
		return
	}
	d.Code, d.Passkey = f.Code, f.Passkey
	if f.Passkey != nil {
		allowPageScript(w.Header())
	}
	h.renderPage(w, r, status, pageFactor, d)
}

// signinPasskey is POST /signin with the passkey form (inputs mfa and
// webauthn): a refused passkey renders the factor page again with the one
// message, status 200 (429 when rate-limited); a pending sign-in that
// expired or was forged is the error page; a passed passkey ends the
// sign-in as a password does.
func (h *handlers) signinPasskey(w http.ResponseWriter, r *http.Request, tenant string, form url.Values, page app.SigninPage) {
	sealed, pending := form.Get("auth"), form.Get("mfa")
	again := pageData{Tenant: tenant, DisplayName: page.DisplayName, Request: sealed, CSRF: form.Get("csrf"), Pending: pending}
	done, err := h.app.HostedPasskey(r.Context(), app.HostedPasskey{
		Tenant: tenant, Request: sealed, Pending: pending, Ceremony: form.Get("webauthn"), Assertion: form.Get("assertion"),
		Address: clientAddress(r, h.trusted), Cookie: h.browserCookie(r.Header, tenant),
	})
	if err != nil {
		h.refuseStep(w, r, tenant, err, again, passkeyMessage, "hosted sign-in passkey refused", h.renderFactor)
		return
	}
	h.signedIn(w, tenant, done)
}

// refuseStep answers a step of the hosted sign-in that failed with err: a
// refusal renders the step's page again with refused, status 200, its
// cause only in the debug log; rate limiting renders it with status 429
// and Retry-After; anything else is the error page.
func (h *handlers) refuseStep(w http.ResponseWriter, r *http.Request, tenant string, err error, again pageData, refused, logMsg string,
	render func(http.ResponseWriter, *http.Request, int, pageData),
) {
	switch fault.CodeOf(err) {
	case fault.Unauthenticated:
		h.log.DebugContext(r.Context(), logMsg, "cause", err.Error())
		again.Message = refused
		render(w, r, http.StatusOK, again)
	case fault.TooMany:
		setRetryAfter(w, err)
		again.Message = rateLimitedMessage
		render(w, r, http.StatusTooManyRequests, again)
	case fault.Invalid, fault.Conflict, fault.NotFound, fault.Forbidden, fault.Unprocessable, fault.Unavailable, fault.Internal:
		h.pageError(w, r, tenant, err)
	}
}

// passkeyScript serves GET /t/{tenant}/signin/passkey.js: the hosted
// page's passkey ceremony, the only script a page of the provider runs.
func (h *handlers) passkeyScript(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(pages.script)
}

// pageError answers err with the error page: 404 for an unknown tenant,
// 400 for a request that cannot go on, 503 when a dependency is down, a
// logged 500 for anything else.
func (h *handlers) pageError(w http.ResponseWriter, r *http.Request, tenant string, err error) {
	setPageHeaders(w.Header(), "")
	status, msg := http.StatusBadRequest, fault.MessageOf(err)
	switch code := fault.CodeOf(err); {
	case code == fault.NotFound && errors.Is(err, app.ErrUnknownTenant):
		status, msg = http.StatusNotFound, "There is no such organisation here."
	case code == fault.NotFound:
		msg = "The application is not registered here."
	case code == fault.Invalid:
	case code == fault.Unavailable || code == fault.TooMany:
		status, msg = http.StatusServiceUnavailable, "The service cannot answer right now. Try again shortly."
		setRetryAfter(w, err)
	default:
		h.log.ErrorContext(r.Context(), "sign-in page failed", "error", err.Error())
		status, msg = http.StatusInternalServerError, "Something went wrong on our side. Try again shortly."
	}
	h.renderPage(w, r, status, pageError400, pageData{Tenant: tenant, Message: msg})
}

// parseSigninForm reads the hosted page's form body, bounded; a parameter
// given twice is refused.
func parseSigninForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, invalidRequest("the form must be posted as application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSigninBody)
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("the form is too large or malformed")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, invalidRequest("the form field " + safeName(k) + " is given more than once")
		}
	}
	return r.PostForm, nil
}
