package scenario

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// Targets of the OpenID Connect provider, and its scenarios' shape.
const (
	oidcClients        = 16
	clientCredTarget   = 5000.0
	exchangeTarget     = 2000.0
	introspectTarget   = 10000.0
	hostedLoginTarget  = 0.9 // of the bcrypt bound
	authorizeP99Target = 20 * time.Millisecond

	// oidcRedirect is the web client's redirect URI: never contacted, the
	// browser stops at the provider's redirect.
	oidcRedirect = "http://127.0.0.1:9/callback" //nolint:gosec // G101: a redirect URI, no credential
	oidcScopes   = "openid profile email"
	// mintWindow bounds the measured window of the authorize run whose
	// codes the exchanges redeem: a code lives 60 s, and the last codes
	// of the exchange window were minted up to the two windows before.
	mintWindow = 25 * time.Second
	// codeMaxAge is the oldest code the exchange run still redeems.
	codeMaxAge = 50 * time.Second
	// sampledTokens is how many access tokens of each kind the
	// introspection runs present, in turn.
	sampledTokens = 1024
	// signinsPerAddress is how many hosted sign-ins a browser makes
	// before it moves to a new loopback address: the query service allows
	// 300 password attempts a minute per client address.
	signinsPerAddress = 100
)

// runOIDC measures the OpenID Connect provider on the shared platform,
// with clients registered through the command API in a tenant of their
// own:
//
//   - the client_credentials grant of 16 service accounts (client_secret_basic),
//     against GET /healthz measured in the same run and against the
//     signing of one access token in this process (cores ÷ its time);
//   - GET /authorize with an SSO browser session and prompt=none, which
//     answers the redirect with a code and appends its authcode.issued
//     to AUTH_ACTIVITY: its p99 against the target, its rate against a
//     raw synced publish with the expected sequence on a stream with
//     AUTH_ACTIVITY's settings;
//   - the authorization_code exchange of those codes by the confidential
//     web client (PKCE S256, openid profile email: an access token and an
//     RS256 ID token), against the same raw publish: a code is minted by
//     the authorize run just before and redeemed once, each exchange
//     appending its authcode.redeemed and session.started in one batch;
//   - introspection by that client of the code flow's access tokens (a
//     session read each) and of the service accounts'.
func runOIDC(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	counts := e.clients(1, oidcClients)
	most := slices.Max(counts)
	set, err := oidcTenant(ctx, e, p, "oidc", most)
	if err != nil {
		return err
	}

	// The service accounts' tokens, and the bounds of their issuance.
	floors := map[int]float64{}
	serviceTokens := make([][]string, most)
	for _, n := range counts {
		floors[n] = e.healthz(ctx, p, n).Throughput()
	}
	first, err := p.Expect(ctx, clientCredentials(p, set.tenant, set.services[0]), http.StatusOK)
	if err != nil {
		return err
	}
	var tok platform.Tokens
	if err := first.Decode(&tok); err != nil {
		return err
	}
	alg, err := platform.TokenHeader(tok.AccessToken)
	if err != nil {
		return err
	}
	for _, n := range counts {
		sign, err := signTime(alg)
		if err != nil {
			return err
		}
		signBound := float64(platform.Cores()) / sign.Seconds()
		stop := e.profile(fmt.Sprintf("client-credentials-c%d", n))
		res := loadgen.Run(ctx, e.loadConfig(n), func(ctx context.Context, c int) loadgen.Outcome {
			a, err := p.Do(ctx, clientCredentials(p, set.tenant, set.services[c]))
			out := outcome(a, err, http.StatusOK)
			if out == loadgen.OK && len(serviceTokens[c]) < sampledTokens/n {
				var t platform.Tokens
				if a.Decode(&t) != nil || t.AccessToken == "" {
					keepFailure(fmt.Sprintf("client_credentials answer without a token: %.120s", a.Body))
					return loadgen.Failed
				}
				serviceTokens[c] = append(serviceTokens[c], t.AccessToken)
			}
			return out
		})
		stop()
		row := fromResult("client_credentials token", res)
		row.Bound, row.Ratio = rateBound(clientCredTarget)+" target", row.Rate/clientCredTarget
		row.Notes = fmt.Sprintf("%.2f of GET /healthz (%s/s); %.2f of the signing bound (%s/s: %d cores / one %s access token %s); client_secret_basic, %d service accounts",
			row.Rate/floors[n], formatRate(floors[n]), row.Rate/signBound, formatRate(signBound), platform.Cores(), alg, formatDuration(sign), n)
		e.add(row)
	}

	// One browser per client, signed in once on the hosted page: its
	// session cookie is the SSO session of the authorize runs.
	browsers := make([]*browser, most)
	defer func() {
		for _, b := range browsers {
			if b != nil {
				b.c.Close()
			}
		}
	}()
	for c := range browsers {
		browsers[c] = newBrowser(p, set.tenant, set.web.ID)
		if _, out := browsers[c].signIn(ctx, set.names[c], userPassword); out != loadgen.OK {
			msg := failure.Swap(nil)
			if msg == nil {
				return fmt.Errorf("hosted sign-in of %s failed", set.names[c])
			}
			return fmt.Errorf("hosted sign-in of %s: %s", set.names[c], *msg)
		}
	}
	idSign, err := signTime(authn.RS256)
	if err != nil {
		return err
	}
	userTokens := make([][]string, most)
	for _, n := range counts {
		raw, err := e.rawPublishTo(ctx, shared, p, n, events.StreamActivity, 1)
		if err != nil {
			return err
		}
		rawRate := raw.Throughput()
		// An exchange appends its authcode.redeemed and session.started
		// in one atomic batch: the broker's floor for that.
		rawBatch, err := e.rawPublishTo(ctx, shared, p, n, events.StreamActivity, 2)
		if err != nil {
			return err
		}
		batchRate := rawBatch.Throughput()

		minted := make([][]mintedCode, n)
		cfg := e.loadConfig(n)
		cfg.Duration = min(cfg.Duration, mintWindow)
		stop := e.profile(fmt.Sprintf("authorize-c%d", n))
		res := loadgen.Run(ctx, cfg, func(ctx context.Context, c int) loadgen.Outcome {
			code, out := browsers[c].authorize(ctx)
			if out == loadgen.OK {
				minted[c] = append(minted[c], mintedCode{code: code, browser: c, at: time.Now()})
			}
			return out
		})
		stop()
		row := fromResult("authorize → redirect, SSO session, prompt=none", res)
		row.Bound, row.Ratio = "p99 "+formatDuration(authorizeP99Target), float64(row.P99)/float64(authorizeP99Target)
		row.Notes = fmt.Sprintf("a code each (authcode.issued appended to %s, synced); %.2f of the raw %s publish (%s/s)",
			events.StreamActivity, row.Rate/rawRate, events.StreamActivity, formatRate(rawRate))
		if cfg.Duration < e.opts.Duration {
			row.Notes += fmt.Sprintf("; window %s, as codes live 60s", cfg.Duration)
		}
		e.add(row)

		codes := newCodeQueue(minted, codeMaxAge)
		sign, err := signTime(alg)
		if err != nil {
			return err
		}
		signBound := float64(platform.Cores()) / (sign + idSign).Seconds()
		basic := platform.BasicAuth(set.web.ID, set.web.Secret)
		xctx, ranDry := context.WithCancel(ctx)
		var noID atomic.Int64
		stop = e.profile(fmt.Sprintf("code-exchange-c%d", n))
		res = loadgen.Run(xctx, e.loadConfig(n), func(ctx context.Context, c int) loadgen.Outcome {
			m, ok := codes.next(time.Now())
			if !ok {
				ranDry()
				return loadgen.Skipped
			}
			a, err := p.Do(ctx, platform.Request{
				Method: http.MethodPost, URL: p.Query + "/t/" + set.tenant + "/oauth/token", Header: basic,
				Body: url.Values{"grant_type": {"authorization_code"}, "code": {m.code}, "redirect_uri": {oidcRedirect}, "code_verifier": {browsers[m.browser].verifier}},
			})
			out := outcome(a, err, http.StatusOK)
			if out == loadgen.OK && len(userTokens[c]) < sampledTokens/n {
				var t platform.Tokens
				if a.Decode(&t) != nil || t.AccessToken == "" || t.IDToken == "" {
					noID.Add(1)
					keepFailure(fmt.Sprintf("code exchange without an access and an ID token: %.120s", a.Body))
					return loadgen.Failed
				}
				userTokens[c] = append(userTokens[c], t.AccessToken)
			}
			return out
		})
		stop()
		dry := xctx.Err() != nil && ctx.Err() == nil
		ranDry()
		row = fromResult("authorization_code exchange", res)
		row.Bound, row.Ratio = rateBound(exchangeTarget)+" target", row.Rate/exchangeTarget
		row.Notes = fmt.Sprintf("%.2f of the raw %s publish (%s/s), %.2f of the raw atomic batch of 2 (%s/s); %.2f of the signing bound (%s/s: %d cores / one %s access token %s + one RS256 ID token %s); client_secret_basic, PKCE S256, scopes %s; %d codes minted by the authorize row",
			row.Rate/rawRate, events.StreamActivity, formatRate(rawRate), row.Rate/batchRate, formatRate(batchRate),
			row.Rate/signBound, formatRate(signBound), platform.Cores(), alg, formatDuration(sign), formatDuration(idSign), oidcScopes, codes.total)
		if expired := codes.expired.Load(); expired > 0 {
			row.Notes += fmt.Sprintf("; %d codes older than %s skipped", expired, codeMaxAge)
		}
		if dry {
			row.Notes += fmt.Sprintf("; the codes ran out %s into the window", res.Elapsed.Round(100*time.Millisecond))
		}
		e.add(row)
	}

	// Introspection of both kinds of token by the web client.
	basic := platform.BasicAuth(set.web.ID, set.web.Secret)
	for _, kind := range []struct {
		name   string
		tokens []string
		note   string
	}{
		{"introspection, code flow access tokens", slices.Concat(userTokens...), "each token names its grant (gid): a session read from " + events.StreamActivity + " each"},
		{"introspection, client_credentials access tokens", slices.Concat(serviceTokens...), "no grant to read"},
	} {
		if len(kind.tokens) == 0 {
			return fmt.Errorf("%s: no token to present", kind.name)
		}
		for _, n := range counts {
			turns := make([]int, n)
			stop := e.profile(fmt.Sprintf("%s-c%d", shortName(kind.name), n))
			res := loadgen.Run(ctx, e.loadConfig(n), func(ctx context.Context, c int) loadgen.Outcome {
				t := kind.tokens[(c+turns[c]*n)%len(kind.tokens)]
				turns[c]++
				a, err := p.Do(ctx, platform.Request{
					Method: http.MethodPost, URL: p.Query + "/t/" + set.tenant + "/oauth/introspect", Header: basic,
					Body: url.Values{"token": {t}},
				})
				out := outcome(a, err, http.StatusOK)
				if out == loadgen.OK && !bytes.Contains(a.Body, []byte(`"active":true`)) {
					keepFailure(fmt.Sprintf("an issued token introspected inactive: %.120s", a.Body))
					return loadgen.Failed
				}
				return out
			})
			stop()
			row := fromResult(kind.name, res)
			row.Bound, row.Ratio = rateBound(introspectTarget)+" target", row.Rate/introspectTarget
			row.Notes = fmt.Sprintf("%.2f of GET /healthz (%s/s); %d distinct tokens in turn; client_secret_basic; %s",
				row.Rate/floors[n], formatRate(floors[n]), len(kind.tokens), kind.note)
			e.add(row)
		}
	}
	return nil
}

