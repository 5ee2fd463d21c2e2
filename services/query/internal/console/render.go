package console

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/go-chi/chi/v5"
)

//go:embed templates assets
var files embed.FS

// pageSet holds the parsed pages, each with the layout.
type pageSet struct {
	pages  map[string]*template.Template
	assets fs.FS
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"join": strings.Join,
	"list": func(s ...string) []string { return s },
	// A template's if takes a non-nil pointer as true, *bool false
	// included: the settings' switches ask these instead.
	"isTrue":  func(b *bool) bool { return b != nil && *b },
	"isFalse": func(b *bool) bool { return b != nil && !*b },
}

func parsePages() (*pageSet, error) {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	ps := &pageSet{pages: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimPrefix(n, "templates/")
		if name == "layout.html" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		ps.pages[name] = t
	}
	if ps.assets, err = fs.Sub(files, "assets"); err != nil {
		return nil, err
	}
	return ps, nil
}

// me is the signed-in admin as GET /me describes them.
type me struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	Tenant      string   `json:"tenant"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
}

// can reports whether the admin holds perm (a granted wildcard covers
// it). It only decides what the navigation shows: the APIs decide what
// the admin may do.
func (m *me) can(perm string) bool {
	if m == nil {
		return false
	}
	need, err := authz.Parse(perm)
	if err != nil {
		return false
	}
	for _, g := range m.Permissions {
		if p, err := authz.Parse(g); err == nil && p.Matches(need) {
			return true
		}
	}
	return false
}

// navItem is a link of the navigation.
type navItem struct {
	Label, Href string
	Current     bool
}

// view is what every page shows; Data is the page's own.
type view struct {
	Title   string
	Tenant  string
	Base    string
	Me      *me
	CSRF    string
	Nav     []navItem
	Notice  string // a confirmation ("Saved.")
	Error   string // a refusal to show above the page
	Status  int
	Data    any
	Section string
	Refresh int // seconds after which the page reloads itself; 0 never
}

// nav returns the links the admin's permissions open.
func (c *Console) nav(v *view) []navItem {
	if v.Me == nil {
		return nil
	}
	items := []navItem{{Label: "Home", Href: v.Base + "/"}}
	add := func(label, path, perm string) {
		if perm == "" || v.Me.can(perm) {
			items = append(items, navItem{Label: label, Href: v.Base + path, Current: v.Section == path})
		}
	}
	add("Users", "/users", "users:read")
	add("Roles", "/roles", "roles:read")
	add("Clients", "/clients", "clients:read")
	add("Webhooks", "/webhooks", "webhooks:read")
	add("Live events", "/events", "audit:read")
	add("Settings", "/settings", "settings:write")
	add("Mail templates", "/settings/mail-templates", "settings:read")
	if v.Tenant == authz.PlatformTenant {
		add("Tenants", "/tenants", "tenants:write")
		if c.cfg.ProjectorURL != "" {
			add("Projections", "/projections", "projections:read")
		}
	}
	return items
}

// page renders a page of a signed-in admin: it reads the admin's /me for
// the navigation and fills the common parts of v.
func (c *Console) page(w http.ResponseWriter, r *http.Request, name string, v view) {
	s := sessionOf(r.Context())
	if s != nil {
		v.Tenant, v.Base, v.CSRF = s.Tenant, base(s.Tenant), s.CSRF
		if v.Me == nil {
			var m me
			if err := c.clientOf(r).query(r.Context(), "/me", nil, &m); err == nil {
				v.Me = &m
			}
		}
	}
	if v.Notice == "" {
		v.Notice = noticeOf(r.URL.Query().Get("done"))
	}
	v.Nav = c.nav(&v)
	if v.Status == 0 {
		v.Status = http.StatusOK
	}
	c.render(w, r, name, v)
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, v view) {
	t := c.pages.pages[name]
	var buf bytes.Buffer
	if t == nil {
		c.fail(w, r, errors.New("no page "+name))
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(v.Status)
	_, _ = w.Write(buf.Bytes())
}

// notices are the confirmations a redirect after a change names with
// ?done=.
var notices = map[string]string{
	"created": "Created.", "saved": "Saved.", "disabled": "Disabled.", "enabled": "Enabled.",
	"assigned": "Role assigned.", "unassigned": "Role removed.", "password": "Password reset.", "deleted": "Deleted.",
	"console": "The tenant's console client is registered.",
	"paused":  "Paused: events wait in the log.", "resumed": "Resumed.", "rotated": "Secret rotated.",
	"mfa":     "Second factors reset.",
	"erased":  "Erased: the person's data can no longer be read by anyone.",
	"invited": "Invited: the invitation is mailed to the address.",
	"replay":  "Replay requested: the dispatcher delivers the events again.",
	"default": "The platform's templates are used again.",
}

func noticeOf(k string) string { return notices[k] }

// renderError shows a refusal page with status.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	title := http.StatusText(status)
	if status == http.StatusForbidden {
		title = "Not allowed"
	}
	c.page(w, r, "error.html", view{Title: title, Status: status, Error: msg})
}

// apiFailure shows an API's refusal: 401 sends the admin to sign in
// again, 403 and 404 are pages of their own that show nothing of what
// was asked for, and the rest show the problem's detail.
func (c *Console) apiFailure(w http.ResponseWriter, r *http.Request, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		c.fail(w, r, err)
		return
	}
	switch e.Status {
	case http.StatusUnauthorized:
		tenant := chi.URLParam(r, "tenant")
		_ = c.setCookie(w, cookieSession, tenant, nil, c.now())
		if r.Method == http.MethodGet {
			seeOther(w, r, base(tenant)+"/login")
			return
		}
		c.renderError(w, r, http.StatusUnauthorized, "Your session ended. Sign in again.")
	case http.StatusForbidden:
		c.renderError(w, r, http.StatusForbidden, "Your roles do not allow this.")
	case http.StatusNotFound:
		c.renderError(w, r, http.StatusNotFound, "There is nothing here.")
	default:
		status := e.Status
		if status/100 == 5 {
			status = http.StatusBadGateway
		}
		c.renderError(w, r, status, e.Error())
	}
}

// fail logs an internal error and shows a page that says nothing of it.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.log.ErrorContext(r.Context(), "console", "path", r.URL.Path, "error", err.Error())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte("internal error\n"))
}

// headers sets the headers of every answer: a strict
// Content-Security-Policy (the console's own stylesheet and nothing else:
// no script at all, nothing inline, forms posting to the console and the
// provider's origin, no framing), no caching, no referrer, no sniffing.
func (c *Console) headers(next http.Handler) http.Handler {
	csp := "default-src 'none'; style-src 'self'; img-src 'self'" +
		"; form-action 'self' " + c.origin + "; frame-ancestors 'none'; base-uri 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/console/assets/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// csrf refuses a form post that is cross-site (the browser's
// Sec-Fetch-Site or Origin header says so: net/http's
// CrossOriginProtection) or whose csrf field is not the session's token.
func (c *Console) csrf(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, http.StatusForbidden, "This form was sent from another site: nothing was done.")
	}))
	check := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			s := sessionOf(r.Context())
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if s == nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.CSRF)) != 1 {
				c.renderError(w, r, http.StatusForbidden, "This form is out of date or was not sent from the console: nothing was done. Reload the page and try again.")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
	return cop.Handler(check)
}

// resetRoute lets the console's own router route a request a parent chi
// router passed on.
func resetRoute(ctx context.Context) context.Context {
	return context.WithValue(ctx, chi.RouteCtxKey, (*chi.Context)(nil))
}
