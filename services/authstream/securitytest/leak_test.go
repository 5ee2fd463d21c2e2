package securitytest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authn/passkeytest"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// Passwords of the leak scenario. Each is distinct, so that a finding
// names the password that leaked.
const (
	adaPassword      = "Ada-Acme-Passphrase 11"
	beaPassword      = "Bea-Beta-Passphrase 22"
	carolPassword    = "Carol-Initial-Secret 33"
	carolNewPassword = "Carol-Changed-Secret 44"
	davePassword     = "Dave-Initial-Secret 55"
	daveResetPass    = "Dave-Reset-By-Admin 66"
	erinPassword     = "Erin-Locked-Secret 77"
	wrongGuess1      = "Wrong-Guess-Alpha 01"
	wrongGuess2      = "Wrong-Guess-Beta 02"
	wrongCurrent     = "Wrong-Current-Secret 03"
	unknownUserPass  = "Unknown-User-Secret 04"
	malformedPass    = "Malformed-Body-Secret 05"
	typedWrongPass   = "Typed-Wrong-Secret 06"
	repeatedPass     = "Repeated-Param-Secret 07"
	jsonAtTokenPass  = "Json-At-Token-Secret 08"
	badEncodingPass  = "Bad-Encoding-Secret 09"
	queryStringPass  = "Query-String-Secret 10"
	shortPass        = "Sh0rt-7"
	ivyPassword      = "Ivy-Imported-Secret 12"
	ginaPassword     = "Gina-Second-Factor 14"
	hankPassword     = "Hank-Passkey-Holder 15"
	// passAsUsername is a password typed into the username field, shaped
	// like a valid username: a common slip that must not reach the logs.
	passAsUsername = "Pass.Word-In-Username-88"
)

// tooLongPassword is over bcrypt's 72 bytes: refused, and never stored.
var tooLongPassword = strings.Repeat("Too-Long-Secret-", 5)

