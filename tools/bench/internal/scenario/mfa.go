package scenario

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authn/passkeytest"
	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// mfaRedirect is the redirect URI of the benchmark's client: never
// contacted, the browser stops at it.
const mfaRedirect = "https://app.bench.example/callback"

// mfaCost is the bcrypt cost of the MFA scenario's sign-ins: the
// platform's default, which a real deployment pays.
const mfaCost = 12

// passkeyPool is how many passkey accounts each client of the MFA
// scenario takes turns over.
const passkeyPool = 16

// replayTrials is how many times the replay part submits one code twice
// at once.
const replayTrials = 1000

// runMFA measures hosted sign-ins on the login page, the password alone,
// the password then a TOTP code, and the password then a passkey (a
// software authenticator's assertion), against the bcrypt bound of the
// same run (cores ÷ one comparison at cost 12): a factor's cost is its
// rate short of the password's. A code passes once per account and
// step, so every TOTP sign-in uses an account of its own. Then, on the
// cheap-hash platform, it runs replayTrials trials that submit one valid
// code in two sign-ins at once and counts the double acceptances (there
// must be none).
func runMFA(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, Setup{Cost: mfaCost})
	if err != nil {
		return err
	}
	one := bcryptTime(mfaCost)
	bound := float64(platform.Cores()) / one.Seconds()
	counts := e.clients(1, 8)
	window := time.Duration(len(counts)) * (e.opts.Warmup + e.opts.Duration + 5*time.Second)
	need := int(bound*window.Seconds()*1.3) + 2*slices.Max(counts)
	site, err := newSite(ctx, e, p, "mfa-12", need, 2*slices.Max(counts), passkeyPool*slices.Max(counts))
	if err != nil {
		return err
	}
	passwordRate := map[int]float64{} // by client count
	// The TOTP accounts are handed out once over all the runs: a code
	// passes once per account and step. A passkey passes again with a new
	// ceremony, so each client takes turns over passkeyPool passkey
	// accounts of its own: never two sign-ins of one account at once (the
	// later ceremony passing first would refuse the earlier one), and each
	// account well under the per-account rate limit.
	var nextTOTP atomic.Int64
	for _, mode := range []string{"password", "totp", "passkey"} {
		withCode, withPasskey := mode == "totp", mode == "passkey"
		if withPasskey && len(site.passkey) == 0 {
			e.logf("passkeys are unavailable (public URL %s): no passkey rows", p.PublicURL)
			continue
		}
		for _, clients := range counts {
			one = bcryptTime(mfaCost)
			bound = float64(platform.Cores()) / one.Seconds()
			warmup := max(e.opts.Warmup, time.Duration(float64(clients)/float64(platform.Cores())*1.5*float64(one)))
			browsers := make([]*platform.Client, clients)
			for c := range browsers {
				browsers[c] = p.From(nextSource())
			}
			var turn atomic.Int64
			turns := make([]int, clients) // each client's own: loadgen calls a client from one goroutine
			name := "hosted sign-in bcrypt 12, password"
			switch {
			case withCode:
				name = "hosted sign-in bcrypt 12, password + TOTP"
			case withPasskey:
				name = "hosted sign-in bcrypt 12, password + passkey"
			}
			stop := e.profile(fmt.Sprintf("mfa-%s-c%d", mode, clients))
			res := loadgen.Run(ctx, loadgen.Config{Clients: clients, Warmup: warmup, Duration: e.opts.Duration},
				func(ctx context.Context, c int) loadgen.Outcome {
					n := int(turn.Add(1)) - 1
					u, code := site.plain[n%len(site.plain)], ""
					if withCode {
						n = int(nextTOTP.Add(1)) - 1
						if n >= len(site.totp) {
							keepFailure("out of enrolled accounts")
							return loadgen.Failed
						}
						u = site.totp[n]
						code = u.code(time.Now().Add(authn.TOTPPeriod * time.Second))
					}
					if withPasskey {
						u = site.passkey[(turns[c]%passkeyPool)*clients+c]
						turns[c]++
					}
					return site.signIn(ctx, browsers[c], u, code)
				})
			stop()
			for _, b := range browsers {
				b.Close()
			}
			row := fromResult(name, res)
			row.Bound, row.Ratio = rateBound(bound), row.Rate/bound
			steps := ""
			switch {
			case withCode:
				steps = ", code form"
			case withPasskey:
				steps = ", passkey form (a software authenticator's ES256 assertion)"
			}
			row.Notes = fmt.Sprintf("bound: %d cores / one bcrypt %s; each sign-in: authorize, page, password form%s, to the code", platform.Cores(), formatDuration(one), steps)
			if withCode || withPasskey {
				step := site.codeStepMedian()
				row.Notes += fmt.Sprintf("; the %s form's post takes %s (p50, queueing included), %.1f%% of one bcrypt",
					map[bool]string{false: "code", true: "passkey"}[withPasskey], formatDuration(step), 100*step.Seconds()/one.Seconds())
				if r := passwordRate[clients]; r > 0 {
					row.Notes += fmt.Sprintf("; rate %+.1f%% against the password alone", 100*(row.Rate/r-1))
				}
			}
			e.add(row)
			if mode == "password" {
				passwordRate[clients] = row.Rate
			}
		}
	}
	return runReplayTrials(ctx, e)
}

