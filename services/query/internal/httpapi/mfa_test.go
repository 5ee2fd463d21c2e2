package httpapi_test

import (
	"context"
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
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/postgres"
)

// mustFactors gives user a confirmed TOTP factor and a set of recovery
// codes, appended to the log as the command service would after deciding,
// and returns the seed and the codes.
func (p *provider) mustFactors(tb testing.TB, tenant, userID string) (string, []string) {
	tb.Helper()
	key, err := authn.NewTOTPKey(tenant, userID)
	if err != nil {
		tb.Fatal(err)
	}
	seed, err := p.env.Keyring.Seal([]byte(key.Secret), events.MFASecretAAD(tenant, userID, events.FactorTOTP))
	if err != nil {
		tb.Fatal(err)
	}
	codes, hashes := authn.NewRecoveryCodes()
	// Confirmed with a code of the previous step, which never passes at
	// sign-in.
	step := p.env.Now().Unix()/authn.TOTPPeriod - 1
	var envs []events.Envelope
	for _, d := range []any{
		events.UserMFAEnrolled{Factor: events.FactorTOTP, Secret: &seed, ConfirmedStep: step},
		events.UserMFAEnrolled{Factor: events.FactorRecoveryCodes, CodeHashes: hashes},
	} {
		e, err := events.New(events.TypeUserMFAEnrolled, d, events.Meta{Tenant: tenant, Aggregate: events.AggregateUser,
			AggregateID: userID, OccurredAt: p.env.Now(), Actor: events.Actor{Tenant: tenant, Sub: userID}})
		if err != nil {
			tb.Fatal(err)
		}
		envs = append(envs, e)
	}
	if _, err := p.env.Store.Append(context.Background(), eventstore.Events{Events: envs}); err != nil {
		tb.Fatal(err)
	}
	return key.Secret, codes
}

