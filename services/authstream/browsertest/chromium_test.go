package browsertest_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"github.com/chromedp/chromedp"
)

// debianChromium is where Debian's chromium package puts the browser.
const debianChromium = "/usr/bin/chromium"

// mustChromium returns the browser to drive: Debian's, or a chromium on
// PATH. Without one the test skips, or fails when CI is set: in CI a
// missing browser is a broken machine, never a silent skip.
func mustChromium(tb testing.TB) string {
	tb.Helper()
	if fi, err := os.Stat(debianChromium); err == nil && fi.Mode()&0o111 != 0 {
		return debianChromium
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	const msg = "chromium is not installed: run scripts/ensure-chromium (as root it installs Debian's chromium package)"
	if os.Getenv("CI") != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg + "; with CI set this is a failure")
	return ""
}

// tab is a tab of a headless Chromium of its own (a fresh profile), which
// ends with the test.
type tab struct {
	ctx context.Context
}

// newTab starts the browser at bin and opens a tab.
func newTab(tb testing.TB, bin string) *tab {
	tb.Helper()
	profile := tb.TempDir()
	out := &authstreamtest.Buffer{}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(out),
	)
	ctx, cancel := chromedp.NewContext(actx)
	// Cleanups run last first: the browser has stopped before its
	// profile folder is removed.
	tb.Cleanup(func() {
		cancel()
		cancelAlloc()
		if tb.Failed() {
			// Its last lines: headless Chromium without a desktop bus
			// writes many harmless complaints.
			o := out.String()
			tb.Logf("chromium's output (the end):\n%s", o[max(0, len(o)-4096):])
		}
	})
	// The first action starts the browser and binds its life to the
	// context it gets: one without a deadline, so that each step can
	// have its own.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	return &tab{ctx: ctx}
}

// do runs steps, each within stepLimit, and fails the test at the first
// error, naming what it was doing.
func (t *tab) do(tb testing.TB, what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, stepLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.Fatalf("%s: %v (at %s)", what, err, t.location(tb))
	}
}

// run returns the value of one action.
func run[T any](tb testing.TB, t *tab, what string, a chromedp.Action[T]) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, stepLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
	return v
}

// location returns the tab's URL, or why it has none.
func (t *tab) location(tb testing.TB) string {
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown: " + err.Error()
	}
	return u
}

// text returns the visible text of the element with id.
func (t *tab) text(tb testing.TB, id string) string {
	tb.Helper()
	return run(tb, t, "the text of #"+id, chromedp.Text(chromedp.ID(id)))
}

// artefactDir returns a folder for the journey's screenshots: in the
// system's temporary directory, kept after the test so that a person can
// look at them.
func artefactDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "authstream-browsertest-")
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

// shootSignIn saves a screenshot of the hosted sign-in page at each
// width, and checks that at 320 pixels the form fits: the page does not
// scroll sideways.
func shootSignIn(tb testing.TB, t *tab, dir string) {
	tb.Helper()
	for _, width := range []int64{320, 1280} {
		t.do(tb, fmt.Sprintf("a viewport %d px wide", width), chromedp.EmulateViewport(width, 720))
		png := run(tb, t, "screenshot", chromedp.FullScreenshot(100))
		path := filepath.Join(dir, fmt.Sprintf("signin-%dpx.png", width))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			tb.Fatal(err)
		}
		tb.Logf("screenshot of the sign-in page at %d px: %s", width, path)
		scroll := run(tb, t, "scrollWidth", chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
		if width == 320 && scroll > 320 {
			tb.Errorf("at 320 px the sign-in page is %d px wide: it scrolls sideways", scroll)
		}
		for _, sel := range []string{`input[name="username"]`, `input[name="password"]`, `button[type="submit"]`} {
			right := run(tb, t, "the right edge of "+sel, chromedp.Evaluate[float64](
				`document.querySelector('`+sel+`').getBoundingClientRect().right`))
			if right > float64(width) {
				tb.Errorf("at %d px, %s ends at %.0f px: outside the page", width, sel, right)
			}
		}
	}
	t.do(tb, "the default viewport", chromedp.ResetViewport())
}

// chromiumJourney signs grace in to the application and out again in
// headless Chromium: the application's sign-in link, the hosted page
// (photographed at 320 and 1280 px), the form filled and submitted, back
// at the application with her claims; prompt=none proves the provider's
// session; sign-out ends it at the provider and in the application.
func chromiumJourney(t *testing.T, r *rig, a app, bin string) {
	start := time.Now()
	ch := newTab(t, bin)
	t.Logf("chromium started in %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()

	ch.do(t, "the application's sign-in link",
		chromedp.Navigate(a.url+"/"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	if loc := ch.location(t); !strings.HasPrefix(loc, r.issuer+"/signin") {
		t.Fatalf("the sign-in link ends at %s, want the hosted page", loc)
	}
	shootSignIn(t, ch, artefactDir(t))

	ch.do(t, "signing in on the hosted page",
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), userName),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), userPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("idtoken-sub")))
	if loc := ch.location(t); loc != a.url+"/" {
		t.Fatalf("signing in ends at %s, want the application's home page", loc)
	}
	claims{
		sub: ch.text(t, "idtoken-sub"), iss: ch.text(t, "idtoken-iss"), aud: ch.text(t, "idtoken-aud"),
		username: ch.text(t, "userinfo-preferred_username"),
	}.check(t, r, a)

	// The provider has a session for this browser: prompt=none comes back
	// with a code (which the application refuses: it did not ask).
	ch.do(t, "prompt=none while signed in",
		chromedp.Navigate(r.authorizeURL(a, url.Values{"prompt": {"none"}})),
		chromedp.WaitVisible(chromedp.ID("error")))
	if q := silentAnswer(t, a, ch.location(t)); q.Get("code") == "" || q.Get("error") != "" {
		t.Fatalf("prompt=none while signed in ends at %s, want a code", ch.location(t))
	}

	ch.do(t, "signing out",
		chromedp.Navigate(a.url+"/"),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signed-out")))
	backFromSignOut(t, a, ch.location(t))
	ch.do(t, "prompt=none after signing out",
		chromedp.Navigate(r.authorizeURL(a, url.Values{"prompt": {"none"}})),
		chromedp.WaitVisible(chromedp.ID("error")))
	if q := silentAnswer(t, a, ch.location(t)); q.Get("error") != "login_required" || q.Has("code") {
		t.Fatalf("prompt=none after signing out ends at %s, want login_required", ch.location(t))
	}
	ch.do(t, "the application without a session",
		chromedp.Navigate(a.url+"/"),
		chromedp.WaitVisible(chromedp.ID("signin")))
	t.Logf("Chromium journey: %s", time.Since(start).Round(time.Millisecond))
}