// TestSecrets_NeverLeak runs an account's whole life through the
// platform with debug logs on: tenants, registrations, logins of every
// kind, refreshes and a reuse, wrong and locked-out passwords, a password
// change and an admin reset, disable, enable, delete, revocation and bad
// requests of every kind. Then it gathers everything an operator, a
// subscriber or a client can see (every log line, every event of both
// streams with its headers, every revision of the signing-key bucket, the
// metrics of the three services, every answer and its headers) and looks
// for every secret the scenario used or the platform made: passwords,
// bcrypt hashes (opened from the sealed credentials with the test's KEK),
// refresh tokens and access-token signatures, the KEK itself and the
// signing keys' private parts (opened from the bucket). A token may appear
// only in the answer that issued it; nothing else may appear anywhere.
// Key rotation has no API yet, so it is not part of the scenario.
func TestSecrets_NeverLeak(t *testing.T) {
	// Not parallel: each platform holds about twenty PostgreSQL connections.
	p := mustPlatform(t)
	cmd := func(bearer, method, path string, body any, want int) answer {
		t.Helper()
		return p.Must(t, request{Method: method, URL: p.Command + path, Bearer: bearer, Body: body}, want)
	}
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	ctOf := func(e answer) string { return e.Token() }

	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: adaPassword})
	beta := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "beta", Admin: "bea", Password: beaPassword})
	// bea logs in through the JSON login too.
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/beta/login", Consistency: beta.Token, Body: map[string]any{"username": "bea", "password": beaPassword}}, http.StatusOK)

	ada := acme.Admin.AccessToken
	cmd(ada, http.MethodPut, "/t/acme/roles/billing", map[string]any{"permissions": []string{"invoices:*"}, "description": "billing"}, http.StatusOK)
	carol := cmd(ada, http.MethodPost, "/t/acme/users", map[string]any{"username": "carol", "password": carolPassword, "roles": []string{"billing"}}, http.StatusCreated)
	dave := cmd(ada, http.MethodPost, "/t/acme/users", map[string]any{"username": "dave", "password": davePassword}, http.StatusCreated)
	erin := cmd(ada, http.MethodPost, "/t/acme/users", map[string]any{"username": "erin", "password": erinPassword}, http.StatusCreated)
	carolID, daveID, erinID := carol.Str("id"), dave.Str("id"), erin.Str("id")
	ct := ctOf(erin)

	// Logins of every kind, refreshes, and the reuse of a rotated token
	// (which revokes its family).
	c1 := p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/login", Consistency: ct, Body: form("username", "carol", "password", carolPassword)}, http.StatusOK)
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/login", Consistency: ct, Body: map[string]any{"username": "dave", "password": davePassword}}, http.StatusOK)
	daveTokens := p.Login(t, "acme", "DAVE", davePassword, ct)
	r1 := p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "refresh_token", "refresh_token", c1.Str("refresh_token"))}, http.StatusOK)
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "refresh_token", "refresh_token", r1.Str("refresh_token"))}, http.StatusOK)
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "refresh_token", "refresh_token", c1.Str("refresh_token"))}, http.StatusBadRequest)
	carolTokens := p.Login(t, "acme", "carol", carolPassword, ct)

	// Wrong passwords, an unknown user, and a lockout.
	for _, pw := range []string{wrongGuess1, wrongGuess2} {
		p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "password", "username", "dave", "password", pw)}, http.StatusBadRequest)
	}
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "password", "username", "nobody", "password", unknownUserPass)}, http.StatusBadRequest)
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/login", Body: map[string]any{"username": passAsUsername, "password": passAsUsername}}, http.StatusBadRequest)
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "password", "username", "carol "+carolPassword, "password", "x")}, http.StatusBadRequest)
	for range 6 {
		p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/login", Body: map[string]any{"username": "erin", "password": wrongGuess1}}, http.StatusBadRequest)
	}
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/login", Body: map[string]any{"username": "erin", "password": erinPassword}}, http.StatusBadRequest)

	// Password changes: a wrong current password, the user's own change,
	// an admin's reset; then the new passwords work.
	cmd(carolTokens.AccessToken, http.MethodPut, "/t/acme/users/"+carolID+"/password", map[string]any{"password": carolNewPassword, "current_password": wrongCurrent}, http.StatusForbidden)
	changed := cmd(carolTokens.AccessToken, http.MethodPut, "/t/acme/users/"+carolID+"/password", map[string]any{"password": carolNewPassword, "current_password": carolPassword}, http.StatusNoContent)
	reset := cmd(ada, http.MethodPut, "/t/acme/users/"+daveID+"/password", map[string]any{"password": daveResetPass}, http.StatusNoContent)
	p.Login(t, "acme", "carol", carolNewPassword, ctOf(changed))
	dave2 := p.Login(t, "acme", "dave", daveResetPass, ctOf(reset))
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "refresh_token", "refresh_token", daveTokens.RefreshToken)}, http.StatusBadRequest)

	// Disable, a refused refresh and access token, enable, revoke, delete.
	disabled := cmd(ada, http.MethodPost, "/t/acme/users/"+daveID+"/disable", map[string]any{"reason": "leave"}, http.StatusNoContent)
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Consistency: ctOf(disabled), Body: form("grant_type", "refresh_token", "refresh_token", dave2.RefreshToken)}, http.StatusBadRequest)
	p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: dave2.AccessToken, Consistency: ctOf(disabled)}, http.StatusUnauthorized)
	enabled := cmd(ada, http.MethodPost, "/t/acme/users/"+daveID+"/enable", nil, http.StatusNoContent)
	dave3 := p.Login(t, "acme", "dave", daveResetPass, ctOf(enabled))
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/revoke", Body: form("token", dave3.RefreshToken, "token_type_hint", "refresh_token")}, http.StatusOK)
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "refresh_token", "refresh_token", dave3.RefreshToken)}, http.StatusBadRequest)
	cmd(ada, http.MethodPut, "/t/acme/users/"+erinID+"/roles/billing", nil, http.StatusNoContent)
	cmd(ada, http.MethodDelete, "/t/acme/users/"+erinID+"/roles/billing", nil, http.StatusNoContent)
	deleted := cmd(ada, http.MethodDelete, "/t/acme/users/"+erinID, nil, http.StatusNoContent)
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/check", Bearer: ada, Consistency: ctOf(deleted), Body: map[string]any{"user_id": carolID, "permission": "invoices:pay"}}, http.StatusOK)
	p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/acme/users", Bearer: ada}, http.StatusOK)
	p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/acme/.well-known/jwks.json"}, http.StatusOK)

	// Bad requests of every kind, most of them carrying a password.
	bad := []struct {
		r    request
		want int
	}{
		{request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", Body: map[string]any{"username": "frank", "password": tooLongPassword}}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", Body: map[string]any{"username": "frank", "password": shortPass}}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", ContentType: "application/json", Raw: `{"username":"frank","password":"` + malformedPass + `"`}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", ContentType: "application/json", Raw: `{"username":"frank","password":["` + typedWrongPass + `"]}`}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", ContentType: "application/json", Raw: `{"username":"frank","passwd":"` + typedWrongPass + `"}`}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", ContentType: "text/plain", Raw: `{"username":"frank","password":"` + malformedPass + `"}`}, http.StatusUnsupportedMediaType},
		{request{Method: http.MethodPut, URL: p.Command + "/t/acme/users/" + carolID + "/password", Body: map[string]any{"password": tooLongPassword, "current_password": carolNewPassword}}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Raw: "grant_type=password&username=carol&password=" + url.QueryEscape(repeatedPass) + "&password=" + url.QueryEscape(repeatedPass), ContentType: "application/x-www-form-urlencoded"}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: map[string]any{"grant_type": "password", "username": "carol", "password": jsonAtTokenPass}}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Raw: "grant_type=password&username=carol&password=%zz" + url.QueryEscape(badEncodingPass), ContentType: "application/x-www-form-urlencoded"}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "client_credentials", "client_secret", badEncodingPass)}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "password", "username", "carol", "password", tooLongPassword)}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/acme/login", ContentType: "application/json", Raw: `{"username":"carol","password":"` + malformedPass}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: form("grant_type", "refresh_token", "refresh_token", carolTokens.RefreshToken+"x")}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/beta/oauth/token", Body: form("grant_type", "refresh_token", "refresh_token", dave2.RefreshToken)}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/beta/oauth/revoke", Body: form("token", carolTokens.RefreshToken)}, http.StatusOK},
		{request{Method: http.MethodGet, URL: p.Query + "/t/acme/users?password=" + url.QueryEscape(queryStringPass), Bearer: ada}, http.StatusOK},
		{request{Method: http.MethodGet, URL: p.Query + "/t/beta/me", Bearer: ada}, http.StatusUnauthorized},
		{request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: beta.Admin.AccessToken}, http.StatusUnauthorized},
		{request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: ada[:len(ada)-4] + "AAAA"}, http.StatusUnauthorized},
		{request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", Bearer: ada + ".extra", Body: map[string]any{"username": "frank", "password": carolPassword}}, http.StatusUnauthorized},
		{request{Method: http.MethodPost, URL: p.Command + "/tenants", Bearer: ada, Body: map[string]any{"id": "gamma", "name": "G", "admin": map[string]any{"username": "g", "password": carolPassword}}}, http.StatusUnauthorized},
		{request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: ada, Consistency: "not-a-token"}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Query + "/t/acme/check", Bearer: ada, Body: map[string]any{"user_id": carolID, "permission": "not a permission"}}, http.StatusBadRequest},
		{request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", Bearer: ada, Body: map[string]any{"username": "carol", "password": carolPassword}}, http.StatusConflict},
	}
	for _, b := range bad {
		if b.r.Bearer == "" && strings.HasPrefix(b.r.URL, p.Command+"/") {
			b.r.Bearer = ada
		}
		p.Must(t, b.r, b.want)
	}
	// Key rotations (to other algorithms, so that every key type's private
	// part is looked for), logins signed by the new keys, and the audit
	// reads, which show events as stored.
	optional := func(r request, want int) *answer {
		t.Helper()
		e := p.Exchange(t, r)
		if e.Status == http.StatusNotFound && e.Str("reason") == "route-not-found" {
			t.Logf("%s %s is not served: not exercised", r.Method, r.URL)
			return nil
		}
		if e.Status != want {
			t.Fatalf("%s %s = %d %s, want %d", r.Method, r.URL, e.Status, e.Body, want)
		}
		return &e
	}
	if rot := optional(request{Method: http.MethodPost, URL: p.Command + "/t/acme/keys/rotate", Bearer: ada, Body: map[string]any{"alg": "ES256"}}, http.StatusOK); rot != nil {
		optional(request{Method: http.MethodPost, URL: p.Command + "/t/beta/keys/rotate", Bearer: beta.Admin.AccessToken, Body: map[string]any{"alg": "RS256"}}, http.StatusOK)
		p.Login(t, "acme", "carol", carolNewPassword, ctOf(*rot))
		p.Login(t, "beta", "bea", beaPassword, "")
	}
	for _, path := range []string{"/t/acme/users/" + carolID + "/history", "/t/acme/users/" + daveID + "/signins",
		"/t/acme/audit/events?format=jsonl", "/t/acme/audit/holders?permission=invoices:pay"} {
		optional(request{Method: http.MethodGet, URL: p.Query + path, Bearer: ada}, http.StatusOK)
	}

	// OpenID Connect: a confidential client and its rotated secret, a
	// service account's token, and the authorization code flow of a public
	// client through the hosted page (PKCE verifier, code, browser session
	// and CSRF cookies).
	reg := cmd(ada, http.MethodPost, "/t/acme/clients", map[string]any{"name": "billing service", "type": "confidential",
		"grant_types": []string{"client_credentials"}, "scopes": []string{"openid"}}, http.StatusCreated)
	svc := reg.Str("client_id")
	rotated := cmd(ada, http.MethodPost, "/t/acme/clients/"+svc+"/secret", map[string]any{"grace_seconds": 60}, http.StatusOK)
	for _, secret := range []string{reg.Str("client_secret"), rotated.Str("client_secret")} {
		p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Consistency: ctOf(rotated),
			Body: form("grant_type", "client_credentials", "client_id", svc, "client_secret", secret)}, http.StatusOK)
	}
	verifier, flow := mustCodeFlow(t, p, ada, carolNewPassword)

	// A bulk import from another provider: ivy with an argon2id hash, who
	// signs in (which rehashes it to bcrypt) and signs in again, and a
	// line whose malformed hash is reported without it.
	ivyHash := argon2idHash(t, ivyPassword)
	malformedHash := "$argon2id$v=19$m=64,t=1$c29tZXNhbHQ$Malformed-Hash-Secret-13"
	imp := p.Must(t, request{Method: http.MethodPost, URL: p.Command + "/t/acme/users:import", Bearer: ada, ContentType: "application/x-ndjson",
		Raw: `{"username": "ivy", "password_hash": "` + ivyHash + `", "roles": ["billing"]}` + "\n" +
			`{"username": "jay", "password_hash": "` + malformedHash + `"}` + "\n"}, http.StatusAccepted)
	report := mustImportDone(t, p, ada, "acme", imp.Str("id"))
	if report.Str("status") != "done" || !strings.Contains(string(report.Body), `"imported":1`) || !strings.Contains(string(report.Body), `"failed":1`) {
		t.Fatalf("import report %s", report.Body)
	}
	mustLoginEventually(t, p, "acme", "ivy", ivyPassword)
	p.Login(t, "acme", "ivy", ivyPassword, "")
	// A webhook endpoint and its rotated secret. Deliveries to it are
	// refused at connect time (a loopback address without
	// AUTH_WEBHOOK_ALLOW_PRIVATE) and retried: the failing path runs too.
	hook := cmd(ada, http.MethodPost, "/t/acme/webhooks", map[string]any{"url": "https://127.0.0.1:1/hooks", "event_types": []string{"*"}}, http.StatusCreated)
	hookRotated := cmd(ada, http.MethodPost, "/t/acme/webhooks/"+hook.Str("id")+"/secret", map[string]any{"overlap_seconds": 60}, http.StatusOK)
	cmd(ada, http.MethodPut, "/t/acme/roles/after-hook", map[string]any{"permissions": []string{"reports:read"}}, http.StatusOK)
	// Second factors: gina enrols TOTP and recovery codes with her own
	// token, signs in on the hosted page with a code and with a recovery
	// code, is refused by the password grant, removes a factor; ada resets
	// them.
	gina := cmd(ada, http.MethodPost, "/t/acme/users", map[string]any{"username": "gina", "password": ginaPassword}, http.StatusCreated)
	ginaID := gina.Str("id")
	ginaToken := p.Login(t, "acme", "gina", ginaPassword, ctOf(gina)).AccessToken
	mfa := "/t/acme/users/" + ginaID + "/mfa"
	enrol := cmd(ginaToken, http.MethodPost, mfa+"/totp", nil, http.StatusCreated)
	enrolN := len(p.answers())
	seed := enrol.Str("secret")
	totpCode := func(at time.Time) string {
		c, err := authn.TOTPCode(seed, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cmd(ginaToken, http.MethodPost, mfa+"/totp/verify", map[string]any{"code": "12345x"}, http.StatusBadRequest)
	cmd(ginaToken, http.MethodPost, mfa+"/totp/verify", map[string]any{"code": totpCode(time.Now())}, http.StatusNoContent)
	recovery := cmd(ginaToken, http.MethodPost, mfa+"/recovery_codes", nil, http.StatusCreated)
	recoveryN := len(p.answers())
	var rc struct {
		Codes []string `json:"codes"`
	}
	recovery.Decode(t, &rc)
	if seed == "" || len(rc.Codes) != 10 {
		t.Fatalf("enrolment answered %s and %s", enrol.Body, recovery.Body)
	}
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Consistency: ctOf(recovery),
		Body: form("grant_type", "password", "username", "gina", "password", ginaPassword)}, http.StatusBadRequest)
	_, ginaFlow := mustHostedSignin(t, p, ada, "gina", ginaPassword, totpCode(time.Now().Add(30*time.Second)))
	flow = append(flow, ginaFlow...)
	_, ginaFlow = mustHostedSignin(t, p, ada, "gina", ginaPassword, rc.Codes[0])
	flow = append(flow, ginaFlow...)
	cmd(ginaToken, http.MethodDelete, mfa+"/recovery_codes", nil, http.StatusNoContent)
	cmd(ada, http.MethodDelete, mfa, nil, http.StatusNoContent)
	// Passkeys: hank registers one with his own token (a software
	// authenticator answers the creation options), signs in with it on
	// the hosted page after the password, and removes it. Each ceremony's
	// challenge may show in the answer that starts it only.
	hank := cmd(ada, http.MethodPost, "/t/acme/users", map[string]any{"username": "hank", "password": hankPassword}, http.StatusCreated)
	hankID := hank.Str("id")
	hankToken := p.Login(t, "acme", "hank", hankPassword, ctOf(hank)).AccessToken
	authr := passkeytest.New(publicURL)
	begun := cmd(hankToken, http.MethodPost, "/t/acme/users/"+hankID+"/mfa/webauthn", nil, http.StatusCreated)
	begunN := len(p.answers())
	var creation struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	begun.Decode(t, &creation)
	attestation, pkCred, err := authr.Create(creation.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	registered := cmd(hankToken, http.MethodPost, "/t/acme/users/"+hankID+"/mfa/webauthn/verify",
		map[string]any{"credential": json.RawMessage(attestation), "name": "hank's laptop"}, http.StatusCreated)
	var challenges []flowSecret
	challenges = append(challenges, flowSecret{"passkey registration challenge", challengeOf(t, creation.PublicKey), begunN})
	passkeyForm := regexp.MustCompile(`(?s)<form method="post" action="signin" id="passkey-form">.*?</form>`)
	hidden := regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)"`)
	p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: ada, Consistency: ctOf(registered)}, http.StatusOK)
	_, hankFlow := mustHostedSigninWith(t, p, ada, "hank", hankPassword, func(page []byte) url.Values {
		fields := url.Values{}
		for _, m := range hidden.FindAllSubmatch(passkeyForm.Find(page), -1) {
			fields.Set(string(m[1]), html.UnescapeString(string(m[2])))
		}
		opts := []byte(fields.Get("options"))
		if len(opts) == 0 {
			t.Fatalf("no passkey form after hank's password: %s", page)
		}
		challenges = append(challenges, flowSecret{"passkey sign-in challenge", challengeOf(t, opts), len(p.answers())})
		assertion, err := authr.Get(opts, pkCred)
		if err != nil {
			t.Fatal(err)
		}
		fields.Set("assertion", string(assertion))
		return fields
	})
	flow = append(flow, hankFlow...)
	cmd(hankToken, http.MethodDelete, "/t/acme/users/"+hankID+"/mfa/webauthn/"+registered.Str("credential_id"), nil, http.StatusNoContent)

	// Let the projector apply everything before reading the logs.
	p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: ada, Consistency: ctOf(deleted)}, http.StatusOK)

	sec := &secretSet{}
	for _, pw := range []string{rootPassword, adaPassword, beaPassword, carolPassword, carolNewPassword, davePassword, daveResetPass,
		erinPassword, wrongGuess1, wrongGuess2, wrongCurrent, unknownUserPass, malformedPass, typedWrongPass, repeatedPass,
		jsonAtTokenPass, badEncodingPass, queryStringPass, shortPass, tooLongPassword, passAsUsername, ivyPassword, ginaPassword, hankPassword} {
		sec.addText("password "+quoteShort(pw), pw, 0)
	}
	for _, e := range p.answers() {
		for _, tok := range e.Issued {
			sec.addToken(tok, e.N)
		}
	}
	sec.addBinary("the KEK", p.kek)
	for _, e := range p.answers() {
		if e.Method != http.MethodPost || !strings.Contains(e.URL, "/webhooks") {
			continue
		}
		var a struct{ Secret string }
		if json.Unmarshal(e.Body, &a) == nil && a.Secret != "" {
			sec.addText("webhook secret of answer "+fmt.Sprint(e.N), a.Secret, e.N)
			sec.addText("webhook secret bytes of answer "+fmt.Sprint(e.N), strings.TrimPrefix(a.Secret, "whsec_"), e.N)
		}
	}
	if hook.Str("secret") == "" || hookRotated.Str("secret") == "" {
		t.Fatal("the webhook answers carry no secret")
	}
	sec.addText("TOTP seed", seed, enrolN)
	sec.addText("otpauth URI", enrol.Str("otpauth_uri"), enrolN)
	if raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(seed); err == nil {
		sec.addBinary("TOTP seed bytes", raw)
	} else {
		t.Fatalf("the seed is not base32: %v", err)
	}
	for i, c := range rc.Codes {
		sec.addText(fmt.Sprintf("recovery code %d", i), c, recoveryN)
		sec.addText(fmt.Sprintf("recovery code %d without dashes", i), strings.ReplaceAll(c, "-", ""), 0)
	}
	for _, c := range challenges {
		sec.addText(c.name, c.value, c.answer)
		if raw, err := base64.RawURLEncoding.DecodeString(c.value); err == nil {
			sec.addBinary(c.name+" bytes", raw)
			sec.list[len(sec.list)-1].allowedIn = c.answer // its base64url form is the options' own
		} else {
			t.Fatalf("%s is not base64url: %v", c.name, err)
		}
	}
	if len(challenges) != 2 {
		t.Fatalf("%d passkey challenges seen, want the registration's and the sign-in's", len(challenges))
	}
	sec.addText("PKCE code verifier", verifier, 0)
	for _, f := range flow {
		sec.addText(f.name, f.value, f.answer)
	}

	evts := p.ReadStream(t, events.StreamEvents)
	acts := p.ReadStream(t, events.StreamActivity)
	keyRevisions := p.ReadStream(t, "KV_AUTH_KEYS")
	sec.addText("imported argon2id hash of ivy", ivyHash, 0)
	sec.addText("digest of ivy's imported hash", ivyHash[strings.LastIndex(ivyHash, "$")+1:], 0)
	sec.addText("malformed imported hash", malformedHash, 0)
	sec.addText("digest of the malformed imported hash", "Malformed-Hash-Secret-13", 0)
	hashes := mustOpenCredentials(t, p, evts, ivyHash)
	rehashed := 0
	for _, m := range evts {
		if m.Header.Get(events.HeaderType) == events.TypeUserPasswordRehashed {
			rehashed++
		}
	}
	if rehashed != 1 {
		t.Errorf("%d user.password_rehashed events, want 1: ivy's first login", rehashed)
	}
	if want := 6; len(hashes) < want {
		t.Fatalf("opened %d credentials from the events, want at least %d", len(hashes), want)
	}
	for who, h := range hashes {
		sec.addText("bcrypt hash of "+who, h, 0)
		// The part after "$2a$04$": salt and digest.
		sec.addText("bcrypt salt and digest of "+who, h[7:], 0)
	}
	keys := mustOpenPrivateKeys(t, p, keyRevisions)
	if len(keys) < 3 {
		t.Fatalf("opened %d signing keys from the bucket, want one per tenant (3)", len(keys))
	}
	for name, k := range keys {
		sec.addBinary("PKCS#8 DER of "+name, k.der)
		sec.addBinary("JWK d of "+name, k.d)
	}

	var sources []source
	for i, line := range strings.Split(p.logs.String(), "\n") {
		if line != "" {
			sources = append(sources, source{fmt.Sprintf("log line %d (%s)", i+1, logMsg(line)), []byte(line), 0})
		}
	}
	for _, set := range [][]streamMsg{evts, acts, keyRevisions} {
		for _, m := range set {
			sources = append(sources, source{m.String() + " data", m.Data, 0})
			for k, vs := range m.Header {
				sources = append(sources, source{m.String() + " header " + k, []byte(strings.Join(vs, "\n")), 0})
			}
		}
	}
	for name, base := range map[string]string{"query": p.Query, "command": p.Command, "projector": p.Projector, "dispatcher": p.Dispatcher} {
		sources = append(sources, source{"GET /metrics of the " + name + " service", p.mustMetrics(t, base), 0})
	}
	for _, e := range p.answers() {
		sources = append(sources, source{e.String() + " body", e.Body, e.N})
		for k, vs := range e.Header {
			sources = append(sources, source{e.String() + " header " + k, []byte(strings.Join(vs, "\n")), e.N})
		}
	}

	// The scan must see what it looks for: every token is found in the
	// answer that issued it when that answer is not excused.
	for _, e := range p.answers() {
		for _, tok := range e.Issued {
			probe := &secretSet{}
			probe.addToken(tok, 0)
			if len(probe.scan([]source{{where: e.String(), data: e.Body}})) == 0 {
				t.Fatalf("the scan does not find a token in the %s that issued it", e)
			}
		}
	}
	probe := &secretSet{}
	probe.addText("TOTP seed", seed, 0)
	probe.addText("recovery code", rc.Codes[9], 0)
	if len(probe.scan([]source{{where: "enrolment", data: append(append([]byte{}, enrol.Body...), recovery.Body...)}})) < 2 {
		t.Fatal("the scan does not find the seed and a recovery code in the answers that handed them out")
	}
	for _, f := range sec.scan(sources) {
		t.Error(f)
	}
	t.Logf("scanned %d sources (%d log lines, %d events, %d activity events, %d key revisions, %d answers) for %d secrets in %d encodings",
		len(sources), strings.Count(p.logs.String(), "\n"), len(evts), len(acts), len(keyRevisions), len(p.answers()), len(sec.list), sec.needles())
	if len(evts) == 0 || len(acts) == 0 || strings.Count(p.logs.String(), "\n") < 50 {
		t.Error("too little was gathered to mean anything: are debug logs and both streams captured?")
	}
}