// runOIDCLogin measures hosted-page logins at bcrypt cost 10: a browser
// without a session asks GET /authorize, follows the redirect to the
// sign-in page, posts its form and is sent back to the client with a code
// (three requests). Its bound is the login scenario's: cores ÷ one bcrypt
// comparison at the tenant's cost, measured in-process before each run;
// the notes add the comparisons every core makes at once just before and
// after the run, which, unlike one comparison, see the cores other
// processes take. As in the login scenario, the browsers rotate over enough accounts and
// loopback addresses that the login limits never bind.
func runOIDCLogin(ctx context.Context, e *Env) error {
	const cost = 10
	p, err := e.Platform(ctx, Setup{Cost: cost})
	if err != nil {
		return err
	}
	counts := e.clients(8, 32)
	most := slices.Max(counts)
	one := bcryptTime(cost)
	bound := float64(platform.Cores()) / one.Seconds()
	runs := time.Duration(len(counts)) * (e.opts.Warmup + e.opts.Duration + 5*time.Second)
	accounts := max(2*most, int(bound*runs.Seconds()/float64(accountAllowance)*1.5))
	users, err := loginUsers(ctx, e, p, fmt.Sprintf("hosted-%d", cost), accounts)
	if err != nil {
		return err
	}
	web, err := registerWebClient(ctx, p, &users.admin)
	if err != nil {
		return err
	}
	for _, n := range counts {
		one = bcryptTime(cost)
		bound = float64(platform.Cores()) / one.Seconds()
		warmup := max(e.opts.Warmup, time.Duration(float64(n)/float64(platform.Cores())*1.5*float64(one)))
		browsers := make([]*browser, n)
		for c := range browsers {
			browsers[c] = newBrowser(p, users.tenant, web.ID)
		}
		// Cores ÷ one comparison cannot see the cores other processes
		// take; comparisons on every core at once, just before and just
		// after the run, can.
		parallel := bcryptRate(ctx, cost, 3*time.Second)
		var shed atomic.Int64
		stop := e.profile(fmt.Sprintf("hosted-login-%d-c%d", cost, n))
		res := loadgen.Run(ctx, loadgen.Config{Clients: n, Warmup: warmup, Duration: e.opts.Duration}, func(ctx context.Context, c int) loadgen.Outcome {
			b := browsers[c]
			// Browser c signs in as its accounts c, c+n, ... in turn.
			owned := (len(users.names) - c + n - 1) / n
			u := c + b.signins%owned*n
			if b.signins > 0 && b.signins%signinsPerAddress == 0 {
				b.move(p)
			}
			b.signins++
			_, out := b.signIn(ctx, users.names[u], userPassword)
			if out == loadgen.Shed {
				shed.Add(1)
			}
			return out
		})
		stop()
		for _, b := range browsers {
			b.c.Close()
		}
		row := fromResult(fmt.Sprintf("hosted-page login bcrypt %d (authorize, page, form → code)", cost), res)
		row.Bound, row.Ratio = rateBound(bound), row.Rate/bound
		parallel = (parallel + bcryptRate(ctx, cost, 3*time.Second)) / 2
		row.Notes = fmt.Sprintf("target ≥ %.1f of the bound: %d cores / one bcrypt %s; %.2f of the comparisons on %d cores at once around the run (%s/s); shed (429/503) %d; %d accounts",
			hostedLoginTarget, platform.Cores(), formatDuration(one), row.Rate/parallel, platform.Cores(), formatRate(parallel), shed.Load(), len(users.names))
		e.add(row)
	}
	return nil
}

