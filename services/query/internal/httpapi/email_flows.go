package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// The pages of the mailed links, on the hosted login site with its
// conventions (server-rendered forms, the CSRF double submit, the strict
// Content-Security-Policy, no referrer, no caching):
//   - GET/POST /password/forgot: the form asking for a reset link; the
//     answer is the same whether or not the account exists.
//   - GET/POST /password/reset?token=: the link of the reset mail; GET
//     shows the new-password form (the token moves into it, out of the
//     address bar's history of later pages), POST sets the password.
//   - GET/POST /invitation?token=: the link of the invitation mail, as
//     the reset link's, setting the invitee's first password.
//   - GET/POST /email/verify?token=: the link of the verification mail;
//     GET shows a button (a mail scanner that opens links verifies
//     nothing), POST verifies.
// A link that cannot be used gets a page that says why, with a 4xx.

// forgotMessage is the one answer of the forgot form.
const forgotMessage = "If an account with this username or address exists and has an e-mail address, a link to reset its password is on its way. It works once, for 30 minutes."

// formExpiredMessage answers a form whose CSRF token does not match.
const formExpiredMessage = "The form expired or did not come from this page. Open the page again and retry."

// forgotPage is GET /password/forgot.
func (h *handlers) forgotPage(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	name, err := h.app.TenantDisplayName(r.Context(), tenant)
	if err != nil {
		h.pageError(w, r, tenant, err)
		return
	}
	setPageHeaders(w.Header(), "")
	csrf := h.csrfCookie(w, r, tenant)
	h.renderPage(w, r, http.StatusOK, pageForgot, pageData{Tenant: tenant, DisplayName: name, Title: "Reset your password", CSRF: h.app.CSRFToken(tenant, csrf)})
}

// forgot is POST /password/forgot.
func (h *handlers) forgot(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	name, form, ok := h.linkForm(w, r, tenant)
	if !ok {
		return
	}
	d := pageData{Tenant: tenant, DisplayName: name, Title: "Reset your password", CSRF: form.csrf}
	login := form.values.Get("login")
	if login == "" || len(login) > 256 {
		d.Message = "Enter your username or e-mail address."
		h.renderPage(w, r, http.StatusBadRequest, pageForgot, d)
		return
	}
	switch err := h.app.ForgotPassword(r.Context(), tenant, login, clientAddress(r, h.trusted)); {
	case err == nil:
		h.renderPage(w, r, http.StatusOK, pageNotice, pageData{Tenant: tenant, DisplayName: name, Title: "Check your mail", Message: forgotMessage})
	case fault.CodeOf(err) == fault.TooMany:
		setRetryAfter(w, err)
		d.Message = rateLimitedMessage
		h.renderPage(w, r, http.StatusTooManyRequests, pageForgot, d)
	default:
		h.pageError(w, r, tenant, err)
	}
}

// resetPage is GET /password/reset?token=.
func (h *handlers) resetPage(w http.ResponseWriter, r *http.Request) {
	h.linkPage(w, r, events.LinkResetPassword, pageReset, "Choose a new password", "reset")
}

// verifyPage is GET /email/verify?token=.
func (h *handlers) verifyPage(w http.ResponseWriter, r *http.Request) {
	h.linkPage(w, r, events.LinkVerifyEmail, pageVerify, "Confirm your e-mail address", "verify")
}

// linkPage shows the form of a usable link, or a page that says why the
// link cannot be used.
func (h *handlers) linkPage(w http.ResponseWriter, r *http.Request, purpose, page, title, action string) {
	tenant := tenantOf(r)
	name, err := h.app.TenantDisplayName(r.Context(), tenant)
	if err != nil {
		h.pageError(w, r, tenant, err)
		return
	}
	setPageHeaders(w.Header(), "")
	token := r.URL.Query().Get("token")
	if err := h.app.CheckLink(r.Context(), tenant, purpose, token); err != nil {
		h.linkError(w, r, tenant, name, err)
		return
	}
	csrf := h.csrfCookie(w, r, tenant)
	h.renderPage(w, r, http.StatusOK, page, pageData{Tenant: tenant, DisplayName: name, Title: title,
		CSRF: h.app.CSRFToken(tenant, csrf), Token: token, Action: action})
}

// reset is POST /password/reset.
func (h *handlers) reset(w http.ResponseWriter, r *http.Request) {
	h.setPassword(w, r, "reset", "Choose a new password", "Your password is changed. Sign in with it from the application.", h.app.ResetPassword)
}

// invitationPage is GET /invitation?token=.
func (h *handlers) invitationPage(w http.ResponseWriter, r *http.Request) {
	h.linkPage(w, r, events.LinkInvitation, pageReset, "Choose your password", "invitation")
}

