package browsertest_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// The console's journeys with a plain HTTP client: every hop of the
// sign-in, the forms posted as a browser posts them, and what the console
// refuses (a cross-site form, another tenant's pages, a page the admin's
// roles do not open).

var (
	csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	userLink  = regexp.MustCompile(`href="/console/t/[a-z0-9-]+/users/([^"/]+)">([^<]*)</a>`)
)

// consoleURL returns the console's URL of path in tenant.
func (r *rig) consoleURL(tenant, path string) string {
	return r.p.Query + "/console/t/" + tenant + path
}

// signInConsole signs username in to tenant's console through the hosted
// page and returns the page it lands on: the console's home.
func (r *rig) signInConsole(tb testing.TB, b *httpBrowser, tenant, username, password string) hop {
	tb.Helper()
	page := b.follow(tb, b.send(tb, http.MethodGet, r.consoleURL(tenant, "/"), nil))
	if !strings.HasPrefix(page.url, r.p.Query+"/t/"+tenant+"/signin") {
		tb.Fatalf("the console sends an admin who is not signed in to %s, want the hosted page of %s", page.url, tenant)
	}
	target, form := signInForm(tb, page)
	form.Set("username", username)
	form.Set("password", password)
	page = b.follow(tb, b.send(tb, http.MethodPost, target, form))
	if page.url != r.consoleURL(tenant, "/") || !strings.Contains(page.body, `<span id="whoami">`+username+`</span>`) {
		tb.Fatalf("signing in to the console ends at %s:\n%s", page.url, page.body)
	}
	return page
}

// csrfOf returns the CSRF token of a console page's forms.
func csrfOf(tb testing.TB, page hop) string {
	tb.Helper()
	m := csrfInput.FindStringSubmatch(page.body)
	if m == nil {
		tb.Fatalf("the page %s has no CSRF token:\n%s", page.url, page.body)
	}
	return html.UnescapeString(m[1])
}

// post sends a console form and follows where it leads, which must be a
// page (no error).
func (b *httpBrowser) post(tb testing.TB, u string, form url.Values) hop {
	tb.Helper()
	return b.follow(tb, b.send(tb, http.MethodPost, u, form))
}