// bcryptRate returns the bcrypt comparisons at cost per second that
// GOMAXPROCS goroutines, comparing at once for d after a second of
// warm-up (so that comparisons in flight at either end of the window
// count as in any steady window), achieve in this process.
func bcryptRate(ctx context.Context, cost int, d time.Duration) float64 {
	pw := []byte(userPassword)
	hash, err := bcrypt.GenerateFromPassword(pw, cost)
	if err != nil {
		panic(err) // cost is one of the scenario's constants
	}
	res := loadgen.Run(ctx, loadgen.Config{Clients: platform.Cores(), Warmup: time.Second, Duration: d}, func(context.Context, int) loadgen.Outcome {
		_ = bcrypt.CompareHashAndPassword(hash, pw)
		return loadgen.OK
	})
	return res.Throughput()
}

// oidcSet is the OpenID Connect scenario's tenant: users to sign in, a
// confidential web client of the code flow and service accounts.
type oidcSet struct {
	*userSet
	web      platform.RegisteredClient
	services []platform.RegisteredClient
}

// oidcTenant creates tenant with n users, the web client and n service
// accounts, and waits until the query service reads the last of them.
func oidcTenant(ctx context.Context, e *Env, p *platform.Platform, tenant string, n int) (*oidcSet, error) {
	users, err := newTenant(ctx, p, tenant)
	if err != nil {
		return nil, err
	}
	e.logf("registering %d users, a web client and %d service accounts in %s", n, n, tenant)
	users.names, users.ids = make([]string, n), make([]string, n)
	if err := registerAll(ctx, p.Client, &users.admin, users.names, users.ids, nil, platform.Cores()*2); err != nil {
		return nil, err
	}
	set := &oidcSet{userSet: users}
	if set.web, err = registerWebClient(ctx, p, &users.admin); err != nil {
		return nil, err
	}
	for i := range n {
		c, err := p.RegisterClient(ctx, &users.admin, map[string]any{
			"name": fmt.Sprintf("service %d", i), "type": "confidential",
			"grant_types": []string{"client_credentials"}, "scopes": []string{},
		})
		if err != nil {
			return nil, err
		}
		set.services = append(set.services, c)
	}
	// One tenant is one partition: the last client read, all are.
	if err := p.ReadClient(ctx, &users.admin, set.services[n-1].ID, users.admin.Consistency); err != nil {
		return nil, err
	}
	return set, nil
}

