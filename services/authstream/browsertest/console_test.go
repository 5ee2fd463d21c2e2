package browsertest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The console's journey in headless Chromium: ada, the admin of acme,
// signs in through the hosted page, defines a role (previewing what its
// wildcard covers), registers a user, gives them the role, finds them in
// the list, opens their timeline and steps back to before the assignment,
// disables them and signs out; then the platform's admin opens the
// platform's pages. Each page is photographed at 1280 and 390 pixels, and
// none may log an error or break the Content-Security-Policy.

// Widths of the screenshots: a desktop and a phone.
var consoleWidths = []int64{1280, 390}

// watcher collects what the pages of a tab report: console errors,
// uncaught exceptions, failed loads and Content-Security-Policy
// violations, which Chromium reports as log entries, and which a script
// DevTools adds to every document (outside the page's CSP) reports as
// console errors too.
type watcher struct {
	mu       sync.Mutex
	problems []string
}

// cspProbe turns every CSP violation of a document into a console error.
const cspProbe = `document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});`

func watch(tb testing.TB, t *tab) *watcher {
	tb.Helper()
	w := &watcher{}
	if err := chromedp.Listen(t.ctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *log.EventEntryAdded:
			// The browser's own request for /favicon.ico on the hosted
			// sign-in page (which names no icon) is not a page's.
			if (ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning) && !strings.HasSuffix(ev.Entry.URL, "/favicon.ico") {
				p = fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				p = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		}
		if p != "" {
			w.mu.Lock()
			w.problems = append(w.problems, p)
			w.mu.Unlock()
		}
	}); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.ctx, stepLimit)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		tb.Fatal(err)
	}
	return w
}

// take returns the problems reported since the last call.
func (w *watcher) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.problems
	w.problems = nil
	return p
}

// shooter photographs the console's pages into a folder.
type shooter struct {
	dir string
	t   *tab
	w   *watcher
}

// shoot checks that the page on screen reported no problem, then saves
// its screenshots at each width, checking at each, and at 320 px, that it
// does not scroll sideways.
func (s *shooter) shoot(tb testing.TB, name string) {
	tb.Helper()
	// Let the page settle: late reports (a refused stylesheet) arrive
	// after the load.
	time.Sleep(100 * time.Millisecond)
	if p := s.w.take(); len(p) > 0 {
		tb.Errorf("the %s page (%s) reported problems:\n%s", name, s.t.location(tb), strings.Join(p, "\n"))
	}
	for _, width := range consoleWidths {
		s.t.do(tb, fmt.Sprintf("a viewport %d px wide", width), chromedp.EmulateViewport(width, 800))
		png := run(tb, s.t, "screenshot", chromedp.FullScreenshot(100))
		path := filepath.Join(s.dir, fmt.Sprintf("console-%s-%dpx.png", name, width))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			tb.Fatal(err)
		}
		scroll := run(tb, s.t, "scrollWidth", chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
		if scroll > width {
			tb.Errorf("at %d px the %s page is %d px wide: it scrolls sideways", width, name, scroll)
		}
	}
	// The narrowest width a page must read at: checked, not photographed.
	s.t.do(tb, "a viewport 320 px wide", chromedp.EmulateViewport(320, 800))
	if scroll := run(tb, s.t, "scrollWidth", chromedp.Evaluate[int64](`document.documentElement.scrollWidth`)); scroll > 320 {
		tb.Errorf("at 320 px the %s page is %d px wide: it scrolls sideways", name, scroll)
	}
	s.t.do(tb, "the default viewport", chromedp.ResetViewport())
}