// TestSecretScan_findsPlantedSecrets checks the scanner on sources with
// secrets planted in the encodings a careless log line or event would use.
func TestSecretScan_findsPlantedSecrets(t *testing.T) {
	t.Parallel()
	kek := bytes.Repeat([]byte{0xA5, 0x01, 0x7F}, 11)[:32]
	const pw = "Planted Secret \"quoted\" 42"
	const refresh = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.pLaNtEdSeCrEtPaRtOfTheRefreshToken0123456789"
	sec := &secretSet{}
	sec.addText("password", pw, 0)
	sec.addBinary("the KEK", kek)
	sec.addToken(refresh, 7)
	for _, tc := range []struct {
		name string
		src  source
		want int
	}{
		{"password in a JSON log line", source{data: mustMarshal(t, map[string]string{"msg": "x", "body": pw})}, 1},
		{"password in a form body", source{data: []byte("username=a&password=" + url.QueryEscape(pw))}, 1},
		{"KEK in base64 in a header", source{data: []byte(base64.StdEncoding.EncodeToString(kek))}, 1},
		{"KEK in hex", source{data: []byte("kek=" + hex.EncodeToString(kek))}, 1},
		{"KEK as raw bytes", source{data: append([]byte("prefix"), kek...)}, 1},
		{"KEK as a JSON array", source{data: jsonBytes(kek)}, 1},
		{"token in another answer", source{data: []byte(refresh), answer: 8}, 2},
		{"token's secret alone in a log", source{data: []byte(refresh[37:])}, 1},
		{"token in the answer that issued it", source{data: []byte(refresh), answer: 7}, 0},
		{"a bcrypt hash", source{data: []byte(`"$2a$04$abcdefghijklmnopqrstuv"`)}, 1},
		{"nothing", source{data: []byte("hello world")}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.src.where = tc.name
			got := sec.scan([]source{tc.src})
			// A finding per encoding that matched; count distinct secrets.
			secrets := map[string]bool{}
			for _, f := range got {
				secrets[strings.SplitN(f, " appears", 2)[0]] = true
			}
			if len(secrets) != tc.want {
				t.Errorf("scan found %d secrets, want %d: %v", len(secrets), tc.want, got)
			}
		})
	}
}

func mustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// secret is one secret and the forms it is looked for in.
type secret struct {
	name    string
	needles map[string][]byte // encoding name → bytes
	// allowedIn is the answer that issued the secret (a token), 0 if none.
	allowedIn int
}

type secretSet struct{ list []secret }

func (s *secretSet) needles() int {
	n := 0
	for _, x := range s.list {
		n += len(x.needles)
	}
	return n
}

// addText adds a textual secret: as it is, JSON-escaped, form- and
// path-escaped, base64 and hex.
func (s *secretSet) addText(name, v string, allowedIn int) {
	n := map[string][]byte{"as is": []byte(v)}
	if j, _ := json.Marshal(v); string(j[1:len(j)-1]) != v {
		n["JSON-escaped"] = j[1 : len(j)-1]
	}
	if q := url.QueryEscape(v); q != v {
		n["form-encoded"] = []byte(q)
	}
	if q := url.PathEscape(v); q != v {
		n["path-escaped"] = []byte(q)
	}
	n["base64"] = []byte(base64.StdEncoding.EncodeToString([]byte(v)))
	n["base64url"] = []byte(base64.RawURLEncoding.EncodeToString([]byte(v)))
	n["hex"] = []byte(hex.EncodeToString([]byte(v)))
	s.list = append(s.list, secret{name: name, needles: n, allowedIn: allowedIn})
}