// registerWebClient registers the confidential client of the code flow
// (a server-side web application, as services/examples/webapp is) and
// waits until the query service reads it.
func registerWebClient(ctx context.Context, p *platform.Platform, t *platform.Tenant) (platform.RegisteredClient, error) {
	c, err := p.RegisterClient(ctx, t, map[string]any{
		"name": "bench web app", "type": "confidential", "redirect_uris": []string{oidcRedirect},
		"grant_types": []string{"authorization_code"}, "scopes": strings.Fields(oidcScopes),
	})
	if err != nil {
		return c, err
	}
	return c, p.ReadClient(ctx, t, c.ID, t.Consistency)
}

// clientCredentials is the token request of a service account.
func clientCredentials(p *platform.Platform, tenant string, c platform.RegisteredClient) platform.Request {
	return platform.Request{
		Method: http.MethodPost, URL: p.Query + "/t/" + tenant + "/oauth/token", Header: platform.BasicAuth(c.ID, c.Secret),
		Body: url.Values{"grant_type": {"client_credentials"}},
	}
}

// signTime returns the time of signing one access token like the
// provider's (authn.Issue, the claims of a service account's token) with
// a fresh key of alg in this process, one at a time: the median of five
// rounds.
func signTime(alg string) (time.Duration, error) {
	key, err := authn.GenerateKey(alg)
	if err != nil {
		return 0, err
	}
	id := events.NewID()
	const perRound = 100
	rounds := make([]time.Duration, 5)
	for i := range rounds {
		t0 := time.Now()
		for range perRound {
			now := time.Now()
			if _, err := authn.Issue(key, authn.Claims{
				Issuer: "http://127.0.0.1:8080/t/oidc", Subject: "client:" + id, Audience: []string{"authstream"},
				ExpiresAt: now.Add(15 * time.Minute), IssuedAt: now, NotBefore: now, ID: events.NewID(),
				Tenant: "oidc", Roles: []string{}, ClientID: id, AZP: id,
			}); err != nil {
				return 0, err
			}
		}
		rounds[i] = time.Since(t0) / perRound
	}
	slices.Sort(rounds)
	return rounds[len(rounds)/2], nil
}

