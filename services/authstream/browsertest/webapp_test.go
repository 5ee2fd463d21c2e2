package browsertest_test

import "testing"

// TestWebapp_SignInAndOut runs the example application's sign-in journey
// against the platform twice, side by side: in headless Chromium with the
// application as a public client, and with a plain HTTP client with the
// application as a confidential one.
func TestWebapp_SignInAndOut(t *testing.T) {
	r := mustRig(t)
	t.Run("chromium", func(t *testing.T) {
		t.Parallel()
		bin := mustChromium(t)
		chromiumJourney(t, r, r.mustApp(t, false), bin)
	})
	t.Run("http client", func(t *testing.T) {
		t.Parallel()
		httpJourney(t, r, r.mustApp(t, true))
	})
}
