package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authn/passkeytest"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/postgres"
)

// mustPasskey registers a passkey of a's for user, as the command service
// would (the ceremony verified, user.passkey_registered appended), and
// returns the authenticator's credential.
func (p *provider) mustPasskey(tb testing.TB, a *passkeytest.Authenticator, tenant, userID string) *passkeytest.Credential {
	tb.Helper()
	rp, err := authn.NewPasskeys(p.base, "test")
	if err != nil {
		tb.Fatal(err)
	}
	u := authn.PasskeyUser{Handle: []byte(userID), Name: userID}
	opts, c, err := rp.BeginRegistration(u)
	if err != nil {
		tb.Fatal(err)
	}
	resp, cred, err := a.Create(opts)
	if err != nil {
		tb.Fatal(err)
	}
	pk, err := rp.FinishRegistration(u, c, resp)
	if err != nil {
		tb.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	e, err := events.New(events.TypeUserPasskeyRegistered, events.UserPasskeyRegistered{
		CredentialID: b64(pk.ID), PublicKey: b64(pk.PublicKey), SignCount: pk.SignCount, Transports: pk.Transports,
		Format: pk.Format, UserVerified: pk.UserVerified,
	}, events.Meta{Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: userID, OccurredAt: p.env.Now(),
		Actor: events.Actor{Tenant: tenant, Sub: userID}})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	var after eventstore.Position
	if st, ok, err := p.env.Store.Last(ctx, tenant, events.AggregateUser, userID); err != nil {
		tb.Fatal(err)
	} else if ok {
		after = st.Position()
	}
	if _, err := p.env.Store.Append(ctx, eventstore.Events{After: after, Events: []events.Envelope{e}}); err != nil {
		tb.Fatal(err)
	}
	return cred
}

// passkeyStep opens the hosted page of a new flow and signs in with the
// password: the page must offer a passkey.
func (r *rp) passkeyStep(tb testing.TB, username string) *flow {
	tb.Helper()
	f := &flow{}
	r.get(tb, f, r.authURL(f, url.Values{"prompt": {"login"}}))
	r.submit(tb, f, username, password)
	if f.callback != nil || !strings.Contains(f.page, `id="passkey-form"`) {
		tb.Fatalf("after the password: callback %v, page %d %s", f.callback, f.pageStatus, f.page)
	}
	return f
}

var passkeyFormRE = regexp.MustCompile(`(?s)<form method="post" action="signin" id="passkey-form">.*?</form>`)

// passkeyForm is the passkey form of f's page with its hidden inputs as
// they are, and the request options it carries.
func passkeyForm(tb testing.TB, f *flow) (url.Values, []byte) {
	tb.Helper()
	html := passkeyFormRE.FindString(f.page)
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(html, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	if form.Get("webauthn") == "" || form.Get("mfa") == "" || form.Get("options") == "" {
		tb.Fatalf("no passkey form on the page (%d): %s", f.pageStatus, f.page)
	}
	return form, []byte(form.Get("options"))
}

// submitPasskey posts form with assertion.
func (r *rp) submitPasskey(tb testing.TB, f *flow, form url.Values, assertion []byte) {
	tb.Helper()
	form.Set("assertion", string(assertion))
	res, err := r.browser.PostForm(r.p.issuer(r.tenant)+"/signin", form)
	if err != nil {
		tb.Fatal(err)
	}
	r.land(tb, f, res)
}

// TestHostedSignin_Passkey signs a user with a passkey in through the
// hosted page with a plain HTTP client and a software authenticator: the
// password, then the passkey form, whose page alone may run the page's
// script; the tokens say how (amr, acr); the response passes once.
func TestHostedSignin_Passkey(t *testing.T) {
	t.Parallel()
	p := mustProviderAt(t, true)
	r := mustBasicRP(t, p, "")
	authr := passkeytest.New(p.base)
	alice := p.mustUser(t, "acme", "alice-pk")
	cred := p.mustPasskey(t, authr, "acme", alice)

	// The password grant refuses a passkey user, naming MFA.
	a := mustPost(t, p.issuer("acme")+"/oauth/token", form, url.Values{"grant_type": {"password"}, "username": {"alice-pk"}, "password": {password}}.Encode())
	if desc, _ := a.body["error_description"].(string); a.status != 400 || !strings.Contains(desc, "MFA") {
		t.Fatalf("password grant of a passkey user = %d %v", a.status, a.body)
	}

	f := r.passkeyStep(t, "alice-pk")
	if strings.Contains(f.page, `name="code"`) || !strings.Contains(f.page, `<script src="signin/passkey.js"></script>`) {
		t.Fatalf("passkey page: %s", f.page)
	}
	pf, opts := passkeyForm(t, f)
	resp, err := authr.Get(opts, cred)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
	}
	if err := json.Unmarshal(opts, &o); err != nil || o.RPID != "localhost" || o.Challenge == "" {
		t.Fatalf("options %s", opts)
	}
	r.submitPasskey(t, f, pf, resp)
	if f.callback.Get("code") == "" {
		t.Fatalf("no code after the passkey: %d %s", f.pageStatus, f.page)
	}
	_, id := r.mustTokens(t, f)
	if c := mustClaims(t, id); !slices.Equal(c.AMR, []string{"pwd", "hwk", "user"}) || c.ACR != app.ACRMFA {
		t.Fatalf("id token amr %v acr %q", c.AMR, c.ACR)
	}
	typ, data := p.lastSignin(t, "acme", alice)
	raw := string(must(json.Marshal(data)))
	if typ != events.TypeSigninSucceeded || data["passkey_ceremony"] == nil || data["passkey_counts"] == nil || strings.Contains(raw, o.Challenge) {
		t.Fatalf("last sign-in event %s %v", typ, data)
	}

	// The same response again, in the same form or another sign-in's, is
	// refused; a new ceremony passes.
	r.submitPasskey(t, f, pf, resp)
	f = r.passkeyStep(t, "alice-pk")
	pf2, opts2 := passkeyForm(t, f)
	r.submitPasskey(t, f, pf, resp)
	if f.callback != nil || !strings.Contains(f.page, "That passkey could not be used.") {
		t.Fatalf("replayed response: %v %s", f.callback, f.page)
	}
	resp, err = authr.Get(opts2, cred)
	if err != nil {
		t.Fatal(err)
	}
	r.submitPasskey(t, f, pf2, resp)
	if f.callback.Get("code") == "" {
		t.Fatalf("a new ceremony refused: %s", f.page)
	}

	// A stale ceremony: of two sign-ins under way, the later one's passes
	// first; the earlier one's response, fresh and well signed, is then
	// refused.
	early := r.passkeyStep(t, "alice-pk")
	earlyForm, earlyOpts := passkeyForm(t, early)
	late := r.passkeyStep(t, "alice-pk")
	lateForm, lateOpts := passkeyForm(t, late)
	r.submitPasskey(t, late, lateForm, must(authr.Get(lateOpts, cred)))
	if late.callback.Get("code") == "" {
		t.Fatalf("the later ceremony refused: %s", late.page)
	}
	r.submitPasskey(t, early, earlyForm, must(authr.Get(earlyOpts, cred)))
	if early.callback != nil || !strings.Contains(early.page, "That passkey could not be used.") {
		t.Fatalf("a stale ceremony passed: %v", early.callback)
	}
	// And one past its five minutes, with its pending sign-in: the page
	// is gone (the error page), nothing passes.
	old := r.passkeyStep(t, "alice-pk")
	oldForm, oldOpts := passkeyForm(t, old)
	p.env.Advance(authn.PasskeyTimeout + time.Second)
	r.submitPasskey(t, old, oldForm, must(authr.Get(oldOpts, cred)))
	if old.callback != nil || old.pageStatus != http.StatusBadRequest {
		t.Fatalf("an expired ceremony: %d %v", old.pageStatus, old.callback)
	}
}

// TestHostedSignin_PasskeyNextToTOTP offers both factors to a user who
// holds both, and keeps the code form for a user without passkeys free of
// the script.
func TestHostedSignin_PasskeyNextToTOTP(t *testing.T) {
	t.Parallel()
	p := mustProviderAt(t, true)
	r := mustBasicRP(t, p, "")
	authr := passkeytest.New(p.base)
	both := p.mustUser(t, "acme", "both")
	secret, _ := p.mustFactors(t, "acme", both)
	p.mustPasskey(t, authr, "acme", both)
	f := r.passkeyStep(t, "both")
	if strings.Count(f.page, "<form") != 2 || !strings.Contains(f.page, `name="code"`) {
		t.Fatalf("page of both factors: %s", f.page)
	}
	// The code form is the first form, with hidden inputs of its own.
	codeOnly := &flow{page: f.page[:strings.Index(f.page, `id="passkey-form"`)], pageStatus: f.pageStatus}
	form := r.codeForm(t, codeOnly, p.code(t, secret, 0))
	if form.Has("webauthn") {
		t.Fatalf("the code form carries the ceremony: %v", form)
	}
	res, err := r.browser.PostForm(p.issuer("acme")+"/signin", form)
	if err != nil {
		t.Fatal(err)
	}
	r.land(t, f, res)
	if f.callback.Get("code") == "" {
		t.Fatalf("code refused next to a passkey: %s", f.page)
	}

	totp := p.mustUser(t, "acme", "totp-only")
	p.mustFactors(t, "acme", totp)
	res = r.rawPasswordStep(t, "totp-only")
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "script-src") {
		t.Fatalf("code form allows scripts: %s", csp)
	}
}