// browser is one user agent of the code flow: its own connections from a
// loopback address of its own, its cookies, and its PKCE verifier (one
// for all its requests: the provider binds each code to the challenge
// it was asked with, which is all a benchmark needs).
type browser struct {
	c                   *platform.Client
	tenant, client      string
	verifier, challenge string
	csrf, session       string // cookie values
	requests            int    // authorization requests sent, for state and nonce
	signins             int    // hosted sign-ins started
}

func newBrowser(p *platform.Platform, tenant, client string) *browser {
	b := &browser{c: p.From(nextSource()), tenant: tenant, client: client}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	b.verifier = base64.RawURLEncoding.EncodeToString(raw[:])
	b.challenge = pkceChallenge(b.verifier)
	return b
}

// move makes the browser connect from a new loopback address.
func (b *browser) move(p *platform.Platform) {
	b.c.Close()
	b.c = p.From(nextSource())
}

// pkceChallenge is the S256 challenge of verifier (RFC 7636 section 4.2).
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeURL is an authorization request of the web client as its
// library sends it: PKCE S256, state, nonce, prompt when not empty.
func (b *browser) authorizeURL(prompt string) string {
	b.requests++
	n := strconv.Itoa(b.requests)
	q := url.Values{
		"client_id": {b.client}, "redirect_uri": {oidcRedirect}, "response_type": {"code"}, "scope": {oidcScopes},
		"state": {"state-" + n}, "nonce": {"nonce-" + n}, "code_challenge": {b.challenge}, "code_challenge_method": {"S256"},
	}
	if prompt != "" {
		q.Set("prompt", prompt)
	}
	return b.c.Query + "/t/" + b.tenant + "/oauth/authorize?" + q.Encode()
}