// addBinary adds a binary secret: raw, base64 (padded or not, standard or
// URL alphabet) and hex (either case).
func (s *secretSet) addBinary(name string, v []byte) {
	n := map[string][]byte{
		"raw bytes":           v,
		"base64":              []byte(strings.TrimRight(base64.StdEncoding.EncodeToString(v), "=")),
		"base64url":           []byte(base64.RawURLEncoding.EncodeToString(v)),
		"hex":                 []byte(hex.EncodeToString(v)),
		"hex (upper case)":    []byte(strings.ToUpper(hex.EncodeToString(v))),
		"JSON byte array":     jsonBytes(v),
		"Go byte slice %v":    []byte(fmt.Sprint(v)), //nolint:staticcheck // QF1010: the byte slice's own form, [1 2 3], is the needle
		"Go quoted string %q": []byte(fmt.Sprintf("%q", v)[1 : len(fmt.Sprintf("%q", v))-1]),
	}
	s.list = append(s.list, secret{name: name, needles: n})
}

// addToken adds a token issued by answer n: a refresh token whole and its
// random part, an access token whole and its signature.
func (s *secretSet) addToken(tok string, n int) {
	switch parts := strings.Split(tok, "."); len(parts) {
	case 3: // a JWT
		s.addText(fmt.Sprintf("access token issued in answer #%d", n), tok, n)
		s.addText(fmt.Sprintf("signature of the access token issued in answer #%d", n), parts[2], n)
	case 2: // session id and secret
		s.addText(fmt.Sprintf("refresh token issued in answer #%d", n), tok, n)
		s.addText(fmt.Sprintf("secret part of the refresh token issued in answer #%d", n), parts[1], n)
	default:
		s.addText(fmt.Sprintf("token issued in answer #%d", n), tok, n)
	}
}

