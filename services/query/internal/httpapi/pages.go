package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"

	"github.com/authstream/authstream/services/query/internal/app"
)

// The provider's pages (pages/): the hosted login page, the error page of
// browser-facing refusals and the signed-out page. They are rendered on
// the server with html/template, need no JavaScript, and carry their
// stylesheet inline, allowed by its hash alone, so that the
// Content-Security-Policy can refuse everything else.

//go:embed pages
var pageFiles embed.FS

// The pages, by name.
const (
	pageSignin    = "signin.html"
	pageFactor    = "factor.html"
	pageError400  = "error.html"
	pageSignedOut = "signedout.html"

	// The pages of the mailed links (email_flows.go).
	pageForgot = "forgot.html"
	pageReset  = "reset.html"
	pageVerify = "verify.html"
	pageNotice = "notice.html"

	// The sign-up page (signup.go).
	pageSignup = "signup.html"
)

// pageSet holds the parsed pages and the hash of their stylesheet.
type pageSet struct {
	pages   map[string]*template.Template
	css     template.CSS
	cssHash string
	script  []byte // passkey.js
}

func mustPages() *pageSet {
	css, err := pageFiles.ReadFile("pages/style.css")
	if err != nil {
		panic(err)
	}
	script, err := pageFiles.ReadFile("pages/passkey.js")
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(css)
	ps := &pageSet{
		pages:   map[string]*template.Template{},
		css:     template.CSS(css), // #nosec G203 -- our own embedded stylesheet
		cssHash: "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
		script:  script,
	}
	for _, name := range []string{pageSignin, pageFactor, pageError400, pageSignedOut, pageForgot, pageReset, pageVerify, pageNotice, pageSignup} {
		ps.pages[name] = template.Must(template.ParseFS(pageFiles, "pages/layout.html", "pages/"+name))
	}
	return ps
}

// pages are parsed once: they are part of the binary.
var pages = mustPages()

// pageData is what a page shows.
type pageData struct {
	Tenant      string
	Title       string
	DisplayName string
	Message     string
	Request     string // the sealed authorization request
	CSRF        string
	Username    string
	Pending     string // the sealed pending sign-in of the code form
	Token       string // a mailed link's token, from the link to its form
	Action      string // where a mailed link's form posts, relative to the page
	CSS         template.CSS
	// Code is true when the factor page asks for a code (the user holds a
	// TOTP factor); Passkey is the passkey ceremony it offers, nil when
	// none.
	Code    bool
	Passkey *app.PasskeyOffer
	// Signup is true when the sign-in page links to the tenant's sign-up
	// page.
	Signup bool
}

// setPageHeaders sets the headers of every page: a strict
// Content-Security-Policy (nothing but the inline stylesheet by its hash;
// forms post to the page's origin and, since the sign-in form's answer
// redirects there, the origin of formTarget; no framing), no caching, no
// referrer, no sniffing.
func setPageHeaders(h http.Header, formTarget string) {
	formAction := "'self'"
	if u, err := url.Parse(formTarget); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+pages.cssHash+"; form-action "+formAction+
		"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
}

// allowPageScript lets a page that offers a passkey run the page's own
// script (passkey.js, served from this origin): script-src 'self' on
// that page only; every other page runs none.
func allowPageScript(h http.Header) {
	h.Set("Content-Security-Policy", h.Get("Content-Security-Policy")+"; script-src 'self'")
}

// renderPage writes page with status; the headers of setPageHeaders must
// be set.
func (h *handlers) renderPage(w http.ResponseWriter, r *http.Request, status int, page string, d pageData) {
	d.CSS = pages.css
	if d.Title == "" {
		switch page {
		case pageSignin, pageFactor:
			d.Title = "Sign in to " + d.DisplayName
		case pageSignedOut:
			d.Title = "Signed out"
		default:
			d.Title = "Sign-in error"
		}
	}
	var buf bytes.Buffer
	if err := pages.pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		h.log.ErrorContext(r.Context(), "render page", "page", page, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