// cookies is the Cookie header of the browser's requests: the CSRF
// cookie, and the session cookie when withSession. The names are those of
// a platform served over plain http.
func (b *browser) cookies(withSession bool) http.Header {
	var parts []string
	if b.csrf != "" {
		parts = append(parts, "authstream_csrf_"+b.tenant+"="+b.csrf)
	}
	if withSession && b.session != "" {
		parts = append(parts, "authstream_"+b.tenant+"="+b.session)
	}
	if len(parts) == 0 {
		return nil
	}
	return http.Header{"Cookie": {strings.Join(parts, "; ")}}
}

// keep keeps the cookies an answer set.
func (b *browser) keep(cs []*http.Cookie) {
	for _, c := range cs {
		switch c.Name {
		case "authstream_csrf_" + b.tenant:
			b.csrf = c.Value
		case "authstream_" + b.tenant:
			b.session = c.Value
		}
	}
}

// authorize asks for a code with the browser's session and prompt=none,
// and returns the code of the redirect to the client.
func (b *browser) authorize(ctx context.Context) (string, loadgen.Outcome) {
	a, err := b.c.Do(ctx, platform.Request{Method: http.MethodGet, URL: b.authorizeURL("none"), Header: b.cookies(true)})
	if out := redirected(a, err); out != loadgen.OK {
		return "", out
	}
	code, err := codeOf(a.Location)
	if err != nil {
		keepFailure(err.Error())
		return "", loadgen.Failed
	}
	return code, loadgen.OK
}