// source is one place an observer can read.
type source struct {
	where string
	data  []byte
	// answer is the number of the answer this is part of, 0 if none.
	answer int
}

// bcryptPrefixes are the starts of a modular-crypt bcrypt hash.
var bcryptPrefixes = []string{"$2a$", "$2b$", "$2y$", "$2x$"}

// scan returns one message per secret found where it does not belong.
func (s *secretSet) scan(sources []source) []string {
	var out []string
	for _, src := range sources {
		for _, sec := range s.list {
			if sec.allowedIn != 0 && sec.allowedIn == src.answer {
				continue
			}
			for enc, needle := range sec.needles {
				if len(needle) >= 6 && bytes.Contains(src.data, needle) {
					out = append(out, fmt.Sprintf("%s appears (%s) in %s", sec.name, enc, src.where))
				}
			}
		}
		for _, pre := range bcryptPrefixes {
			if bytes.Contains(src.data, []byte(pre)) {
				out = append(out, fmt.Sprintf("something shaped like a bcrypt hash (%q) appears in %s", pre, src.where))
			}
		}
	}
	return out
}

// envelope is the part of an event the scan needs.
type envelope struct {
	Type        string          `json:"type"`
	Tenant      string          `json:"tenant"`
	AggregateID string          `json:"aggregate_id"`
	Data        json.RawMessage `json:"data"`
}