// rawPasswordStep is passwordStep answering the response itself.
func (r *rp) rawPasswordStep(tb testing.TB, username string) *http.Response {
	tb.Helper()
	f := &flow{}
	r.get(tb, f, r.authURL(f, url.Values{"prompt": {"login"}}))
	form := url.Values{"username": {username}, "password": {password}}
	for _, m := range hiddenInput.FindAllStringSubmatch(f.page, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	res, err := r.browser.PostForm(r.p.issuer(r.tenant)+"/signin", form)
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
	return res
}

// TestHostedSignin_badPasskeys refuses every bad passkey response with the
// one answer, records each as a failure (reason wrong-passkey) that counts
// toward the lock, and lets nothing through.
func TestHostedSignin_badPasskeys(t *testing.T) {
	t.Parallel()
	p := mustProviderAt(t, true)
	r := mustBasicRP(t, p, "")
	authr := passkeytest.New(p.base)
	evil := passkeytest.New("http://evil.localhost")
	mallory := p.mustUser(t, "acme", "mallory")
	malloryKey := p.mustPasskey(t, authr, "acme", mallory)
	outsider := p.mustUser(t, "globex", "outsider")
	outsiderKey := p.mustPasskey(t, authr, "globex", outsider)
	type in struct {
		opts      []byte
		challenge string
		cred      *passkeytest.Credential
		form      url.Values
	}
	tests := []struct {
		name    string
		respond func(t *testing.T, x in) []byte
	}{
		{"another user's passkey", func(t *testing.T, x in) []byte { return must(authr.Get(x.opts, malloryKey)) }},
		{"another tenant's passkey", func(t *testing.T, x in) []byte { return must(authr.Get(x.opts, outsiderKey)) }},
		{"another origin", func(t *testing.T, x in) []byte {
			return must(authr.Assert(x.cred, "localhost", evil.ClientData("webauthn.get", x.challenge)))
		}},
		{"another relying party id", func(t *testing.T, x in) []byte {
			return must(authr.Assert(x.cred, "example.com", authr.ClientData("webauthn.get", x.challenge)))
		}},
		{"another ceremony's challenge", func(t *testing.T, x in) []byte {
			return must(authr.Assert(x.cred, "localhost", authr.ClientData("webauthn.get", "c3RhbGUtY2hhbGxlbmdlLW9mLWFub3RoZXItY2VyZW1vbnk")))
		}},
		{"a counter going back", func(t *testing.T, x in) []byte {
			x.cred.Counter = 0 // a clone of the authenticator, as registered
			return must(authr.Get(x.opts, x.cred))
		}},
		{"malformed json", func(t *testing.T, x in) []byte { return []byte(`{"id":`) }},
		{"malformed base64", func(t *testing.T, x in) []byte {
			return []byte(strings.Replace(string(must(authr.Get(x.opts, x.cred))), `"signature":"`, `"signature":"*!`, 1))
		}},
		{"empty", func(t *testing.T, x in) []byte { return nil }},
		{"a forged ceremony", func(t *testing.T, x in) []byte {
			x.form.Set("webauthn", "A"+x.form.Get("webauthn")[1:])
			return must(authr.Get(x.opts, x.cred))
		}},
	}
	var pages []string
	for i, tt := range tests {
		username := fmt.Sprintf("pk-user-%d", i)
		id := p.mustUser(t, "acme", username)
		cred := p.mustPasskey(t, authr, "acme", id)
		if tt.name == "a counter going back" {
			// One use first, so that the sign-in holds a counter.
			f := r.passkeyStep(t, username)
			pf, opts := passkeyForm(t, f)
			cred.Counter = 5
			r.submitPasskey(t, f, pf, must(authr.Get(opts, cred)))
			if f.callback.Get("code") == "" {
				t.Fatalf("%s: the first use failed: %s", tt.name, f.page)
			}
		}
		f := r.passkeyStep(t, username)
		pf, opts := passkeyForm(t, f)
		var o struct {
			Challenge string `json:"challenge"`
		}
		_ = json.Unmarshal(opts, &o)
		resp := tt.respond(t, in{opts: opts, challenge: o.Challenge, cred: cred, form: pf})
		r.submitPasskey(t, f, pf, resp)
		if f.callback != nil || f.pageStatus != http.StatusOK || !strings.Contains(f.page, "That passkey could not be used.") {
			t.Fatalf("%s: %d %v %s", tt.name, f.pageStatus, f.callback, f.page)
		}
		typ, data := p.lastSignin(t, "acme", id)
		if typ != events.TypeSigninFailed || data["reason"] != "wrong-passkey" {
			t.Fatalf("%s: last sign-in event %s %v", tt.name, typ, data)
		}
		pages = append(pages, passkeyValues.ReplaceAllString(sealedValue.ReplaceAllString(mfaValue.ReplaceAllString(f.page, "PENDING"), "SEALED"), "CEREMONY"))
		if pages[i] != pages[0] {
			t.Fatalf("%s: the answer differs:\n%s\n---\n%s", tt.name, pages[i], pages[0])
		}
	}

	// Bad responses lock the account as wrong passwords do: after five,
	// a good one is refused too.
	id := p.mustUser(t, "acme", "pk-locked")
	cred := p.mustPasskey(t, authr, "acme", id)
	f := r.passkeyStep(t, "pk-locked")
	for range 5 {
		pf, _ := passkeyForm(t, f)
		r.submitPasskey(t, f, pf, []byte(`{}`))
	}
	pf, opts := passkeyForm(t, f)
	r.submitPasskey(t, f, pf, must(authr.Get(opts, cred)))
	if f.callback != nil || !strings.Contains(f.page, "That passkey could not be used.") {
		t.Fatalf("a locked account passed with a good passkey: %v", f.callback)
	}
	if typ, _ := p.lastSignin(t, "acme", id); typ != events.TypeSigninLocked {
		t.Fatalf("last sign-in event %s, want the lock", typ)
	}
}

var passkeyValues = regexp.MustCompile(`name="(webauthn|options)" value="[^"]*"`)

// TestHostedPasskey_parallelReplay submits one passkey response in 20
// sign-ins at once, spread over two App instances on one stream: exactly
// one passes.
func TestHostedPasskey_parallelReplay(t *testing.T) {
	t.Parallel()
	p := mustProviderAt(t, true, app.WithLoginLimits(app.LoginLimits{Window: time.Minute, PerAccount: 1000}))
	r := mustBasicRP(t, p, "")
	second, err := app.New(p.env.Store, postgres.New(p.pool), p.oidc.Keys(p.env.Keys), p.env.Hasher, p.env.Keyring, p.base,
		append(p.oidc.Options(), app.WithClock(p.env.Now))...)
	if err != nil {
		t.Fatal(err)
	}
	routers := []http.Handler{httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: p.app}),
		httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: second})}
	authr := passkeytest.New(p.base)
	id := p.mustUser(t, "acme", "pk-racer")
	cred := p.mustPasskey(t, authr, "acme", id)
	// One ceremony, answered once; its form submitted 20 times.
	f := r.passkeyStep(t, "pk-racer")
	pf, opts := passkeyForm(t, f)
	pf.Set("assertion", string(must(authr.Get(opts, cred))))
	body := pf.Encode()
	signin, _ := url.Parse(p.issuer("acme") + "/signin")
	cookies := r.browser.Jar.Cookies(signin)
	const n = 20
	var wg sync.WaitGroup
	status := make([]int, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			req := mustRequest(t, http.MethodPost, signin.String(), body, "")
			for _, c := range cookies {
				req.AddCookie(c)
			}
			<-start
			rec := newRecorder()
			routers[i%2].ServeHTTP(rec, req)
			status[i] = rec.Code
			if rec.Code == http.StatusOK && !strings.Contains(rec.Body.String(), "That passkey could not be used.") {
				t.Errorf("submission %d: %s", i, rec.Body)
			}
		})
	}
	close(start)
	wg.Wait()
	count := func(code int) int {
		return len(slices.DeleteFunc(slices.Clone(status), func(s int) bool { return s != code }))
	}
	if passed := count(http.StatusSeeOther); passed != 1 || count(http.StatusOK) != n-1 {
		t.Fatalf("%d of %d submissions of one passkey response passed: %v", passed, n, status)
	}
}