// code returns the TOTP code of secret at the provider's clock moved by
// steps.
func (p *provider) code(tb testing.TB, secret string, steps int) string {
	tb.Helper()
	c, err := authn.TOTPCode(secret, p.env.Now().Add(time.Duration(steps)*authn.TOTPPeriod*time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// passwordStep opens the hosted page of a new flow and signs in with the
// password: the page must be the code form.
func (r *rp) passwordStep(tb testing.TB, username string) *flow {
	tb.Helper()
	f := &flow{}
	r.get(tb, f, r.authURL(f, url.Values{"prompt": {"login"}}))
	r.submit(tb, f, username, password)
	if f.callback != nil || !strings.Contains(f.page, `name="code"`) {
		tb.Fatalf("after the password: callback %v, page %d %s", f.callback, f.pageStatus, f.page)
	}
	return f
}

// submitCode posts the code form of f's page with code.
func (r *rp) submitCode(tb testing.TB, f *flow, code string) {
	tb.Helper()
	res, err := r.browser.PostForm(r.p.issuer(r.tenant)+"/signin", r.codeForm(tb, f, code))
	if err != nil {
		tb.Fatal(err)
	}
	r.land(tb, f, res)
}

// codeForm is the code form of f's page filled with code: its hidden
// inputs as they are.
func (r *rp) codeForm(tb testing.TB, f *flow, code string) url.Values {
	tb.Helper()
	form := url.Values{"code": {code}}
	for _, m := range hiddenInput.FindAllStringSubmatch(f.page, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	if form.Get("mfa") == "" {
		tb.Fatalf("no code form on the page (%d): %s", f.pageStatus, f.page)
	}
	return form
}

// lastSignin returns the type and data of the last event of user's
// sign-in aggregate.
func (p *provider) lastSignin(tb testing.TB, tenant, userID string) (string, map[string]any) {
	tb.Helper()
	st, ok, err := p.env.Store.Last(context.Background(), tenant, events.AggregateSignin, userID)
	if err != nil || !ok {
		tb.Fatalf("last sign-in event: %v %v", ok, err)
	}
	var data map[string]any
	_ = json.Unmarshal(st.Envelope.Data, &data)
	return st.Envelope.Type, data
}

// TestHostedSignin_TOTP signs a user with a TOTP factor in through the
// hosted page with a plain HTTP client: the password, then the code form
// of the pinned shape, a code computed here; the tokens say how (amr,
// acr); the password grant and /login refuse the user, naming MFA; a code
// passes once.
func TestHostedSignin_TOTP(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	alice := p.mustUser(t, "acme", "alice-mfa")
	secret, codes := p.mustFactors(t, "acme", alice)

	for _, path := range []string{"/oauth/token", "/login"} {
		a := mustPost(t, p.issuer("acme")+path, form, url.Values{"grant_type": {"password"}, "username": {"alice-mfa"}, "password": {password}}.Encode())
		if desc, _ := a.body["error_description"].(string); a.status != 400 || a.body["error"] != "invalid_grant" || !strings.Contains(desc, "MFA") {
			t.Fatalf("%s of an MFA user = %d %v", path, a.status, a.body)
		}
	}

	f := r.passwordStep(t, "alice-mfa")
	checks := map[string]bool{
		"one form":      strings.Count(f.page, "<form") == 1 && strings.Contains(f.page, `<form method="post"`),
		"code input":    regexp.MustCompile(`<input id="code" name="code" type="text" autocomplete="one-time-code"`).MatchString(f.page),
		"label":         strings.Contains(f.page, `<label for="code">`),
		"hidden inputs": len(hiddenInput.FindAllString(f.page, -1)) == 3,
		"no password":   !strings.Contains(f.page, `name="password"`),
		"no secret":     !strings.Contains(f.page, secret),
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("code form, %s: no\n%s", name, f.page)
		}
	}
	code := p.code(t, secret, 0)
	r.submitCode(t, f, code)
	if f.callback.Get("code") == "" {
		t.Fatalf("no code after the TOTP code: %d %s", f.pageStatus, f.page)
	}
	tok, id := r.mustTokens(t, f)
	if c := mustClaims(t, id); !slices.Equal(c.AMR, []string{"pwd", "otp"}) || c.ACR != app.ACRMFA {
		t.Fatalf("id token amr %v acr %q", c.AMR, c.ACR)
	}
	at := mustSegment(t, strings.Split(tok.AccessToken, ".")[1])
	if amr, _ := json.Marshal(at["amr"]); string(amr) != `["pwd","otp"]` || at["acr"] != app.ACRMFA {
		t.Fatalf("access token amr %s acr %v", amr, at["acr"])
	}
	typ, data := p.lastSignin(t, "acme", alice)
	if typ != events.TypeSigninSucceeded || data["totp_step"] == nil || strings.Contains(string(must(json.Marshal(data))), code) {
		t.Fatalf("last sign-in event %s %v", typ, data)
	}

	// The same code in another sign-in is refused; a recovery code passes
	// once.
	f = r.passwordStep(t, "alice-mfa")
	r.submitCode(t, f, code)
	if f.callback != nil || !strings.Contains(f.page, "Incorrect code.") || len(hiddenInput.FindAllString(f.page, -1)) != 3 {
		t.Fatalf("replayed code: %v %s", f.callback, f.page)
	}
	r.submitCode(t, f, strings.ToUpper(codes[3]))
	if f.callback.Get("code") == "" {
		t.Fatalf("recovery code refused: %s", f.page)
	}
	f = r.passwordStep(t, "alice-mfa")
	r.submitCode(t, f, codes[3])
	if f.callback != nil || !strings.Contains(f.page, "Incorrect code.") {
		t.Fatalf("used recovery code passed: %v", f.callback)
	}
	// A user without a factor still signs in with the password alone.
	f = r.mustSignIn(t, "alice", url.Values{"prompt": {"login"}})
	if _, id := r.mustTokens(t, f); !slices.Equal(mustClaims(t, id).AMR, []string{"pwd"}) || mustClaims(t, id).ACR != app.ACRPassword {
		t.Fatalf("password-only sign-in claims %+v", mustClaims(t, id))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestHostedSignin_badCodes refuses every bad code with the one answer,
// records each as a failure (reason wrong-code) that counts toward the
// lock, and lets nothing through: malformed codes, codes of the step
// before the previous one or after the next one, a replayed code, the
// confirming code of the enrolment, an unknown recovery code.
func TestHostedSignin_badCodes(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	tests := []struct {
		name string
		code func(secret string) string
		used bool // the code passes once first
	}{
		{"empty", func(string) string { return "" }, false},
		{"five digits", func(s string) string { return p.code(t, s, 0)[:5] }, false},
		{"seven digits", func(s string) string { return p.code(t, s, 0) + "0" }, false},
		{"letters", func(string) string { return "12ab56" }, false},
		{"long", func(string) string { return strings.Repeat("9", 200) }, false},
		{"previous but one", func(s string) string { return p.code(t, s, -2) }, false},
		{"next but one", func(s string) string { return p.code(t, s, 2) }, false},
		{"enrolment's confirming step", func(s string) string { return p.code(t, s, -1) }, false},
		{"unknown recovery code", func(string) string { return "aaaa-bbbb-cccc-dddd" }, false},
		{"replayed", func(s string) string { return p.code(t, s, 0) }, true},
		{"replayed previous step after the current", func(s string) string { return p.code(t, s, -1) }, true},
	}
	var pages []string
	for i, tt := range tests {
		username := fmt.Sprintf("user-%d", i)
		id := p.mustUser(t, "acme", username)
		secret, _ := p.mustFactors(t, "acme", id)
		if tt.used {
			f := r.passwordStep(t, username)
			r.submitCode(t, f, p.code(t, secret, 0))
			if f.callback.Get("code") == "" {
				t.Fatalf("%s: the first use failed: %s", tt.name, f.page)
			}
		}
		f := r.passwordStep(t, username)
		r.submitCode(t, f, tt.code(secret))
		if f.callback != nil || f.pageStatus != http.StatusOK || !strings.Contains(f.page, "Incorrect code.") {
			t.Fatalf("%s: %d %v %s", tt.name, f.pageStatus, f.callback, f.page)
		}
		typ, data := p.lastSignin(t, "acme", id)
		if typ != events.TypeSigninFailed || data["reason"] != "wrong-code" || data["failures"] != float64(1) {
			t.Fatalf("%s: last sign-in event %s %v", tt.name, typ, data)
		}
		pages = append(pages, sealedValue.ReplaceAllString(mfaValue.ReplaceAllString(f.page, "PENDING"), "SEALED"))
		if pages[i] != pages[0] {
			t.Fatalf("%s: the answer differs:\n%s\n---\n%s", tt.name, pages[i], pages[0])
		}
	}

	// Wrong codes lock the account as wrong passwords do: after five, the
	// right code is refused too.
	id := p.mustUser(t, "acme", "locked")
	secret, _ := p.mustFactors(t, "acme", id)
	f := r.passwordStep(t, "locked")
	for range 5 {
		r.submitCode(t, f, "000000")
	}
	r.submitCode(t, f, p.code(t, secret, 0))
	if f.callback != nil || !strings.Contains(f.page, "Incorrect code.") {
		t.Fatalf("a locked account passed with the right code: %v", f.callback)
	}
	if typ, _ := p.lastSignin(t, "acme", id); typ != events.TypeSigninLocked {
		t.Fatalf("last sign-in event %s, want the lock", typ)
	}
}

var mfaValue = regexp.MustCompile(`name="mfa" value="[^"]*"`)

// TestHostedFactor_parallelReplay submits one valid code in 20 sign-ins at
// once, spread over two App instances on one stream: exactly one passes.
func TestHostedFactor_parallelReplay(t *testing.T) {
	t.Parallel()
	p := mustProvider(t, app.WithLoginLimits(app.LoginLimits{Window: time.Minute, PerAccount: 1000}))
	r := mustBasicRP(t, p, "")
	second, err := app.New(p.env.Store, postgres.New(p.pool), p.oidc.Keys(p.env.Keys), p.env.Hasher, p.env.Keyring, p.base,
		append(p.oidc.Options(), app.WithClock(p.env.Now))...)
	if err != nil {
		t.Fatal(err)
	}
	routers := []http.Handler{httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: p.app}),
		httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: second})}
	id := p.mustUser(t, "acme", "racer")
	secret, _ := p.mustFactors(t, "acme", id)
	const n = 20
	forms := make([]string, n)
	for i := range n {
		forms[i] = r.codeForm(t, r.passwordStep(t, "racer"), "").Encode()
	}
	code := p.code(t, secret, 0)
	signin, _ := url.Parse(p.issuer("acme") + "/signin")
	cookies := r.browser.Jar.Cookies(signin)
	var wg sync.WaitGroup
	status := make([]int, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			req := mustRequest(t, http.MethodPost, signin.String(), strings.Replace(forms[i], "code=", "code="+code, 1), "")
			for _, c := range cookies {
				req.AddCookie(c)
			}
			<-start
			rec := newRecorder()
			routers[i%2].ServeHTTP(rec, req)
			status[i] = rec.Code
			if rec.Code == http.StatusOK && !strings.Contains(rec.Body.String(), "Incorrect code.") {
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
		t.Fatalf("%d of %d submissions of one code passed: %v", passed, n, status)
	}
}

// TestMFAPolicy_matrix holds the tenant's MFA policies to what they
// promise, for users with and without a factor and with and without the
// policy's permission: who signs in with the password alone, who is asked
// for a code, and who is refused until a factor is enrolled, on the
// hosted page and at the token endpoint.
func TestMFAPolicy_matrix(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	type user struct {
		name   string
		factor bool
	}
	users := []user{{"plain", false}, {"plain-mfa", true}, {"boss", false}, {"boss-mfa", true}}
	for _, u := range users {
		var roles []string
		if strings.HasPrefix(u.name, "boss") {
			roles = []string{"admin"} // holds users:write
		}
		id := p.mustUser(t, "acme", u.name, roles...)
		if u.factor {
			p.mustFactors(t, "acme", id)
		}
	}
	const (
		in    = "password alone"
		code  = "code asked"
		enrol = "refused until enrolled"
	)
	tests := []struct {
		policy *events.TenantMFA
		want   [4]string // per user, in the order of users
	}{
		{&events.TenantMFA{Policy: events.MFAOff}, [4]string{in, in, in, in}},
		{nil, [4]string{in, code, in, code}},
		{&events.TenantMFA{Policy: events.MFAOptional}, [4]string{in, code, in, code}},
		{&events.TenantMFA{Policy: events.MFARequired}, [4]string{enrol, code, enrol, code}},
		{&events.TenantMFA{Policy: events.MFARequiredForPermissions, Permissions: []string{"users:write"}}, [4]string{in, code, enrol, code}},
		{&events.TenantMFA{Policy: events.MFARequiredForPermissions, Permissions: []string{"invoices:approve", "roles:write"}}, [4]string{in, code, enrol, code}},
	}
	for _, tt := range tests {
		p.oidc.Settings.Set("acme", events.TenantSettings{MFA: tt.policy})
		for i, u := range users {
			label := fmt.Sprintf("policy %+v, %s", tt.policy, u.name)
			f := &flow{}
			r.get(t, f, r.authURL(f, url.Values{"prompt": {"login"}}))
			r.submit(t, f, u.name, password)
			var got string
			switch {
			case f.callback.Get("code") != "":
				got = in
			case strings.Contains(f.page, `name="code"`):
				got = code
			case strings.Contains(f.page, "requires a second factor"):
				got = enrol
			default:
				t.Fatalf("%s: %d %s", label, f.pageStatus, f.page)
			}
			if got != tt.want[i] {
				t.Errorf("%s: hosted page %s, want %s", label, got, tt.want[i])
			}
			a := mustPost(t, p.issuer("acme")+"/oauth/token", form, url.Values{"grant_type": {"password"}, "username": {u.name}, "password": {password}}.Encode())
			desc, _ := a.body["error_description"].(string)
			switch tokens := a.status == http.StatusOK; {
			case tt.want[i] == in && !tokens:
				t.Errorf("%s: password grant %d %v, want tokens", label, a.status, a.body)
			case tt.want[i] != in && (a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" || !strings.Contains(desc, "MFA")):
				t.Errorf("%s: password grant %d %v, want invalid_grant naming MFA", label, a.status, a.body)
			}
		}
	}
}

// TestHostedFactor_tamperedPending refuses a code form whose sealed
// pending sign-in was altered or belongs to another sign-in request: the
// error page, nothing recorded, and the sign-in goes on no further.
func TestHostedFactor_tamperedPending(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	id := p.mustUser(t, "acme", "tess")
	secret, _ := p.mustFactors(t, "acme", id)
	first, second := r.passwordStep(t, "tess"), r.passwordStep(t, "tess")
	other := r.codeForm(t, second, "")
	for name, change := range map[string]func(url.Values){
		"altered":           func(v url.Values) { v.Set("mfa", "A"+v.Get("mfa")[1:]) },
		"another request's": func(v url.Values) { v.Set("mfa", other.Get("mfa")) },
		"missing":           func(v url.Values) { v.Set("mfa", "") },
	} {
		form := r.codeForm(t, first, p.code(t, secret, 0))
		change(form)
		res, err := r.browser.PostForm(p.issuer("acme")+"/signin", form)
		if err != nil {
			t.Fatal(err)
		}
		f := &flow{}
		r.land(t, f, res)
		if f.callback != nil || f.pageStatus != http.StatusBadRequest || strings.Contains(f.page, `name="code"`) {
			t.Fatalf("%s pending sign-in: %d %v %s", name, f.pageStatus, f.callback, f.page)
		}
	}
	if _, ok, err := p.env.Store.Last(context.Background(), "acme", events.AggregateSignin, id); ok || err != nil {
		t.Fatalf("a sign-in event was recorded (%v)", err)
	}
}