// mustOpenCredentials opens the sealed password hash of every
// user.registered and user.password_changed event with the test's KEK,
// checks that it is the bcrypt hash of one of the scenario's passwords,
// and returns the hashes by "tenant/user@version".
//
// The additional data binds a credential to its tenant and user
// (events.CredentialAAD, whose form libs/events pins).
func mustOpenCredentials(tb testing.TB, p *platform, evts []streamMsg, imported ...string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	for _, m := range evts {
		var env envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			tb.Fatalf("%s: %v", m, err)
		}
		if env.Type != "user.registered" && env.Type != "user.password_changed" && env.Type != "user.password_rehashed" {
			continue
		}
		var data struct {
			Credential events.Sealed `json:"credential"`
		}
		if err := json.Unmarshal(env.Data, &data); err != nil || data.Credential.IsZero() {
			tb.Fatalf("%s: no sealed credential (%v)", m, err)
		}
		hash, err := p.ring.Open(data.Credential, events.CredentialAAD(env.Tenant, env.AggregateID))
		if err != nil {
			tb.Fatalf("%s: open the credential with the test's KEK: %v", m, err)
		}
		if slices.Contains(imported, string(hash)) {
			out[fmt.Sprintf("%s/%s (%s, %s)", env.Tenant, env.AggregateID, env.Type, m)] = string(hash)
			continue
		}
		if !bytes.HasPrefix(hash, []byte("$2")) || len(hash) != 60 {
			tb.Fatalf("%s: the sealed credential is not a bcrypt hash", m)
		}
		matched := false
		for _, pw := range []string{rootPassword, adaPassword, beaPassword, carolPassword, carolNewPassword, davePassword, daveResetPass, erinPassword, ivyPassword, ginaPassword, hankPassword} {
			if bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil {
				matched = true
				break
			}
		}
		if !matched {
			tb.Fatalf("%s: the sealed credential matches none of the scenario's passwords", m)
		}
		out[fmt.Sprintf("%s/%s (%s, %s)", env.Tenant, env.AggregateID, env.Type, m)] = string(hash)
	}
	return out
}

// privateKey is an opened signing key: its PKCS#8 DER and its JWK "d".
type privateKey struct{ der, d []byte }

// mustOpenPrivateKeys opens every private key of every revision of the
// signing-key bucket with the test's KEK. The record shape and the
// additional data ("authstream/key/<tenant>/<kid>") mirror libs/keystore;
// if they change, the opening fails here, loudly.
func mustOpenPrivateKeys(tb testing.TB, p *platform, revisions []streamMsg) map[string]privateKey {
	tb.Helper()
	out := map[string]privateKey{}
	for _, m := range revisions {
		tenant := m.Subject[strings.LastIndex(m.Subject, ".")+1:]
		if len(m.Data) == 0 {
			continue // a delete marker
		}
		var set struct {
			Keys []struct {
				KID    string        `json:"kid"`
				Alg    string        `json:"alg"`
				Sealed events.Sealed `json:"sealed_private"`
			} `json:"keys"`
			// The audit keys of a tenant (the value audit.<tenant>): their
			// Ed25519 seeds, sealed with "authstream/audit-key/<tenant>/<kid>".
			AuditKeys []struct {
				KID    string        `json:"kid"`
				Sealed events.Sealed `json:"sealed_private"`
			} `json:"audit_keys"`
		}
		if err := json.Unmarshal(m.Data, &set); err != nil {
			tb.Fatalf("%s: %v", m, err)
		}
		for _, k := range set.AuditKeys {
			seed, err := p.ring.Open(k.Sealed, []byte("authstream/audit-key/"+tenant+"/"+k.KID))
			if err != nil || len(seed) != ed25519.SeedSize {
				tb.Fatalf("%s: open audit key %s with the test's KEK: %v", m, k.KID, err)
			}
			out[fmt.Sprintf("audit key %s of tenant %s", k.KID, tenant)] = privateKey{der: ed25519.NewKeyFromSeed(seed), d: seed}
		}
		for _, k := range set.Keys {
			der, err := p.ring.Open(k.Sealed, []byte("authstream/key/"+tenant+"/"+k.KID))
			if err != nil {
				tb.Fatalf("%s: open private key %s with the test's KEK: %v", m, k.KID, err)
			}
			parsed, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				tb.Fatalf("%s: key %s is not PKCS#8: %v", m, k.KID, err)
			}
			var d []byte
			switch key := parsed.(type) {
			case ed25519.PrivateKey:
				d = key.Seed()
			case *ecdsa.PrivateKey:
				b, err := key.Bytes()
				if err != nil {
					tb.Fatal(err)
				}
				d = b
			case *rsa.PrivateKey:
				d = key.D.Bytes()
			default:
				tb.Fatalf("%s: key %s is a %T", m, k.KID, parsed)
			}
			out[fmt.Sprintf("key %s of tenant %s (%s)", k.KID, tenant, k.Alg)] = privateKey{der: der, d: d}
		}
	}
	return out
}

// logMsg names a JSON log line by its level, service and message, without
// the rest of its content.
func logMsg(line string) string {
	var l struct {
		Level   string `json:"level"`
		Msg     string `json:"msg"`
		Service string `json:"service"`
	}
	if json.Unmarshal([]byte(line), &l) != nil {
		return "not JSON"
	}
	return fmt.Sprintf("%s %s %q", l.Level, l.Service, l.Msg)
}

// jsonBytes is v as a JSON array of numbers, the way a []int would be
// logged.
func jsonBytes(v []byte) []byte {
	ints := make([]int, len(v))
	for i, b := range v {
		ints[i] = int(b)
	}
	b, _ := json.Marshal(ints)
	return b
}

