package httpapi

import (
	"net/http"

	"github.com/authstream/authstream/libs/fault"
)

// The sign-up page of the hosted login site (ADR 0019), with the
// conventions of the mailed links' pages (email_flows.go): GET
// /signup shows the form (inputs email and password, hidden input csrf),
// POST /signup takes it. It exists only while the tenant's setting
// self_signup is on: otherwise both answer 404 with a page saying that
// the organisation does not take sign-ups.

// signupMessage is the one answer of a sign-up, whether the address was
// new or held an account already.
const signupMessage = "Check your mail: we sent a message to this address. Open the link in it to confirm the address, then sign in from the application. If the address already had an account here, the message says how to get into it."

// signupClosedMessage answers the sign-up page of a tenant that takes no
// sign-ups.
const signupClosedMessage = "This organisation does not take sign-ups here. Ask its administrator for an account."

// verifyFirstMessage answers the right password of a user who signed up
// and has not confirmed their address yet.
const verifyFirstMessage = "Confirm your e-mail address first: open the link we mailed to it, then sign in again. No mail? Sign up again with the same address and we send a new link."

// signupTitle is the title of the sign-up form.
const signupTitle = "Create your account"

// signupPage is GET /signup.
func (h *handlers) signupPage(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	name, ok := h.signupOpen(w, r, tenant)
	if !ok {
		return
	}
	csrf := h.csrfCookie(w, r, tenant)
	h.renderPage(w, r, http.StatusOK, pageSignup, pageData{Tenant: tenant, DisplayName: name, Title: signupTitle, CSRF: h.app.CSRFToken(tenant, csrf)})
}

// signup is POST /signup: a refused address or password shows the form
// again with the reason (400), rate limiting with 429; a sign-up the
// command service took, new address or known, is the one notice.
func (h *handlers) signup(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	if _, ok := h.signupOpen(w, r, tenant); !ok {
		return
	}
	name, form, ok := h.linkForm(w, r, tenant)
	if !ok {
		return
	}
	email := form.values.Get("email")
	d := pageData{Tenant: tenant, DisplayName: name, Title: signupTitle, CSRF: form.csrf, Username: email}
	if email == "" || len(email) > 254 || form.values.Get("password") == "" {
		d.Username = ""
		d.Message = "Enter your e-mail address and a password."
		h.renderPage(w, r, http.StatusBadRequest, pageSignup, d)
		return
	}
	err := h.app.SignUp(r.Context(), tenant, email, form.values.Get("password"), clientAddress(r, h.trusted))
	switch fault.CodeOf(err) {
	case "":
		h.renderPage(w, r, http.StatusOK, pageNotice, pageData{Tenant: tenant, DisplayName: name, Title: "Check your mail", Message: signupMessage})
	case fault.Invalid:
		d.Message = fault.MessageOf(err) + "."
		h.renderPage(w, r, http.StatusBadRequest, pageSignup, d)
	case fault.TooMany:
		setRetryAfter(w, err)
		d.Message = "Too many attempts. Wait a minute and try again."
		h.renderPage(w, r, http.StatusTooManyRequests, pageSignup, d)
	case fault.NotFound:
		// The switch went off since the page was shown.
		h.renderPage(w, r, http.StatusNotFound, pageNotice, pageData{Tenant: tenant, DisplayName: name, Title: "Sign-up is closed", Message: signupClosedMessage})
	case fault.Conflict, fault.Unauthenticated, fault.Forbidden, fault.Unprocessable, fault.Unavailable, fault.Internal:
		h.pageError(w, r, tenant, err)
	}
}

// signupOpen answers the sign-up page of an unknown tenant (the error
// page) or of one that takes no sign-ups (a 404 notice), with the page
// headers set; ok is true, with the tenant's display name, when the page
// may go on.
func (h *handlers) signupOpen(w http.ResponseWriter, r *http.Request, tenant string) (name string, ok bool) {
	name, err := h.app.TenantDisplayName(r.Context(), tenant)
	if err != nil {
		h.pageError(w, r, tenant, err)
		return "", false
	}
	setPageHeaders(w.Header(), "")
	open, err := h.app.SignupOpen(r.Context(), tenant)
	if err != nil {
		h.pageError(w, r, tenant, err)
		return "", false
	}
	if !open {
		h.renderPage(w, r, http.StatusNotFound, pageNotice, pageData{Tenant: tenant, DisplayName: name, Title: "Sign-up is closed", Message: signupClosedMessage})
		return "", false
	}
	return name, true
}