// TestPasskeyScript serves the page's script, and the IP-addressed
// provider offers no passkey.
func TestPasskeyScript(t *testing.T) {
	t.Parallel()
	p := mustProviderAt(t, true)
	res, err := http.Get(p.issuer("acme") + "/signin/passkey.js")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("script: %d %v", res.StatusCode, res.Header)
	}

	ip := mustProvider(t)
	r := mustBasicRP(t, ip, "")
	id := ip.mustUser(t, "acme", "ip-user")
	ip.mustFactors(t, "acme", id)
	f := r.passwordStep(t, "ip-user")
	if strings.Contains(f.page, "passkey") {
		t.Fatalf("an IP-addressed provider offers a passkey: %s", f.page)
	}
}

// TestHostedSignin_Passwordless offers a sign-in with a passkey alone
// only where the tenant allows it: off by default (no passkey form, a
// passkey form posted anyway refused), on with the setting: the passkey
// names its user, must verify them, and passes once; another tenant's
// passkey and a response without user verification are refused.
func TestHostedSignin_Passwordless(t *testing.T) {
	t.Parallel()
	p := mustProviderAt(t, true)
	r := mustBasicRP(t, p, "")
	authr := passkeytest.New(p.base)
	dana := p.mustUser(t, "acme", "dana")
	cred := p.mustPasskey(t, authr, "acme", dana)
	outsider := p.mustUser(t, "globex", "outsider")
	outsiderKey := p.mustPasskey(t, authr, "globex", outsider)

	// Off by default: the sign-in page has one form and runs no script.
	f := &flow{}
	r.get(t, f, r.authURL(f, url.Values{"prompt": {"login"}}))
	if strings.Contains(f.page, "passkey") || strings.Count(f.page, "<form") != 1 {
		t.Fatalf("passwordless offered by default: %s", f.page)
	}
	// A passkey form posted anyway (with a ceremony of a tenant that had
	// it on) is refused.
	on := true
	p.oidc.Settings.Set("acme", events.TenantSettings{Passwordless: &on})
	start := func() (*flow, url.Values, []byte) {
		t.Helper()
		f := &flow{}
		r.get(t, f, r.authURL(f, url.Values{"prompt": {"login"}}))
		if !strings.Contains(f.page, `id="passkey-form"`) || strings.Count(f.page, "<form") != 2 {
			t.Fatalf("no passwordless form: %s", f.page)
		}
		html := passkeyFormRE.FindString(f.page)
		form := url.Values{}
		for _, m := range hiddenInput.FindAllStringSubmatch(html, -1) {
			form.Set(m[1], htmlUnescape(m[2]))
		}
		if form.Has("mfa") || form.Get("webauthn") == "" {
			t.Fatalf("passwordless form %v", form)
		}
		return f, form, []byte(form.Get("options"))
	}
	f, form, opts := start()
	p.oidc.Settings.Set("acme", events.TenantSettings{})
	r.submitPasskey(t, f, form, must(authr.Get(opts, cred)))
	if f.callback != nil || !strings.Contains(f.page, "That passkey could not be used.") {
		t.Fatalf("passwordless passed while off: %v %s", f.callback, f.page)
	}

	p.oidc.Settings.Set("acme", events.TenantSettings{Passwordless: &on})
	for name, respond := range map[string]func(opts []byte) []byte{
		"another tenant's passkey": func(opts []byte) []byte { return must(authr.Get(opts, outsiderKey)) },
		"no user verification":     func(opts []byte) []byte { return must(passkeytest.NoUV(authr).Get(opts, cred)) },
		"malformed":                func([]byte) []byte { return []byte(`{"id":`) },
		"a user handle of no user": func(opts []byte) []byte {
			return []byte(strings.Replace(string(must(authr.Get(opts, cred))), `"userHandle":"`, `"userHandle":"AA`, 1))
		},
	} {
		f, form, opts := start()
		r.submitPasskey(t, f, form, respond(opts))
		if f.callback != nil || !strings.Contains(f.page, "That passkey could not be used.") || !strings.Contains(f.page, `name="password"`) {
			t.Fatalf("%s: %v %s", name, f.callback, f.page)
		}
	}

	f, form, opts = start()
	resp := must(authr.Get(opts, cred))
	r.submitPasskey(t, f, form, resp)
	if f.callback.Get("code") == "" {
		t.Fatalf("passwordless refused: %d %s", f.pageStatus, f.page)
	}
	_, id := r.mustTokens(t, f)
	if c := mustClaims(t, id); !slices.Equal(c.AMR, []string{"hwk", "user"}) || c.ACR != app.ACRMFA || c.Sub != dana {
		t.Fatalf("id token sub %q amr %v acr %q", c.Sub, c.AMR, c.ACR)
	}
	// The same response again is refused.
	f2, _, _ := start()
	r.submitPasskey(t, f2, form, resp)
	if f2.callback != nil {
		t.Fatalf("a passwordless response passed twice")
	}
}