// runReplayTrials submits one valid code in two sign-ins at once,
// replayTrials times, each on an account of its own, on the cheap-hash
// platform, and adds a row with the double acceptances.
func runReplayTrials(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	site, err := newSite(ctx, e, p, "mfa-replay", replayTrials, 0, 0)
	if err != nil {
		return err
	}
	e.logf("running %d replay trials", replayTrials)
	var (
		next                     atomic.Int64
		doubles, singles, noneOK atomic.Uint64
		wg                       sync.WaitGroup
		first                    atomic.Pointer[error]
	)
	start := time.Now()
	for range 2 * platform.Cores() {
		wg.Go(func() {
			for {
				n := int(next.Add(1)) - 1
				if n >= replayTrials || ctx.Err() != nil {
					return
				}
				passed, err := site.replayTrial(ctx, p, site.totp[n])
				if err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
				switch passed {
				case 1:
					singles.Add(1)
				case 0:
					noneOK.Add(1)
				default:
					doubles.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return *err
	}
	took := time.Since(start)
	e.add(Row{Scenario: "TOTP code submitted twice at once", Clients: 2, Rate: float64(replayTrials) / took.Seconds(),
		Errors: doubles.Load() + noneOK.Load(), Bound: "0 double", Ratio: float64(doubles.Load()),
		Notes: fmt.Sprintf("%d trials (each two sign-ins to the code form, then one code posted by both at once): %d double acceptances, %d with exactly one, %d with none",
			replayTrials, doubles.Load(), singles.Load(), noneOK.Load())})
	return nil
}

// mfaUser is an account of the scenario; secret is its TOTP seed, "" for
// none; passkey its passkey, nil for none.
type mfaUser struct {
	name, secret string
	passkey      *passkeytest.Credential
}

func (u mfaUser) code(at time.Time) string {
	c, err := authn.TOTPCode(u.secret, at)
	if err != nil {
		panic(err) // the seed is the platform's own base32
	}
	return c
}

// site is a tenant with a public client of the hosted page, accounts with
// a confirmed TOTP factor and accounts without.
type site struct {
	tenant, client string
	query          string
	totp, plain    []mfaUser
	passkey        []mfaUser
	authr          *passkeytest.Authenticator

	mu        sync.Mutex
	codeSteps []time.Duration // how long each code form's post took
}

// codeStepMedian returns the median time of the code forms' posts so far
// and forgets them.
func (s *site) codeStepMedian() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.codeSteps) == 0 {
		return 0
	}
	slices.Sort(s.codeSteps)
	m := s.codeSteps[len(s.codeSteps)/2]
	s.codeSteps = nil
	return m
}

// newSite creates tenant with its client, totp accounts enrolled (by the
// admin, with a code computed here), plain accounts without a factor and,
// when the public URL allows them, passkey accounts holding a passkey of a
// software authenticator (registered by the admin).
func newSite(ctx context.Context, e *Env, p *platform.Platform, tenant string, totp, plain, passkeys int) (*site, error) {
	set, err := newTenant(ctx, p, tenant)
	if err != nil {
		return nil, err
	}
	admin := &set.admin
	reg, err := p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: p.Command + "/t/" + tenant + "/clients", Bearer: admin.AdminToken,
		Body: map[string]any{"name": "bench", "type": "public", "redirect_uris": []string{mfaRedirect}}}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	var cl struct {
		ID string `json:"client_id"`
	}
	if err := reg.Decode(&cl); err != nil {
		return nil, err
	}
	e.logf("registering %d accounts with TOTP, %d without a factor and %d with a passkey in %s", totp, plain, passkeys, tenant)
	names, ids := make([]string, totp+plain+passkeys), make([]string, totp+plain+passkeys)
	if err := registerAll(ctx, p.Client, admin, names, ids, nil, platform.Cores()*2); err != nil {
		return nil, err
	}
	s := &site{tenant: tenant, client: cl.ID, query: p.Query}
	secrets := make([]string, totp)
	var (
		wg    sync.WaitGroup
		first atomic.Pointer[error]
		next  atomic.Int64
	)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= totp || ctx.Err() != nil {
					return
				}
				secret, err := enrolTOTP(ctx, p, admin.AdminToken, tenant, ids[i])
				if err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
				secrets[i] = secret
			}
		})
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return nil, *err
	}
	for i, n := range names[:totp+plain] {
		if i < totp {
			s.totp = append(s.totp, mfaUser{name: n, secret: secrets[i]})
		} else {
			s.plain = append(s.plain, mfaUser{name: n})
		}
	}
	s.authr = passkeytest.New(p.PublicURL)
	for i := totp + plain; i < len(names); i++ {
		cred, err := enrolPasskey(ctx, p, s.authr, admin.AdminToken, tenant, ids[i])
		if errors.Is(err, errPasskeysUnavailable) {
			break
		}
		if err != nil {
			return nil, err
		}
		s.passkey = append(s.passkey, mfaUser{name: names[i], passkey: cred})
	}
	// The client must be in the read model before the first sign-in.
	if _, err := p.Expect(ctx, platform.Request{Method: http.MethodGet, URL: p.Query + "/t/" + tenant + "/clients/" + cl.ID,
		Bearer: admin.AdminToken, Consistency: reg.Token}, http.StatusOK); err != nil {
		return nil, err
	}
	return s, nil
}