// quoteShort names a password in a finding by its start only.
func quoteShort(s string) string {
	if len(s) > 12 {
		s = s[:12] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// flowSecret is a secret of the authorization code flow, and the number of
// the answer that handed it out (0: none may show it).
type flowSecret struct {
	name, value string
	answer      int
}

// mustCodeFlow registers a public client in acme (with ada's token) and
// signs carol in through the hosted page as a browser would, without
// following redirects: authorize, the sign-in page, the form, the code
// exchange with PKCE. It records every answer for the scan and returns
// the verifier and the flow's other secrets (the code, the cookies) with
// the answers that handed them out.
func mustCodeFlow(tb testing.TB, p *platform, ada, password string) (string, []flowSecret) {
	tb.Helper()
	return mustHostedSignin(tb, p, ada, "carol", password, "")
}

// mustHostedSignin is mustCodeFlow for username, with factorCode typed
// into the code form after the password when it is not "" (a user with a
// second factor).
func mustHostedSignin(tb testing.TB, p *platform, ada, username, password, factorCode string) (string, []flowSecret) {
	tb.Helper()
	if factorCode == "" {
		return mustHostedSigninWith(tb, p, ada, username, password, nil)
	}
	hidden := regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)"`)
	return mustHostedSigninWith(tb, p, ada, username, password, func(page []byte) url.Values {
		if !strings.Contains(string(page), `name="code"`) {
			tb.Fatalf("after the password of %s: %s, want the code form", username, page)
		}
		fields := url.Values{"code": {factorCode}}
		for _, m := range hidden.FindAllSubmatch(page, -1) {
			fields.Set(string(m[1]), html.UnescapeString(string(m[2])))
		}
		return fields
	})
}

// mustHostedSigninWith is mustHostedSignin whose second step, when
// factor is not nil, posts the fields factor makes of the page that
// follows the password.
func mustHostedSigninWith(tb testing.TB, p *platform, ada, username, password string, factor func(page []byte) url.Values) (string, []flowSecret) {
	tb.Helper()
	const redirect = "https://app.acme.example/callback"
	reg := p.Must(tb, request{Method: http.MethodPost, URL: p.Command + "/t/acme/clients", Bearer: ada,
		Body: map[string]any{"name": "spa", "type": "public", "redirect_uris": []string{redirect}}}, http.StatusCreated)
	client := reg.Str("client_id")
	verifier := "verifier-" + strings.Repeat("k7Q2", 12)
	sum := sha256.Sum256([]byte(verifier))
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var secrets []flowSecret
	send := func(method, target string, body url.Values, consistency string) answer {
		tb.Helper()
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(body.Encode())
		}
		req, err := http.NewRequest(method, target, rd)
		if err != nil {
			tb.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if consistency != "" {
			req.Header.Set("Consistency-Token", consistency)
		}
		res, err := browser.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		defer res.Body.Close()
		data, err := io.ReadAll(res.Body)
		if err != nil {
			tb.Fatal(err)
		}
		a := answer{Status: res.StatusCode, Header: res.Header, Body: data}
		p.record(tb, request{Method: method, URL: target}, a)
		n := len(p.answers())
		for _, c := range res.Cookies() {
			if c.Value != "" {
				secrets = append(secrets, flowSecret{"cookie " + c.Name, c.Value, n})
			}
		}
		return a
	}
	q := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"st-1"}, "nonce": {"nonce-1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	authz := send(http.MethodGet, p.Query+"/t/acme/oauth/authorize?"+q.Encode(), nil, reg.Token())
	page := authz.Header.Get("Location")
	if authz.Status/100 != 3 || page == "" {
		tb.Fatalf("authorize = %d %s", authz.Status, authz.Body)
	}
	// The page is named under the public URL, which this test does not
	// serve: the same path on the query service's own address.
	if u, err := url.Parse(page); err == nil {
		page = p.Query + u.RequestURI()
	}
	form := send(http.MethodGet, page, nil, "")
	if form.Status != http.StatusOK {
		tb.Fatalf("sign-in page = %d %s", form.Status, form.Body)
	}
	hidden := regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)"`)
	fields := url.Values{"username": {username}, "password": {password}}
	for _, m := range hidden.FindAllSubmatch(form.Body, -1) {
		fields.Set(string(m[1]), html.UnescapeString(string(m[2])))
	}
	target, err := url.Parse(page)
	if err != nil {
		tb.Fatal(err)
	}
	target.RawQuery = ""
	signed := send(http.MethodPost, target.String(), fields, "")
	if factor != nil {
		if signed.Status != http.StatusOK {
			tb.Fatalf("after the password of %s = %d %s, want the factor page", username, signed.Status, signed.Body)
		}
		signed = send(http.MethodPost, target.String(), factor(signed.Body), "")
	}
	back, err := url.Parse(signed.Header.Get("Location"))
	if signed.Status/100 != 3 || err != nil || back.Query().Get("code") == "" {
		tb.Fatalf("sign-in = %d Location %q %s", signed.Status, signed.Header.Get("Location"), signed.Body)
	}
	code := back.Query().Get("code")
	secrets = append(secrets, flowSecret{"authorization code", code, len(p.answers())})
	tok := p.Must(tb, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token",
		Body: url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
			"client_id": {client}, "code_verifier": {verifier}}}, http.StatusOK)
	if tok.Str("id_token") == "" {
		tb.Fatalf("code exchange without an ID token: %s", tok.Body)
	}
	return verifier, secrets
}

// argon2idHash is password's argon2id hash in PHC form, as another
// provider would export it (small parameters: the test's).
func argon2idHash(tb testing.TB, password string) string {
	tb.Helper()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		tb.Fatal(err)
	}
	sum := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	b64 := base64.RawStdEncoding.EncodeToString
	return "$argon2id$v=19$m=64,t=1,p=1$" + b64(salt) + "$" + b64(sum)
}

// mustImportDone polls an import of tenant until it is done and returns
// its last report.
func mustImportDone(tb testing.TB, p *platform, bearer, tenant, id string) answer {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := p.Must(tb, request{Method: http.MethodGet, URL: p.Command + "/t/" + tenant + "/imports/" + id, Bearer: bearer}, http.StatusOK)
		if r.Str("status") == "done" || time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mustLoginEventually logs a user in once the projection holds it.
func mustLoginEventually(tb testing.TB, p *platform, tenant, username, password string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := p.Exchange(tb, request{Method: http.MethodPost, URL: p.Query + "/t/" + tenant + "/login",
			Body: map[string]any{"username": username, "password": password}})
		if r.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("login of %s: %d %s", username, r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// challengeOf returns the challenge of WebAuthn options (base64url).
func challengeOf(tb testing.TB, options []byte) string {
	tb.Helper()
	var o struct {
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.Challenge == "" {
		tb.Fatalf("options without a challenge: %s", options)
	}
	return o.Challenge
}