// TestMFAPolicy_passkeyCounts: a passkey meets the tenant's policy as a
// TOTP factor does: under required, and for the holders of the policy's
// permissions, the user with a passkey alone is asked for it, never sent
// to an administrator.
func TestMFAPolicy_passkeyCounts(t *testing.T) {
	t.Parallel()
	p := mustProviderAt(t, true)
	r := mustBasicRP(t, p, "")
	authr := passkeytest.New(p.base)
	boss := p.mustUser(t, "acme", "boss-pk", "admin")
	p.mustPasskey(t, authr, "acme", boss)
	p.mustUser(t, "acme", "boss-none", "admin")
	for _, pol := range []*events.TenantMFA{
		{Policy: events.MFARequired},
		{Policy: events.MFARequiredForPermissions, Permissions: []string{"users:write"}},
	} {
		p.oidc.Settings.Set("acme", events.TenantSettings{MFA: pol})
		f := r.passkeyStep(t, "boss-pk")
		if strings.Contains(f.page, "requires a second factor") {
			t.Fatalf("policy %+v: a passkey holder is sent to an administrator", pol)
		}
		f = &flow{}
		r.get(t, f, r.authURL(f, url.Values{"prompt": {"login"}}))
		r.submit(t, f, "boss-none", password)
		if !strings.Contains(f.page, "requires a second factor") {
			t.Fatalf("policy %+v: a user without a factor: %s", pol, f.page)
		}
	}
}