// enrolTOTP enrols a TOTP factor for user as the tenant's admin and
// confirms it with the current code; it returns the seed.
func enrolTOTP(ctx context.Context, p *platform.Platform, admin, tenant, user string) (string, error) {
	base := p.Command + "/t/" + tenant + "/users/" + user + "/mfa/totp"
	a, err := p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: base, Bearer: admin}, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var key struct {
		Secret string `json:"secret"`
	}
	if err := a.Decode(&key); err != nil {
		return "", err
	}
	code := mfaUser{secret: key.Secret}.code(time.Now())
	_, err = p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: base + "/verify", Bearer: admin, Body: map[string]string{"code": code}}, http.StatusNoContent)
	return key.Secret, err
}

// errPasskeysUnavailable: the platform's public URL cannot be a WebAuthn
// relying party (an IP address).
var errPasskeysUnavailable = errors.New("passkeys unavailable")

// enrolPasskey registers a passkey of a for user as the tenant's admin and
// returns it.
func enrolPasskey(ctx context.Context, p *platform.Platform, a *passkeytest.Authenticator, admin, tenant, user string) (*passkeytest.Credential, error) {
	base := p.Command + "/t/" + tenant + "/users/" + user + "/mfa/webauthn"
	begun, err := p.Do(ctx, platform.Request{Method: http.MethodPost, URL: base, Bearer: admin})
	if err != nil {
		return nil, err
	}
	if begun.Status == http.StatusConflict && strings.Contains(string(begun.Body), "passkeys-unavailable") {
		return nil, errPasskeysUnavailable
	}
	if begun.Status != http.StatusCreated {
		return nil, fmt.Errorf("POST %s = %d %.200s", base, begun.Status, begun.Body)
	}
	var creation struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := begun.Decode(&creation); err != nil {
		return nil, err
	}
	attestation, cred, err := a.Create(creation.PublicKey)
	if err != nil {
		return nil, err
	}
	_, err = p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: base + "/verify", Bearer: admin,
		Body: map[string]any{"credential": json.RawMessage(attestation)}}, http.StatusCreated)
	return cred, err
}

