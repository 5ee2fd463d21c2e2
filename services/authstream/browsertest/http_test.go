package browsertest_test

import (
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// httpBrowser is a person's browser made of a cookie jar and nothing
// else: it follows each redirect by hand, so that the journey sees every
// hop, and runs no script.
type httpBrowser struct {
	c *authstreamtest.Client
}

func newHTTPBrowser() *httpBrowser {
	jar, _ := cookiejar.New(nil)
	return &httpBrowser{c: &authstreamtest.Client{HTTP: &http.Client{Jar: jar, Timeout: stepLimit,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}}
}

// hop is one answer the browser got.
type hop struct {
	url      string // the URL the request went to
	status   int
	location string // the Location of a redirect, absolute
	body     string
}

// send sends one request (a form when form is not nil) and returns the
// answer, with a relative Location made absolute.
func (b *httpBrowser) send(tb testing.TB, method, u string, form url.Values) hop {
	tb.Helper()
	r := authstreamtest.Request{Method: method, URL: u}
	if form != nil {
		r.Body = form
	}
	res, err := b.c.Send(r)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	h := hop{url: u, status: res.Status, body: string(res.Body)}
	if loc := res.Header.Get("Location"); loc != "" {
		h.location = resolve(tb, u, loc)
	}
	return h
}

// follow follows the redirects of h, as a browser would (a GET each
// time), and returns the page it lands on. Every hop must be a redirect
// or a page, never an error.
func (b *httpBrowser) follow(tb testing.TB, h hop) hop {
	tb.Helper()
	for range 10 {
		switch {
		case h.status >= 400:
			tb.Fatalf("%s answered %d:\n%s", h.url, h.status, h.body)
		case h.status/100 != 3:
			return h
		}
		h = b.send(tb, http.MethodGet, h.location, nil)
	}
	tb.Fatalf("more than 10 redirects, the last to %s", h.location)
	return hop{}
}

// resolve returns ref made absolute against base.
func resolve(tb testing.TB, base, ref string) string {
	tb.Helper()
	b, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		tb.Fatal(err)
	}
	return b.ResolveReference(r).String()
}

var (
	formTag  = regexp.MustCompile(`<form method="post"(?: action="([^"]*)")?>`)
	inputTag = regexp.MustCompile(`<input [^>]*>`)
	attr     = regexp.MustCompile(`([a-z-]+)="([^"]*)"`)
	cell     = regexp.MustCompile(`<td id="([a-z_]+-[a-z_]+)">([^<]*)</td>`)
)

// signInForm reads the hosted page as the pinned form shape says a
// black-box client may (DESIGN 11.1): one form posted, inputs named
// username and password, hidden inputs sent back as they are. It
// returns the form's target and its hidden inputs.
func signInForm(tb testing.TB, page hop) (string, url.Values) {
	tb.Helper()
	forms := formTag.FindAllStringSubmatch(page.body, -1)
	if len(forms) != 1 {
		tb.Fatalf("the sign-in page %s has %d post forms, want 1:\n%s", page.url, len(forms), page.body)
	}
	target := page.url
	if forms[0][1] != "" {
		target = resolve(tb, page.url, html.UnescapeString(forms[0][1]))
	}
	hidden, named := url.Values{}, map[string]bool{}
	for _, tag := range inputTag.FindAllString(page.body, -1) {
		a := map[string]string{}
		for _, m := range attr.FindAllStringSubmatch(tag, -1) {
			a[m[1]] = html.UnescapeString(m[2])
		}
		named[a["name"]] = true
		if a["type"] == "hidden" {
			hidden.Add(a["name"], a["value"])
		}
	}
	if !named["username"] || !named["password"] || len(hidden) == 0 {
		tb.Fatalf("the sign-in page %s lacks the inputs username, password and hidden ones:\n%s", page.url, page.body)
	}
	return target, hidden
}

// shownClaims reads the claims the application's home page shows.
func shownClaims(page hop) claims {
	cells := map[string]string{}
	for _, m := range cell.FindAllStringSubmatch(page.body, -1) {
		cells[m[1]] = html.UnescapeString(m[2])
	}
	return claims{sub: cells["idtoken-sub"], iss: cells["idtoken-iss"], aud: cells["idtoken-aud"], username: cells["userinfo-preferred_username"]}
}

// httpJourney signs grace in to the application and out again with a
// plain HTTP client: the application's sign-in link, the provider's
// redirect to its hosted page, the form posted with its hidden inputs as
// they are, the redirects back to the application, which shows her
// claims; prompt=none proves the provider's session; sign-out ends it at
// the provider and in the application.
func httpJourney(t *testing.T, r *rig, a app) {
	start := time.Now()
	b := newHTTPBrowser()

	home := b.send(t, http.MethodGet, a.url+"/", nil)
	if home.status != http.StatusOK || !strings.Contains(home.body, `id="signin" href="/login"`) {
		t.Fatalf("the application's home page = %d:\n%s", home.status, home.body)
	}
	page := b.follow(t, b.send(t, http.MethodGet, a.url+"/login", nil))
	if !strings.HasPrefix(page.url, r.issuer+"/signin") || page.status != http.StatusOK {
		t.Fatalf("the sign-in link ends at %s (%d), want the hosted page", page.url, page.status)
	}
	target, form := signInForm(t, page)
	form.Set("username", userName)
	form.Set("password", userPassword)
	page = b.follow(t, b.send(t, http.MethodPost, target, form))
	if page.url != a.url+"/" {
		t.Fatalf("signing in ends at %s, want the application's home page:\n%s", page.url, page.body)
	}
	shownClaims(page).check(t, r, a)

	// The provider has a session for this browser: prompt=none signs in
	// without a page.
	silent := b.send(t, http.MethodGet, r.authorizeURL(a, url.Values{"prompt": {"none"}}), nil)
	if q := silentAnswer(t, a, silent.location); q.Get("code") == "" || q.Get("error") != "" {
		t.Fatalf("prompt=none while signed in = %s, want a code", silent.location)
	}

	page = b.follow(t, b.send(t, http.MethodPost, a.url+"/logout", url.Values{}))
	backFromSignOut(t, a, page.url)
	if !strings.Contains(page.body, `id="signed-out"`) {
		t.Fatalf("the application does not say that the provider signed out:\n%s", page.body)
	}
	silent = b.send(t, http.MethodGet, r.authorizeURL(a, url.Values{"prompt": {"none"}}), nil)
	if q := silentAnswer(t, a, silent.location); q.Get("error") != "login_required" || q.Has("code") {
		t.Fatalf("prompt=none after signing out = %s, want login_required", silent.location)
	}
	if home := b.send(t, http.MethodGet, a.url+"/", nil); !strings.Contains(home.body, `id="signin"`) {
		t.Fatalf("the application still has a session after signing out:\n%s", home.body)
	}
	t.Logf("HTTP client journey: %s", time.Since(start).Round(time.Millisecond))
}