// TestConsole_Chromium is the console's journey in headless Chromium.
func TestConsole_Chromium(t *testing.T) {
	bin := mustChromium(t)
	r := mustRig(t)
	ch := newTab(t, bin)
	s := &shooter{dir: artefactDir(t), t: ch, w: watch(t, ch)}
	t.Logf("screenshots of the console: %s", s.dir)
	base := r.consoleURL(tenantID, "")

	ch.do(t, "the console's front page", chromedp.Navigate(r.p.Query+"/console/"), chromedp.WaitVisible(chromedp.ID("tenant-id")))
	s.shoot(t, "picker")
	ch.do(t, "choosing acme",
		chromedp.SendKeys(chromedp.ID("tenant-id"), tenantID),
		chromedp.Submit(chromedp.ID("tenant-id")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	if loc := ch.location(t); !strings.HasPrefix(loc, r.issuer+"/signin") {
		t.Fatalf("choosing acme ends at %s, want its hosted sign-in page", loc)
	}
	s.shoot(t, "signin")
	ch.do(t, "signing in on the hosted page",
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), adminName),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), adminPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("whoami")))
	if who := ch.text(t, "whoami"); who != adminName {
		t.Fatalf("signed in as %q, want %s", who, adminName)
	}
	s.shoot(t, "home")

	// A role: its wildcard previewed, then saved with what it needs.
	ch.do(t, "the new role form", chromedp.Navigate(base+"/roles/new"), chromedp.WaitVisible(chromedp.ID("role-name")))
	ch.do(t, "previewing users:*",
		chromedp.SendKeys(chromedp.ID("role-name"), "support"),
		chromedp.SetValue(chromedp.ID("permissions"), "users:*\naudit:read"),
		chromedp.Click(chromedp.ID("preview")),
		chromedp.WaitVisible(chromedp.ID("preview-result")))
	if got := ch.text(t, "preview-result"); !strings.Contains(got, "users:write") || !strings.Contains(got, "users:read") {
		t.Fatalf("the preview of users:* shows %q", got)
	}
	s.shoot(t, "role-preview")
	ch.do(t, "saving the role",
		chromedp.SetValue(chromedp.ID("permissions"), "users:read\naudit:read"),
		chromedp.Click(chromedp.ID("save-role")),
		chromedp.WaitVisible(chromedp.ID("notice")))
	ch.do(t, "the roles", chromedp.Navigate(base+"/roles"), chromedp.WaitVisible(chromedp.ID("roles")))
	if got := ch.text(t, "roles"); !strings.Contains(got, "support") {
		t.Fatalf("the roles list shows %q", got)
	}
	s.shoot(t, "roles")

	// A user, then the role given to them.
	ch.do(t, "the new user form", chromedp.Navigate(base+"/users/new"), chromedp.WaitVisible(chromedp.ID("username")))
	s.shoot(t, "user-new")
	ch.do(t, "creating linus",
		chromedp.SendKeys(chromedp.ID("username"), "linus"),
		chromedp.SendKeys(chromedp.ID("password"), "Linus-Passphrase 77a1-acme"),
		chromedp.Click(chromedp.ID("create-user")),
		chromedp.WaitVisible(chromedp.ID("user-status")))
	ch.do(t, "giving linus the role",
		chromedp.SetValue(chromedp.ID("role"), "support"),
		chromedp.Click(chromedp.ID("assign")),
		// The user's page already shows a notice (created): wait for
		// the role's own button instead.
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Remove role support"]`)))
	if got := ch.text(t, "user-roles"); got != "support" {
		t.Fatalf("after the assignment the user's roles are %q", got)
	}
	s.shoot(t, "user")
	userPage := ch.location(t)

	ch.do(t, "the users", chromedp.Navigate(base+"/users"), chromedp.WaitVisible(chromedp.ID("users")))
	if got := ch.text(t, "users"); !strings.Contains(got, "linus") || !strings.Contains(got, adminName) {
		t.Fatalf("the users list shows %q", got)
	}
	s.shoot(t, "users")

	// The timeline: the last event is the assignment; one step back,
	// linus holds no role.
	ch.do(t, "the timeline", chromedp.Navigate(strings.SplitN(userPage, "?", 2)[0]), chromedp.Click(chromedp.ID("timeline")),
		chromedp.WaitVisible(chromedp.ID("chain")))
	if got := ch.text(t, "chain"); !strings.Contains(got, "verifies") {
		t.Fatalf("the chain check says %q", got)
	}
	if got := ch.text(t, "state-roles"); got != "support" {
		t.Fatalf("the latest state's roles are %q", got)
	}
	s.shoot(t, "timeline")
	ch.do(t, "a step back", chromedp.Click(chromedp.ID("step-back")), chromedp.WaitVisible(chromedp.ID("step-forward")))
	if got := ch.text(t, "state-roles"); got != "none" {
		t.Fatalf("before the assignment the roles are %q, want none", got)
	}
	if got := ch.text(t, "state-status"); got != "active" {
		t.Fatalf("before the assignment the status is %q", got)
	}
	s.shoot(t, "timeline-before")

	ch.do(t, "disabling linus", chromedp.Navigate(strings.SplitN(userPage, "?", 2)[0]), chromedp.WaitVisible(chromedp.ID("disable")),
		chromedp.Click(chromedp.ID("disable")), chromedp.WaitVisible(chromedp.ID("enable")))
	if got := ch.text(t, "user-status"); got != "disabled" {
		t.Fatalf("after disabling, the status is %q", got)
	}
	s.shoot(t, "user-disabled")

	ch.do(t, "the clients", chromedp.Navigate(base+"/clients"), chromedp.WaitVisible(chromedp.ID("clients")))
	s.shoot(t, "clients")
	ch.do(t, "the console's client", chromedp.Navigate(base+"/clients/console"), chromedp.WaitVisible(chromedp.ID("client")))
	s.shoot(t, "client")
	ch.do(t, "the settings", chromedp.Navigate(base+"/settings"), chromedp.WaitVisible(chromedp.ID("settings-form")))
	s.shoot(t, "settings")
	ch.do(t, "the mail templates", chromedp.Navigate(base+"/settings/mail-templates"), chromedp.WaitVisible(chromedp.ID("mail-templates")))
	s.shoot(t, "mail-templates")
	ch.do(t, "a mail's templates", chromedp.Navigate(base+"/settings/mail-templates/reset_password"), chromedp.WaitVisible(chromedp.ID("mail-template-form")))
	s.shoot(t, "mail-template")

	// A webhook: registered, its secret shown once, its page and the list.
	ch.do(t, "the new webhook form", chromedp.Navigate(base+"/webhooks/new"), chromedp.WaitVisible(chromedp.ID("url")))
	ch.do(t, "registering a webhook",
		chromedp.SendKeys(chromedp.ID("url"), "https://hooks.example/acme"),
		chromedp.SetValue(chromedp.ID("event-types"), "user.*, role.*"),
		chromedp.SendKeys(chromedp.ID("description"), "CRM sync"),
		chromedp.Click(chromedp.ID("register-webhook")),
		chromedp.WaitVisible(chromedp.ID("secret")))
	if got := ch.text(t, "secret"); !strings.HasPrefix(got, "whsec_") {
		t.Fatalf("the registration shows the secret %q", got)
	}
	s.shoot(t, "webhook-secret")
	ch.do(t, "the endpoint", chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("deliveries")))
	s.shoot(t, "webhook")
	ch.do(t, "the webhooks", chromedp.Navigate(base+"/webhooks"), chromedp.WaitVisible(chromedp.ID("webhooks")))
	s.shoot(t, "webhooks")

	// The live tail, as it reloads itself, then held still for its
	// photographs.
	ch.do(t, "the live events", chromedp.Navigate(base+"/events"), chromedp.WaitVisible(chromedp.ID("events")))
	if got := ch.text(t, "events"); !strings.Contains(got, "webhook.registered") {
		t.Fatalf("the live tail shows %q", got)
	}
	ch.do(t, "the live events held still", chromedp.Click(chromedp.ID("tail-pause")), chromedp.WaitVisible(chromedp.ID("tail-resume")))
	s.shoot(t, "events")

	ch.do(t, "signing out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	if loc := ch.location(t); !strings.HasPrefix(loc, r.issuer+"/signin") {
		t.Fatalf("signing out ends at %s, want acme's sign-in page", loc)
	}
	_ = s.w.take()

	// The platform's admin: tenants and projections.
	pbase := r.consoleURL("platform", "")
	ch.do(t, "the platform's sign-in", chromedp.Navigate(pbase+"/tenants"), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), authstreamtest.AdminUsername),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), authstreamtest.AdminPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("tenant-form")))
	s.shoot(t, "tenants")
	ch.do(t, "the projections", chromedp.Navigate(pbase+"/projections"), chromedp.WaitVisible(chromedp.ID("projections")))
	s.shoot(t, "projections")

	// The watcher itself: a style the CSP refuses is reported.
	run(t, ch, "an inline style", chromedp.Evaluate[bool](`document.head.insertAdjacentHTML("beforeend", "<style>body{color:red}</style>"); true`))
	time.Sleep(200 * time.Millisecond)
	if p := s.w.take(); len(p) == 0 {
		t.Error("an inline style broke the CSP and nothing reported it: the check of the pages proves nothing")
	}
}