// cookieBrowser is a cookie jar over c's connections that follows no
// redirect.
func cookieBrowser(c *platform.Client) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: c.HTTP.Transport, Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn runs one hosted sign-in of u from c: the password, then code on
// the code form when code is not "", or u's passkey on the passkey form
// when u holds one. It succeeds when the browser is sent back to the
// client with a code.
func (s *site) signIn(ctx context.Context, c *platform.Client, u mfaUser, code string) loadgen.Outcome {
	b := cookieBrowser(c)
	form, _, err := s.toPasswordForm(ctx, b)
	if err != nil {
		keepFailure(err.Error())
		return loadgen.Failed
	}
	form.Set("username", u.name)
	form.Set("password", userPassword)
	page, status, location, err := send(ctx, b, http.MethodPost, s.signinURL(), form)
	if err == nil && (code != "" || u.passkey != nil) {
		if u.passkey != nil {
			form, err = s.passkeyForm(page, status, u.passkey)
		} else if form, err = codeForm(page, status); err == nil {
			form.Set("code", code)
		}
		if err == nil {
			t0 := time.Now()
			_, status, location, err = send(ctx, b, http.MethodPost, s.signinURL(), form)
			s.mu.Lock()
			s.codeSteps = append(s.codeSteps, time.Since(t0))
			s.mu.Unlock()
		}
	}
	switch {
	case err != nil:
		keepFailure(err.Error())
		return loadgen.Failed
	case status == http.StatusSeeOther && strings.HasPrefix(location, mfaRedirect) && strings.Contains(location, "code="):
		return loadgen.OK
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		keepFailure(fmt.Sprintf("%d %.120s", status, page))
		return loadgen.Shed
	}
	keepFailure(fmt.Sprintf("sign-in ended at %d %q %s", status, location, alert(page)))
	return loadgen.Failed
}

// replayTrial brings two sign-ins of u to the code form, then posts one
// code on both at once, and returns how many passed.
func (s *site) replayTrial(ctx context.Context, p *platform.Platform, u mfaUser) (int, error) {
	c := p.From(nextSource())
	defer c.Close()
	var forms [2]url.Values
	var bs [2]*http.Client
	for i := range forms {
		bs[i] = cookieBrowser(c)
		form, _, err := s.toPasswordForm(ctx, bs[i])
		if err != nil {
			return 0, err
		}
		form.Set("username", u.name)
		form.Set("password", userPassword)
		page, status, _, err := send(ctx, bs[i], http.MethodPost, s.signinURL(), form)
		if err != nil {
			return 0, err
		}
		if forms[i], err = codeForm(page, status); err != nil {
			return 0, err
		}
	}
	code := u.code(time.Now().Add(authn.TOTPPeriod * time.Second))
	var (
		passed atomic.Int64
		wg     sync.WaitGroup
		gate   = make(chan struct{})
		errs   [2]error
	)
	for i := range forms {
		forms[i].Set("code", code)
		wg.Go(func() {
			<-gate
			page, status, location, err := send(ctx, bs[i], http.MethodPost, s.signinURL(), forms[i])
			switch {
			case err != nil:
				errs[i] = err
			case status == http.StatusSeeOther && strings.HasPrefix(location, mfaRedirect):
				passed.Add(1)
			case status != http.StatusOK || !strings.Contains(page, "Incorrect code."):
				errs[i] = fmt.Errorf("code post = %d %.200s", status, page)
			}
		})
	}
	close(gate)
	wg.Wait()
	return int(passed.Load()), errors.Join(errs[:]...)
}

