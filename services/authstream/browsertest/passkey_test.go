package browsertest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// TestPasskey_Chromium registers a passkey and signs in with it in
// headless Chromium, with the DevTools virtual authenticator standing in
// for a platform authenticator (resident keys, user verification, presence
// granted at once): the browser answers the command API's creation
// options, then signs grace in to the example application with her
// password and the hosted page's passkey button, whose script runs the
// ceremony; the ID token says hwk and user. With passwordless sign-in
// allowed, the sign-in page's passkey button alone signs her in.
func TestPasskey_Chromium(t *testing.T) {
	bin := mustChromium(t)
	r := mustRigAt(t, "localhost")
	a := r.mustApp(t, false)
	origin := strings.TrimSuffix(r.issuer, "/t/"+tenantID)
	ch := newTab(t, bin)
	ch.do(t, "a virtual authenticator", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true,
			},
		})
		return err
	}))

	// Registration: grace's own token asks the command API for the
	// options; the browser, on a page of the platform's origin, answers
	// them; the command API verifies the answer.
	own := r.p.Login(t, tenantID, userName, userPassword, "").AccessToken
	path := "/t/" + tenantID + "/users/" + r.userID + "/mfa/webauthn"
	begun := r.p.DoCommand(t, http.MethodPost, path, own, nil, http.StatusCreated)
	var creation struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	begun.Decode(t, &creation)
	ch.do(t, "a page of the platform's origin", chromedp.Navigate(origin+"/t/"+tenantID+"/.well-known/openid-configuration"))
	credential := run(t, ch, "navigator.credentials.create", chromedp.Evaluate[string](`(async () => {
		const options = PublicKeyCredential.parseCreationOptionsFromJSON(`+string(creation.PublicKey)+`);
		const credential = await navigator.credentials.create({publicKey: options});
		return JSON.stringify(credential.toJSON());
	})()`, chromedp.EvalAwaitPromise))
	registered := r.p.DoCommand(t, http.MethodPost, path+"/verify", own,
		map[string]any{"credential": json.RawMessage(credential), "name": "Chromium"}, http.StatusCreated)
	if registered.Str("credential_id") == "" {
		t.Fatalf("registration answered %s", registered.Body)
	}
	// The hosted page reads grace's factors from the log: the next
	// sign-in asks for one.
	start := time.Now()
	ch.do(t, "the application's sign-in link",
		chromedp.Navigate(a.url+"/"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	ch.do(t, "the password on the hosted page",
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), userName),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), userPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("passkey-button")))
	if strings.Contains(run(t, ch, "the factor page", chromedp.OuterHTML(chromedp.CSS("main"))), `name="code"`) {
		t.Error("the factor page of a passkey-only user asks for a code")
	}
	ch.do(t, "the passkey button",
		chromedp.Click(chromedp.ID("passkey-button")),
		chromedp.WaitVisible(chromedp.ID("idtoken-sub")))
	if loc := ch.location(t); loc != a.url+"/" {
		t.Fatalf("the passkey sign-in ends at %s, want the application's home page", loc)
	}
	if sub := ch.text(t, "idtoken-sub"); sub != r.userID {
		t.Fatalf("idtoken-sub = %q, want %q", sub, r.userID)
	}
	if amr := ch.text(t, "idtoken-amr"); !strings.Contains(amr, "hwk") || !strings.Contains(amr, "user") || !strings.Contains(amr, "pwd") {
		t.Fatalf("idtoken-amr = %q, want pwd, hwk and user", amr)
	}
	t.Logf("passkey sign-in in Chromium: %s", time.Since(start).Round(time.Millisecond))

	// Passwordless: the tenant allows it, grace signs out, and the sign-in
	// page's passkey button alone signs her in again (the virtual
	// authenticator's passkey is discoverable).
	on := r.p.DoCommand(t, http.MethodPatch, "/t/"+tenantID+"/settings", r.admin, map[string]any{"passwordless": true}, http.StatusOK)
	r.p.Do(t, http.MethodGet, r.p.Query+"/t/"+tenantID+"/me", r.admin, on.Token(), nil, http.StatusOK)
	ch.do(t, "signing out",
		chromedp.Navigate(a.url+"/"),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signed-out")))
	ch.do(t, "the passwordless sign-in",
		chromedp.Navigate(a.url+"/"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("passkey-button")),
		chromedp.Click(chromedp.ID("passkey-button")),
		chromedp.WaitVisible(chromedp.ID("idtoken-sub")))
	if sub := ch.text(t, "idtoken-sub"); sub != r.userID {
		t.Fatalf("passwordless idtoken-sub = %q, want %q", sub, r.userID)
	}
	if amr := ch.text(t, "idtoken-amr"); !strings.Contains(amr, "hwk") || !strings.Contains(amr, "user") || strings.Contains(amr, "pwd") {
		t.Fatalf("passwordless idtoken-amr = %q, want hwk and user without pwd", amr)
	}
}