// TestConsole_HTTP runs the console with a plain HTTP client: ada, the
// admin of acme, signs in, defines a role, registers a user with it, finds
// them in the list, disables them and signs out; the refusals are checked
// on the way.
func TestConsole_HTTP(t *testing.T) {
	r := mustRig(t)
	b := newHTTPBrowser()
	home := r.signInConsole(t, b, tenantID, adminName, adminPassword)
	csrf := csrfOf(t, home)
	for _, link := range []string{"/users", "/roles", "/clients", "/webhooks", "/settings"} {
		if !strings.Contains(home.body, `href="/console/t/acme`+link+`"`) {
			t.Errorf("ada's home page has no link to %s", link)
		}
	}
	if strings.Contains(home.body, "/tenants") {
		t.Error("a tenant admin's home page links to the platform's tenants page")
	}

	// A role, previewed then saved.
	preview := b.post(t, r.consoleURL(tenantID, "/roles/new"), url.Values{"csrf": {csrf}, "name": {"support"},
		"permissions": {"users:*\naudit:read"}, "action": {"preview"}})
	if !strings.Contains(preview.body, `id="preview-result"`) || !strings.Contains(preview.body, "<code>users:write</code>") {
		t.Fatalf("the preview of users:* does not show users:write:\n%s", preview.body)
	}
	role := b.post(t, r.consoleURL(tenantID, "/roles/new"), url.Values{"csrf": {csrf}, "name": {"support"},
		"permissions": {"users:read\naudit:read"}, "description": {"Support desk"}, "action": {"save"}})
	if !strings.HasPrefix(role.url, r.consoleURL(tenantID, "/roles/support")+"?") || ctOf(t, role.url) == "" || !strings.Contains(role.body, "users:read") {
		t.Fatalf("saving the role ends at %s:\n%s", role.url, role.body)
	}

	// A user with the role, seen at once on their page and in the list.
	user := b.post(t, r.consoleURL(tenantID, "/users/new"), url.Values{"csrf": {csrf}, "username": {"linus"},
		"password": {"Linus-Passphrase 77a1-acme"}, "role": {"support"}})
	if !strings.Contains(user.body, `id="user-roles">support<`) {
		t.Fatalf("the new user's page does not show the role:\n%s", user.body)
	}
	linusPath := strings.TrimPrefix(strings.SplitN(user.url, "?", 2)[0], r.p.Query)
	list := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/users?q=lin"), nil))
	if m := userLink.FindAllStringSubmatch(list.body, -1); len(m) != 1 || m[0][2] != "linus" {
		t.Fatalf("searching lin lists %v:\n%s", m, list.body)
	}

	// ada resets linus's second factors (he has none: the command changes
	// nothing, and says so with 204), once she ticks the box.
	if !strings.Contains(user.body, `id="reset-mfa"`) {
		t.Errorf("ada's view of linus has no reset of second factors:\n%s", user.body)
	}
	if res := b.send(t, http.MethodPost, r.p.Query+linusPath+"/mfa/reset", url.Values{"csrf": {csrf}}); res.status != http.StatusBadRequest {
		t.Errorf("an unconfirmed reset = %d", res.status)
	}
	if reset := b.post(t, r.p.Query+linusPath+"/mfa/reset", url.Values{"csrf": {csrf}, "confirm": {"reset"}}); !strings.Contains(reset.body, `id="notice">Second factors reset.<`) {
		t.Errorf("after the reset linus's page shows:\n%s", reset.body)
	}

	// A form from another site, or without the session's token, changes
	// nothing.
	for name, c := range map[string]struct {
		form   url.Values
		header map[string]string
	}{
		"no token":        {url.Values{}, nil},
		"another token":   {url.Values{"csrf": {"forged"}}, nil},
		"cross-site post": {url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
	} {
		res, err := b.c.Send(authstreamtest.Request{Method: http.MethodPost, URL: r.p.Query + linusPath + "/disable", Body: c.form, Header: c.header})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusForbidden || !strings.Contains(string(res.Body), "nothing was done") {
			t.Errorf("%s: disable = %d, want 403:\n%s", name, res.Status, res.Body)
		}
	}
	if page := b.follow(t, b.send(t, http.MethodGet, r.p.Query+linusPath, nil)); !strings.Contains(page.body, `id="user-status">active<`) {
		t.Fatalf("a refused form changed the user:\n%s", page.body)
	}
	disabled := b.post(t, r.p.Query+linusPath+"/disable", url.Values{"csrf": {csrf}, "reason": {"left"}})
	if !strings.Contains(disabled.body, `id="user-status">disabled<`) {
		t.Fatalf("after disabling, the user's page shows:\n%s", disabled.body)
	}

	// The platform's pages are not a tenant admin's, and acme's session
	// opens nothing of the platform's console.
	for _, p := range []string{"/tenants", "/projections"} {
		page := b.send(t, http.MethodGet, r.consoleURL(tenantID, p), nil)
		if page.status != http.StatusForbidden || strings.Contains(page.body, "<table") {
			t.Errorf("GET %s as acme's admin = %d:\n%s", p, page.status, page.body)
		}
	}
	for _, p := range []string{"/webhooks", "/webhooks/new", "/events"} {
		other := b.send(t, http.MethodGet, r.consoleURL("platform", p), nil)
		if other.status != http.StatusSeeOther || !strings.HasPrefix(other.location, r.consoleURL("platform", "/login")) {
			t.Errorf("GET the platform's %s with acme's session = %d %s, want the platform's sign-in", p, other.status, other.location)
		}
	}
	platform := b.send(t, http.MethodGet, r.consoleURL("platform", "/tenants"), nil)
	if platform.status != http.StatusSeeOther || !strings.HasPrefix(platform.location, r.consoleURL("platform", "/login")) {
		t.Errorf("GET the platform's tenants page with acme's session = %d %s, want the platform's sign-in", platform.status, platform.location)
	}
	forged := b.send(t, http.MethodPost, r.consoleURL("platform", "/tenants"), url.Values{"csrf": {csrf}, "id": {"evil"}, "name": {"Evil"},
		"admin_username": {"eve"}, "admin_password": {"Eve-Passphrase 0000-evil"}})
	if forged.status != http.StatusUnauthorized {
		t.Errorf("POST the platform's tenants form with acme's session = %d", forged.status)
	}
	r.p.Do(t, http.MethodGet, r.p.Query+"/t/evil/.well-known/openid-configuration", "", "", nil, http.StatusNotFound)
	// acme's session cookie renamed as the platform's opens nothing: it
	// is sealed to its tenant.
	acmeURL, _ := url.Parse(r.consoleURL(tenantID, "/"))
	var session string
	for _, ck := range b.c.HTTP.Jar.Cookies(acmeURL) {
		if ck.Name == "authstream_console_session_"+tenantID {
			session = ck.Value
		}
	}
	if session == "" {
		t.Fatal("no session cookie of acme's console")
	}
	platformURL, _ := url.Parse(r.consoleURL("platform", "/"))
	stolenCookie := &http.Cookie{Name: "authstream_console_session_platform", Value: session, Path: "/console/t/platform/"} //nolint:gosec // G124: planted in the test's own jar over plain http
	b.c.HTTP.Jar.SetCookies(platformURL, []*http.Cookie{stolenCookie})
	stolen := b.send(t, http.MethodGet, r.consoleURL("platform", "/tenants"), nil)
	if stolen.status != http.StatusSeeOther || !strings.HasPrefix(stolen.location, r.consoleURL("platform", "/login")) {
		t.Errorf("the platform's console with acme's session cookie = %d %s", stolen.status, stolen.location)
	}

	// grace holds no role: she signs in, sees no user list, and the
	// page names nobody.
	g := newHTTPBrowser()
	ghome := r.signInConsole(t, g, tenantID, userName, userPassword)
	if strings.Contains(ghome.body, `/users"`) {
		t.Error("grace's home page links to the users")
	}
	denied := g.send(t, http.MethodGet, r.consoleURL(tenantID, "/users"), nil)
	if denied.status != http.StatusForbidden || strings.Contains(denied.body, "linus") || strings.Contains(denied.body, adminName+"<") {
		t.Errorf("GET /users as grace = %d:\n%s", denied.status, denied.body)
	}

	// grace signed in (the rig's login and the console): ada sees it on
	// her page.
	var graceID string
	for _, m := range userLink.FindAllStringSubmatch(b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/users?q=grace"), nil)).body, -1) {
		graceID = m[1]
	}
	if page := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/users/"+graceID), nil)); !strings.Contains(page.body, `id="signins"`) ||
		!strings.Contains(page.body, "signin.succeeded") {
		t.Errorf("grace's page shows no sign-ins:\n%s", page.body)
	}

	// Deleting asks for the name again.
	if res := b.send(t, http.MethodPost, r.p.Query+linusPath+"/delete", url.Values{"csrf": {csrf}, "confirm": {"linu"}}); res.status != http.StatusBadRequest {
		t.Errorf("delete with the wrong name = %d", res.status)
	}
	gone := b.post(t, r.p.Query+linusPath+"/delete", url.Values{"csrf": {csrf}, "confirm": {"linus"}})
	if !strings.Contains(gone.body, `id="notice">Deleted.<`) || strings.Contains(gone.body, ">linus<") {
		t.Errorf("after deleting linus the users page shows:\n%s", gone.body)
	}
	consoleInviteAndErase(t, r, b, csrf)
	consoleSettingsAndMail(t, r, b, g, csrf)
	roles := b.post(t, r.consoleURL(tenantID, "/roles/support/delete"), url.Values{"csrf": {csrf}, "confirm": {"support"}})
	if !strings.Contains(roles.body, `id="notice">Deleted.<`) || strings.Contains(roles.body, ">support<") {
		t.Errorf("after deleting the role the roles page shows:\n%s", roles.body)
	}

	// The platform's admin creates a tenant and registers a console
	// client (acme has one already: nothing changes, and it says so all
	// the same).
	root := newHTTPBrowser()
	rhome := r.signInConsole(t, root, "platform", authstreamtest.AdminUsername, authstreamtest.AdminPassword)
	rcsrf := csrfOf(t, rhome)
	created := root.post(t, r.consoleURL("platform", "/tenants"), url.Values{"csrf": {rcsrf}, "id": {"globex"}, "name": {"Globex"},
		"admin_username": {"gus"}, "admin_password": {"Gus-Passphrase 4c1d-globex"}})
	if !strings.Contains(created.body, `id="created-tenant">globex<`) {
		t.Errorf("after creating globex the tenants page shows:\n%s", created.body)
	}
	registered := root.post(t, r.consoleURL("platform", "/tenants/state"), url.Values{"csrf": {rcsrf}, "id": {tenantID}, "action": {"console"}})
	if !strings.Contains(registered.body, "console client is registered") {
		t.Errorf("after registering acme's console client the tenants page shows:\n%s", registered.body)
	}

	consoleWebhooks(t, r, b, g, csrf)

	// The live tail shows the latest events of acme, newest first (the
	// webhook's deletion above its registration), and reloads itself.
	tail := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/events"), nil))
	hookDeleted, hookRegistered := strings.Index(tail.body, "<td>webhook.deleted</td>"), strings.Index(tail.body, "<td>webhook.registered</td>")
	if !strings.Contains(tail.body, `<meta http-equiv="refresh" content="5">`) || hookDeleted < 0 || hookRegistered < hookDeleted {
		t.Errorf("the live tail shows:\n%s", tail.body)
	}
	if denied := g.send(t, http.MethodGet, r.consoleURL(tenantID, "/events"), nil); denied.status != http.StatusForbidden || strings.Contains(denied.body, "webhook.") {
		t.Errorf("GET /events as grace = %d:\n%s", denied.status, denied.body)
	}

	// Signing out ends the console's session and the provider's.
	out := b.post(t, r.consoleURL(tenantID, "/signout"), url.Values{"csrf": {csrf}})
	if !strings.HasPrefix(out.url, r.issuer+"/signin") {
		t.Fatalf("signing out ends at %s, want the hosted sign-in page (no session left anywhere)", out.url)
	}
}

// ctOf returns the consistency token a console redirect carries.
func ctOf(tb testing.TB, u string) string {
	tb.Helper()
	p, err := url.Parse(u)
	if err != nil {
		tb.Fatal(err)
	}
	return p.Query().Get("ct")
}

var secretShown = regexp.MustCompile(`id="secret">(whsec_[^<]+)<`)

// consoleWebhooks runs ada's webhook pages: she registers an endpoint and
// sees its secret once, pauses and resumes it, rotates its secret,
// replays its events and deletes it; grace, without webhooks:read, sees
// none of it.
func consoleWebhooks(t *testing.T, r *rig, b, grace *httpBrowser, csrf string) {
	t.Helper()
	const hook = "https://hooks.example/acme"
	form := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/webhooks/new"), nil))
	idem := regexp.MustCompile(`name="idem" value="([^"]+)"`).FindStringSubmatch(form.body)
	if idem == nil {
		t.Fatalf("the registration form has no idempotency key:\n%s", form.body)
	}
	register := url.Values{"csrf": {csrf}, "idem": {idem[1]}, "url": {hook}, "event_types": {"user.registered, user.disabled"}, "description": {"CRM"}}
	shown := b.post(t, r.consoleURL(tenantID, "/webhooks/new"), register)
	m := secretShown.FindStringSubmatch(shown.body)
	if m == nil || !strings.Contains(shown.body, "shown on this page only") {
		t.Fatalf("registering a webhook shows:\n%s", shown.body)
	}
	secret := m[1]
	// The form sent again (the page reloaded) registers nothing more: the
	// same endpoint and secret.
	if again := b.post(t, r.consoleURL(tenantID, "/webhooks/new"), register); !strings.Contains(again.body, `id="secret">`+secret+`<`) {
		t.Errorf("the registration sent twice shows:\n%s", again.body)
	}
	next := regexp.MustCompile(`href="(/console/t/acme/webhooks/[^"?]+)\?([^"]+)" id="continue"`).FindStringSubmatch(shown.body)
	if next == nil {
		t.Fatalf("the secret's page links nowhere:\n%s", shown.body)
	}
	hookPath := r.p.Query + next[1]
	page := b.follow(t, b.send(t, http.MethodGet, hookPath+"?"+html.UnescapeString(next[2]), nil))
	if !strings.Contains(page.body, `id="webhook-url">`+hook+`<`) || !strings.Contains(page.body, `id="deliveries"`) ||
		!strings.Contains(page.body, `id="notice">Created.<`) || strings.Contains(page.body, secret) {
		t.Fatalf("the endpoint's page shows:\n%s", page.body)
	}
	list := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/webhooks"), nil))
	if strings.Count(list.body, ">"+hook+"<") != 1 || strings.Contains(list.body, secret) {
		t.Errorf("the webhooks page shows:\n%s", list.body)
	}

	paused := b.post(t, hookPath+"/pause", url.Values{"csrf": {csrf}})
	if !strings.Contains(paused.body, `id="webhook-state">paused<`) {
		t.Errorf("after pausing, the endpoint's page shows:\n%s", paused.body)
	}
	resumed := b.post(t, hookPath+"/resume", url.Values{"csrf": {csrf}})
	if strings.Contains(resumed.body, `id="webhook-state">paused<`) {
		t.Errorf("after resuming, the endpoint's page shows:\n%s", resumed.body)
	}
	rotated := b.post(t, hookPath+"/rotate", url.Values{"csrf": {csrf}})
	if m := secretShown.FindStringSubmatch(rotated.body); m == nil || m[1] == secret || !strings.Contains(rotated.body, "also signs until") {
		t.Errorf("rotating the secret shows:\n%s", rotated.body)
	}
	replayed := b.post(t, hookPath+"/replay", url.Values{"csrf": {csrf}, "from_sequence": {"1"}})
	if !strings.Contains(replayed.body, "Replay requested") {
		t.Errorf("after a replay, the endpoint's page shows:\n%s", replayed.body)
	}

	// grace may not read webhooks: no link, a 403 page naming nothing.
	if denied := grace.send(t, http.MethodGet, r.consoleURL(tenantID, "/webhooks"), nil); denied.status != http.StatusForbidden || strings.Contains(denied.body, hook) {
		t.Errorf("GET /webhooks as grace = %d:\n%s", denied.status, denied.body)
	}
	if denied := grace.send(t, http.MethodGet, hookPath, nil); denied.status != http.StatusForbidden || strings.Contains(denied.body, hook) {
		t.Errorf("GET an endpoint as grace = %d:\n%s", denied.status, denied.body)
	}

	if res := b.send(t, http.MethodPost, hookPath+"/delete", url.Values{"csrf": {csrf}, "confirm": {"https://hooks.example/"}}); res.status != http.StatusBadRequest {
		t.Errorf("delete with the wrong URL = %d", res.status)
	}
	gone := b.post(t, hookPath+"/delete", url.Values{"csrf": {csrf}, "confirm": {hook}})
	if !strings.Contains(gone.body, `id="notice">Deleted.<`) || strings.Contains(gone.body, hook) {
		t.Errorf("after deleting the endpoint the webhooks page shows:\n%s", gone.body)
	}
}

// consoleInviteAndErase: ada invites a person by e-mail from the users
// page, then erases them from their page once she types the username;
// forms without the session's CSRF token change nothing, and a malformed
// address or a wrong name is refused beside the form.
func consoleInviteAndErase(t *testing.T, r *rig, b *httpBrowser, csrf string) {
	t.Helper()
	const mira = "mira.invited@acme.example"
	usersPage := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/users"), nil))
	if !strings.Contains(usersPage.body, `id="invite-form"`) || !strings.Contains(usersPage.body, `action="/console/t/acme/users/invite"`) {
		t.Fatalf("the users page has no invitation form:\n%s", usersPage.body)
	}
	forged := b.send(t, http.MethodPost, r.consoleURL(tenantID, "/users/invite"), url.Values{"csrf": {"forged"}, "email": {mira}})
	if forged.status != http.StatusForbidden || !strings.Contains(forged.body, "nothing was done") {
		t.Errorf("an invitation with another CSRF token = %d:\n%s", forged.status, forged.body)
	}
	bad := b.send(t, http.MethodPost, r.consoleURL(tenantID, "/users/invite"), url.Values{"csrf": {csrf}, "email": {"not an address"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, `id="invite-form"`) || !strings.Contains(bad.body, `value="not an address"`) {
		t.Errorf("an invitation of a malformed address = %d:\n%s", bad.status, bad.body)
	}
	if list := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/users?q=mira"), nil)); len(userLink.FindAllStringSubmatch(list.body, -1)) != 0 {
		t.Fatalf("a refused invitation registered someone:\n%s", list.body)
	}
	invited := b.post(t, r.consoleURL(tenantID, "/users/invite"), url.Values{"csrf": {csrf}, "email": {mira}})
	if !strings.Contains(invited.body, `id="notice">Invited: the invitation is mailed to the address.<`) || !strings.Contains(invited.body, mira) {
		t.Fatalf("after the invitation the page shows:\n%s", invited.body)
	}
	miraPath := strings.TrimPrefix(strings.SplitN(invited.url, "?", 2)[0], r.p.Query)
	if !strings.Contains(invited.body, `id="erase-user"`) {
		t.Fatalf("ada's view of the invited user has no erasure:\n%s", invited.body)
	}

	for name, form := range map[string]url.Values{
		"no token":      {"confirm": {mira}},
		"another token": {"csrf": {"forged"}, "confirm": {mira}},
	} {
		if res := b.send(t, http.MethodPost, r.p.Query+miraPath+"/erase", form); res.status != http.StatusForbidden || !strings.Contains(res.body, "nothing was done") {
			t.Errorf("%s: erase = %d, want 403:\n%s", name, res.status, res.body)
		}
	}
	if res := b.send(t, http.MethodPost, r.p.Query+miraPath+"/erase", url.Values{"csrf": {csrf}, "confirm": {"mira"}}); res.status != http.StatusBadRequest ||
		!strings.Contains(res.body, "nothing was erased") {
		t.Errorf("erase with the wrong name = %d:\n%s", res.status, res.body)
	}
	if page := b.follow(t, b.send(t, http.MethodGet, r.p.Query+miraPath, nil)); !strings.Contains(page.body, mira) {
		t.Fatalf("a refused erasure changed the user:\n%s", page.body)
	}
	erased := b.post(t, r.p.Query+miraPath+"/erase", url.Values{"csrf": {csrf}, "confirm": {mira}})
	if !strings.Contains(erased.body, `id="notice">Erased: the person&#39;s data can no longer be read by anyone.<`) || strings.Contains(erased.body, mira) {
		t.Errorf("after erasing the users page shows:\n%s", erased.body)
	}
	if gone := b.send(t, http.MethodGet, r.p.Query+miraPath, nil); gone.status != http.StatusNotFound {
		t.Errorf("the erased user's page = %d", gone.status)
	}
}

// consoleSettingsAndMail: ada turns self sign-up and passwordless sign-in
// on from the settings page, then writes acme's own password reset mail,
// has a template without the link refused beside the form (what she typed
// kept), and puts the mail back to the platform's; forms without the
// session's CSRF token change nothing, and grace sees none of it.
func consoleSettingsAndMail(t *testing.T, r *rig, b, grace *httpBrowser, csrf string) {
	t.Helper()
	settings := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/settings"), nil))
	for _, want := range []string{`id="self-signup-state">off<`, `id="passwordless-state">off<`, `name="self_signup" type="checkbox"`} {
		if !strings.Contains(settings.body, want) {
			t.Fatalf("the settings page lacks %q:\n%s", want, settings.body)
		}
	}
	if forged := b.send(t, http.MethodPost, r.consoleURL(tenantID, "/settings"), url.Values{"csrf": {"forged"}, "self_signup": {"on"}}); forged.status != http.StatusForbidden ||
		!strings.Contains(forged.body, "nothing was done") {
		t.Errorf("the settings with another CSRF token = %d:\n%s", forged.status, forged.body)
	}
	if page := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/settings"), nil)); !strings.Contains(page.body, `id="self-signup-state">off<`) {
		t.Fatalf("a refused form changed the settings:\n%s", page.body)
	}
	saved := b.post(t, r.consoleURL(tenantID, "/settings"), url.Values{"csrf": {csrf}, "self_signup": {"on"}, "passwordless": {"on"}})
	if !strings.Contains(saved.body, `id="notice">Saved.<`) || !strings.Contains(saved.body, `id="self-signup-state">on<`) ||
		!strings.Contains(saved.body, `id="passwordless-state">on<`) || ctOf(t, saved.url) == "" {
		t.Fatalf("after turning both on the settings page (%s) shows:\n%s", saved.url, saved.body)
	}
	// The hosted sign-up page is open now.
	r.p.Do(t, http.MethodGet, r.p.Query+"/t/"+tenantID+"/signup", "", "", nil, http.StatusOK)
	off := b.post(t, r.consoleURL(tenantID, "/settings"), url.Values{"csrf": {csrf}, "passwordless": {"on"}})
	if !strings.Contains(off.body, `id="self-signup-state">off<`) || !strings.Contains(off.body, `id="passwordless-state">on<`) {
		t.Fatalf("after turning self sign-up off the settings page shows:\n%s", off.body)
	}
	r.p.Do(t, http.MethodGet, r.p.Query+"/t/"+tenantID+"/signup", "", "", nil, http.StatusNotFound)

	mailURL := r.consoleURL(tenantID, "/settings/mail-templates/reset_password")
	list := b.follow(t, b.send(t, http.MethodGet, r.consoleURL(tenantID, "/settings/mail-templates"), nil))
	if !strings.Contains(list.body, `id="mail-reset_password-state">The platform's default<`) {
		t.Fatalf("the mail templates page shows:\n%s", list.body)
	}
	for name, form := range map[string]url.Values{
		"save, no token":       {"subject": {"Acme: a new password"}},
		"save, another token":  {"csrf": {"forged"}, "subject": {"Acme: a new password"}},
		"reset, another token": {"csrf": {"forged"}},
	} {
		u := mailURL
		if strings.HasPrefix(name, "reset") {
			u += "/reset"
		}
		if res := b.send(t, http.MethodPost, u, form); res.status != http.StatusForbidden || !strings.Contains(res.body, "nothing was done") {
			t.Errorf("%s: = %d, want 403:\n%s", name, res.status, res.body)
		}
	}
	typed := "Hello,\r\nchoose a new password, there is no link here.\r\n"
	bad := b.send(t, http.MethodPost, mailURL, url.Values{"csrf": {csrf}, "subject": {"Acme: a new password"}, "text": {typed}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, `id="mail-template-form"`) || !strings.Contains(bad.body, "Link") ||
		!strings.Contains(bad.body, `value="Acme: a new password"`) || !strings.Contains(bad.body, "there is no link here.\n</textarea>") {
		t.Errorf("a template without the link = %d:\n%s", bad.status, bad.body)
	}
	if page := b.follow(t, b.send(t, http.MethodGet, mailURL, nil)); !strings.Contains(page.body, "use the platform's default templates") {
		t.Fatalf("a refused template changed the mail:\n%s", page.body)
	}
	own := b.post(t, mailURL, url.Values{"csrf": {csrf}, "subject": {"Acme: a new password"}, "text": {"Hello,\r\nopen {{.Link}} within {{.ValidFor}}.\r\n"}})
	if !strings.Contains(own.body, `id="notice">Saved.<`) || !strings.Contains(own.body, "own parts: subject, text") || ctOf(t, own.url) == "" ||
		!strings.Contains(own.body, "open {{.Link}} within {{.ValidFor}}.\n</textarea>") || !strings.Contains(own.body, `id="default-html"`) {
		t.Fatalf("after saving the mail the page (%s) shows:\n%s", own.url, own.body)
	}
	if denied := grace.send(t, http.MethodGet, r.consoleURL(tenantID, "/settings/mail-templates/reset_password"), nil); denied.status != http.StatusForbidden ||
		strings.Contains(denied.body, "Acme: a new password") {
		t.Errorf("GET the mail templates as grace = %d:\n%s", denied.status, denied.body)
	}
	reset := b.post(t, mailURL+"/reset", url.Values{"csrf": {csrf}})
	if !strings.Contains(reset.body, `id="notice">The platform&#39;s templates are used again.<`) || !strings.Contains(reset.body, "use the platform's default templates") {
		t.Errorf("after the reset the page shows:\n%s", reset.body)
	}
}