func (s *site) signinURL() string { return s.query + "/t/" + s.tenant + "/signin" }

// toPasswordForm starts an authorization of the site's client and loads
// its hosted page, and returns the page's hidden inputs.
func (s *site) toPasswordForm(ctx context.Context, b *http.Client) (url.Values, int, error) {
	verifier := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("bench verifier %d padded to length", time.Now().UnixNano())))
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {s.client}, "redirect_uri": {mfaRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"st"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	_, status, location, err := send(ctx, b, http.MethodGet, s.query+"/t/"+s.tenant+"/oauth/authorize?"+q.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	if status/100 != 3 || location == "" {
		return nil, status, fmt.Errorf("authorize = %d", status)
	}
	// The page is named under the public URL: the same path on the query
	// service's own address.
	u, err := url.Parse(location)
	if err != nil {
		return nil, 0, err
	}
	page, status, _, err := send(ctx, b, http.MethodGet, s.query+u.RequestURI(), nil)
	if err != nil {
		return nil, 0, err
	}
	if status != http.StatusOK {
		return nil, status, fmt.Errorf("sign-in page = %d %.200s", status, page)
	}
	return hidden(page), status, nil
}

// codeForm returns the hidden inputs of the code form that page must be.
func codeForm(page string, status int) (url.Values, error) {
	if status != http.StatusOK || !strings.Contains(page, `name="code"`) {
		return nil, fmt.Errorf("after the password = %d %.200s, want the code form", status, page)
	}
	return hidden(page), nil
}

var passkeyFormRE = regexp.MustCompile(`(?s)<form method="post" action="signin" id="passkey-form">.*?</form>`)

// passkeyForm returns the passkey form that page must hold, answered with
// cred by the site's authenticator.
func (s *site) passkeyForm(page string, status int, cred *passkeytest.Credential) (url.Values, error) {
	m := passkeyFormRE.FindString(page)
	if status != http.StatusOK || m == "" {
		return nil, fmt.Errorf("after the password = %d %.200s, want the passkey form", status, page)
	}
	form := hidden(m)
	assertion, err := s.authr.Get([]byte(form.Get("options")), cred)
	if err != nil {
		return nil, err
	}
	form.Set("assertion", string(assertion))
	return form, nil
}

// alert returns the message a page shows, or its start.
func alert(page string) string {
	if m := alertMessage.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	var inputs []string
	for _, m := range namedInput.FindAllStringSubmatch(page, -1) {
		inputs = append(inputs, m[1])
	}
	return fmt.Sprintf("a page without a message, inputs %v", inputs)
}

var namedInput = regexp.MustCompile(`<input [^>]*name="([a-z_]+)"`)

var alertMessage = regexp.MustCompile(`role="alert">([^<]*)<`)

func hidden(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// send sends one browser request (a form when form is not nil) and returns
// the page, the status and the Location.
func send(ctx context.Context, b *http.Client, method, target string, form url.Values) (string, int, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return "", 0, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.Do(req)
	if err != nil {
		return "", 0, "", err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return string(raw), res.StatusCode, res.Header.Get("Location"), err
}