// acceptInvitation is POST /invitation.
func (h *handlers) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	h.setPassword(w, r, "invitation", "Choose your password", "Your password is set and your address confirmed. Sign in from the application.", h.app.AcceptInvitation)
}

// setPassword takes the new-password form of a reset or an invitation
// link: a password the policy refuses shows the form again (400), the
// link unspent.
func (h *handlers) setPassword(w http.ResponseWriter, r *http.Request, action, title, doneMessage string,
	set func(ctx context.Context, tenant, token, password, client string) error) {
	tenant := tenantOf(r)
	name, form, ok := h.linkForm(w, r, tenant)
	if !ok {
		return
	}
	token := form.values.Get("token")
	err := set(r.Context(), tenant, token, form.values.Get("password"), clientAddress(r, h.trusted))
	switch {
	case err == nil:
		h.renderPage(w, r, http.StatusOK, pageNotice, pageData{Tenant: tenant, DisplayName: name, Title: "Password set", Message: doneMessage})
	case fault.CodeOf(err) == fault.Invalid && !isLinkError(err):
		h.renderPage(w, r, http.StatusBadRequest, pageReset, pageData{Tenant: tenant, DisplayName: name, Title: title,
			CSRF: form.csrf, Token: token, Action: action, Message: fault.MessageOf(err) + "."})
	default:
		h.linkError(w, r, tenant, name, err)
	}
}

// verifyEmail is POST /email/verify.
func (h *handlers) verifyEmail(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	name, form, ok := h.linkForm(w, r, tenant)
	if !ok {
		return
	}
	if err := h.app.VerifyEmail(r.Context(), tenant, form.values.Get("token"), clientAddress(r, h.trusted)); err != nil {
		h.linkError(w, r, tenant, name, err)
		return
	}
	h.renderPage(w, r, http.StatusOK, pageNotice, pageData{Tenant: tenant, DisplayName: name, Title: "Address confirmed",
		Message: "Your e-mail address is confirmed."})
}

// postedForm is a mailed link's form, read and checked.
type postedForm struct {
	values url.Values
	csrf   string // the form's CSRF token, for a form shown again
}

// linkForm reads a posted form of the mailed links' pages and checks its
// CSRF token; on a refusal it has answered and ok is false.
func (h *handlers) linkForm(w http.ResponseWriter, r *http.Request, tenant string) (name string, form postedForm, ok bool) {
	name, err := h.app.TenantDisplayName(r.Context(), tenant)
	if err != nil {
		h.pageError(w, r, tenant, err)
		return "", form, false
	}
	values, err := parseSigninForm(w, r)
	if err != nil {
		h.pageError(w, r, tenant, err)
		return "", form, false
	}
	setPageHeaders(w.Header(), "")
	csrf, err := r.Cookie(h.csrfCookieName(tenant))
	if err != nil || !h.app.CheckCSRF(tenant, csrf.Value, values.Get("csrf")) {
		h.renderPage(w, r, http.StatusBadRequest, pageError400, pageData{Tenant: tenant, Message: formExpiredMessage})
		return "", form, false
	}
	form.values, form.csrf = values, values.Get("csrf")
	return name, form, true
}

// isLinkError reports whether err is a refusal of the link itself.
func isLinkError(err error) bool {
	for _, e := range []error{domain.ErrMalformedLink, domain.ErrUnknownLink, domain.ErrLinkPurpose, domain.ErrLinkUsed, domain.ErrLinkExpired, domain.ErrLinkVoid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// linkError answers a link that cannot be used with a page that says
// why: 404 unknown (or another tenant's), 410 used or expired, 409 voided
// by a later change of the account; the error page for anything else.
func (h *handlers) linkError(w http.ResponseWriter, r *http.Request, tenant, name string, err error) {
	status, msg := 0, ""
	switch {
	case errors.Is(err, domain.ErrUnknownLink), errors.Is(err, domain.ErrMalformedLink), errors.Is(err, domain.ErrLinkPurpose):
		status, msg = http.StatusNotFound, "This link is not valid here. Check that you opened the whole link from the mail."
	case errors.Is(err, domain.ErrLinkUsed):
		status, msg = http.StatusGone, "This link was already used. Each link works once: ask for a new one."
	case errors.Is(err, domain.ErrLinkExpired):
		status, msg = http.StatusGone, "This link has expired. Ask for a new one."
	case errors.Is(err, domain.ErrLinkVoid):
		status, msg = http.StatusConflict, "This link no longer applies: the account changed since it was sent. Ask for a new one."
	default:
		h.pageError(w, r, tenant, err)
		return
	}
	h.renderPage(w, r, status, pageNotice, pageData{Tenant: tenant, DisplayName: name, Title: "This link cannot be used", Message: msg})
}