// signIn runs a hosted-page login without a session: GET /authorize sends
// the browser to the sign-in page, whose form is posted back with the
// username and password; the answer sends it to the client with a code,
// which signIn returns, and sets the browser's new session cookie.
func (b *browser) signIn(ctx context.Context, username, password string) (string, loadgen.Outcome) {
	a, err := b.c.Do(ctx, platform.Request{Method: http.MethodGet, URL: b.authorizeURL(""), Header: b.cookies(false)})
	if out := redirected(a, err); out != loadgen.OK {
		return "", out
	}
	to, err := url.Parse(a.Location)
	if err != nil || !strings.HasSuffix(to.Path, "/signin") {
		keepFailure(fmt.Sprintf("authorize without a session sent the browser to %q", a.Location))
		return "", loadgen.Failed
	}
	a, err = b.c.Do(ctx, platform.Request{Method: http.MethodGet, URL: b.c.Query + to.RequestURI(), Header: b.cookies(false)})
	if out := outcome(a, err, http.StatusOK); out != loadgen.OK {
		return "", out
	}
	b.keep(a.Cookies)
	form, err := signinForm(a.Body)
	if err != nil {
		keepFailure(err.Error())
		return "", loadgen.Failed
	}
	form.Set("username", username)
	form.Set("password", password)
	a, err = b.c.Do(ctx, platform.Request{Method: http.MethodPost, URL: b.c.Query + to.Path, Header: b.cookies(false), Body: form})
	if out := outcome(a, err, http.StatusSeeOther); out != loadgen.OK {
		return "", out
	}
	b.keep(a.Cookies)
	code, err := codeOf(a.Location)
	if err != nil {
		keepFailure(err.Error())
		return "", loadgen.Failed
	}
	return code, loadgen.OK
}

// redirected classifies an answer that should be a redirect.
func redirected(a platform.Answer, err error) loadgen.Outcome {
	if err == nil && a.Status >= 300 && a.Status < 400 && a.Location != "" {
		return loadgen.OK
	}
	return outcome(a, err, http.StatusFound)
}

// hiddenInput matches the hidden inputs of the hosted sign-in page, which
// go back with its form as they are.
var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// signinForm returns the hidden inputs of the sign-in page body: the
// sealed request (auth) and the CSRF token at least.
func signinForm(body []byte) (url.Values, error) {
	form := url.Values{}
	for _, m := range hiddenInput.FindAllSubmatch(body, -1) {
		form.Set(string(m[1]), html.UnescapeString(string(m[2])))
	}
	if form.Get("auth") == "" || form.Get("csrf") == "" {
		return nil, fmt.Errorf("no sign-in form in %.200s", body)
	}
	return form, nil
}

// codeOf returns the code of a redirect to the web client.
func codeOf(location string) (string, error) {
	u, err := url.Parse(location)
	if err != nil || !strings.HasPrefix(location, oidcRedirect+"?") {
		return "", fmt.Errorf("redirected to %q, not to the client", location)
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("the client got error %s: %s", e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" {
		return "", fmt.Errorf("redirected to the client without a code: %q", location)
	}
	return code, nil
}

// mintedCode is an authorization code, the browser whose verifier redeems
// it, and when it was issued.
type mintedCode struct {
	code    string
	browser int
	at      time.Time
}

// codeQueue hands out codes oldest first, to any client; a code older
// than maxAge is skipped (and counted), as it may expire before the
// exchange reaches the provider.
type codeQueue struct {
	codes   chan mintedCode
	total   int
	maxAge  time.Duration
	expired atomic.Int64
}

func newCodeQueue(minted [][]mintedCode, maxAge time.Duration) *codeQueue {
	all := slices.Concat(minted...)
	slices.SortFunc(all, func(a, b mintedCode) int { return a.at.Compare(b.at) })
	q := &codeQueue{codes: make(chan mintedCode, len(all)), total: len(all), maxAge: maxAge}
	for _, m := range all {
		q.codes <- m
	}
	return q
}

// next returns the oldest code young enough at now, false when none is
// left.
func (q *codeQueue) next(now time.Time) (mintedCode, bool) {
	for {
		select {
		case m := <-q.codes:
			if now.Sub(m.at) > q.maxAge {
				q.expired.Add(1)
				continue
			}
			return m, true
		default:
			return mintedCode{}, false
		}
	}
}
