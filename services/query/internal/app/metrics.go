package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// The results of a login, the result label of authstream_logins_total
// (DESIGN section 11.8). Refusals the caller cannot tell apart
// (ErrInvalidCredentials) are told apart here, for operators: a wave of
// "invalid" is credential stuffing, a wave of "locked" its consequence.
const (
	LoginSuccess     = "success"
	LoginInvalid     = "invalid"      // wrong password, unknown user, bad refresh token or client...
	LoginLocked      = "locked"       // the account was locked: refused without comparing
	LoginRateLimited = "rate_limited" // over a login rate limit: 429
	LoginShed        = "shed"         // the password queue was full or the account too contended: 503
	LoginMFARequired = "mfa_required" // the password was right but the user must pass MFA on the hosted page
	LoginError       = "error"        // the service failed (event store down...): 503 or 500
)

// The results of a consistency wait, the result label of
// authstream_consistency_waits_total.
const (
	WaitOK        = "ok"        // the read model had or reached the token's write
	WaitTimeout   = "timeout"   // it did not in time: ErrNotConsistentYet, 503
	WaitInvalid   = "invalid"   // the token is no token this platform issued: 400
	WaitAbandoned = "abandoned" // the request ended while waiting
)

// The results of a client authentication, the result label of
// authstream_client_authentications_total.
const (
	ClientAuthOK      = "ok"
	ClientAuthInvalid = "invalid"
	ClientAuthError   = "error"
)

// loginGrants are the grant labels of logins and issued tokens. The
// password grant's label also counts POST /login; authorization_code
// counts the sign-ins of the hosted login page (the password check of the
// code flow) among the logins, and the codes redeemed among the tokens
// issued, so one browser login is one login and one token issuance.
var loginGrants = []string{GrantPassword, GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}

// loginResults are the values of the result label of logins.
var loginResults = []string{LoginSuccess, LoginInvalid, LoginLocked, LoginRateLimited, LoginShed, LoginMFARequired, LoginError}

// metrics are the query service's domain instruments (DESIGN section
// 11.8). The use cases report to them through the methods below, each
// called once per use case at its end (a deferred call), so that the
// counting is written once per metric, not in every branch of a use case.
// Their labels carry no tenant unless the telemetry's allow-list names it
// (telemetry.WithMetricTenants). The attribute sets of the unlabelled
// series are built once, here: a check adds no allocation for them.
type metrics struct {
	tel *telemetry.Telemetry

	logins      metric.Int64Counter
	lockouts    metric.Int64Counter
	tokens      metric.Int64Counter
	checks      metric.Int64Counter
	cacheHits   metric.Int64Counter
	cacheMisses metric.Int64Counter
	waits       metric.Int64Counter
	waitTime    metric.Float64Histogram
	hashWait    metric.Float64Histogram
	clientAuths metric.Int64Counter

	loginSets  map[[2]string]labelSet // by grant and result
	tokenSets  map[string]labelSet    // by grant
	checkSets  [2]labelSet            // by allowed
	waitSets   map[string]labelSet    // by result
	clientSets map[string]labelSet    // by result
	empty      labelSet
}

// labelSet is a label set with the options of a measurement under it,
// built once: passing a prepared slice to Add allocates nothing, where
// building the option or the variadic slice on each call would.
type labelSet struct {
	set  attribute.Set
	opts []metric.AddOption
}

func newLabelSet(kv ...attribute.KeyValue) labelSet {
	s := attribute.NewSet(kv...)
	return labelSet{set: s, opts: []metric.AddOption{metric.WithAttributeSet(s)}}
}

// newMetrics makes the instruments on t's meter, and reports the password
// pool's queue from pool at each scrape. Every series of a known label set
// starts at zero, so that rates and alerts see it before its first event.
func newMetrics(t *telemetry.Telemetry, pool *Pool) (*metrics, error) {
	meter := t.Meter()
	m := &metrics{tel: t, empty: newLabelSet()}
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc string, bounds ...float64) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		return h
	}
	m.logins = counter("authstream.logins",
		"Logins by grant and result: success, invalid, locked, rate_limited, shed, mfa_required, error.")
	m.lockouts = counter("authstream.lockouts",
		"Accounts locked by a run of failed logins.")
	m.tokens = counter("authstream.tokens.issued",
		"Token responses issued (an access token, with a refresh or ID token when the grant gives them), by grant.")
	m.checks = counter("authstream.checks",
		"Permission checks answered (POST /check), by answer.")
	m.cacheHits = counter("authstream.check.cache.hits",
		"Permission checks answered from the permission cache alone.")
	m.cacheMisses = counter("authstream.check.cache.misses",
		"Permission checks that read the read model (the user or the tenant's roles were not cached).")
	m.waits = counter("authstream.consistency.waits",
		"Requests that carried a Consistency-Token, by result: ok, timeout, invalid, abandoned.")
	m.clientAuths = counter("authstream.client.authentications",
		"Client authentications at the token, introspection and revocation endpoints, by result: ok, invalid, error.")
	m.waitTime = histogram("authstream.consistency.wait",
		"Time requests with a Consistency-Token waited for the read model.",
		0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
	m.hashWait = histogram("authstream.password.hash.wait",
		"Time a password comparison waited in the queue for a free core.",
		0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
	_, err := meter.Int64ObservableGauge("authstream.password.hash.queue",
		metric.WithDescription("Password comparisons waiting for a free core; when the queue is full, logins are shed."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(pool.Waiting()))
			return nil
		}))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}

	ctx := context.Background()
	m.loginSets = map[[2]string]labelSet{}
	m.tokenSets = map[string]labelSet{}
	for _, g := range loginGrants {
		for _, r := range loginResults {
			l := newLabelSet(attribute.String("grant", g), attribute.String("result", r))
			m.loginSets[[2]string{g, r}] = l
			m.logins.Add(ctx, 0, l.opts...)
		}
		m.tokenSets[g] = newLabelSet(attribute.String("grant", g))
		m.tokens.Add(ctx, 0, m.tokenSets[g].opts...)
	}
	for i, allowed := range []bool{false, true} {
		m.checkSets[i] = newLabelSet(attribute.String("allowed", strconv.FormatBool(allowed)))
		m.checks.Add(ctx, 0, m.checkSets[i].opts...)
	}
	m.waitSets = map[string]labelSet{}
	for _, r := range []string{WaitOK, WaitTimeout, WaitInvalid, WaitAbandoned} {
		m.waitSets[r] = newLabelSet(attribute.String("result", r))
		m.waits.Add(ctx, 0, m.waitSets[r].opts...)
	}
	m.clientSets = map[string]labelSet{}
	for _, r := range []string{ClientAuthOK, ClientAuthInvalid, ClientAuthError} {
		m.clientSets[r] = newLabelSet(attribute.String("result", r))
		m.clientAuths.Add(ctx, 0, m.clientSets[r].opts...)
	}
	for _, c := range []metric.Int64Counter{m.lockouts, m.cacheHits, m.cacheMisses} {
		c.Add(ctx, 0, m.empty.opts...)
	}
	return m, nil
}

// with returns the options that label a measurement of tenant with l,
// plus the tenant label when the allow-list names tenant.
func (m *metrics) with(tenant string, l labelSet) []metric.AddOption {
	kv, ok := m.tel.MetricTenant(tenant)
	if !ok {
		return l.opts
	}
	return []metric.AddOption{metric.WithAttributes(append(l.set.ToSlice(), kv)...)}
}

// login counts a login of grant in tenant that ended with err, and the
// token response a successful one issued when tokens is true (every grant
// but the hosted page's sign-in, which issues a code).
func (m *metrics) login(ctx context.Context, grant, tenant string, err error, tokens bool) {
	result := loginResult(err)
	m.logins.Add(ctx, 1, m.with(tenant, m.loginSets[[2]string{grant, result}])...)
	if err == nil && tokens {
		m.issued(ctx, grant, tenant)
	}
}

// issued counts a token response of grant.
func (m *metrics) issued(ctx context.Context, grant, tenant string) {
	m.tokens.Add(ctx, 1, m.with(tenant, m.tokenSets[grant])...)
}

// loginResult classifies a login's error for the result label.
func loginResult(err error) string {
	switch {
	case err == nil:
		return LoginSuccess
	case errors.Is(err, domain.ErrLocked):
		return LoginLocked
	case errors.Is(err, ErrBusy), errors.Is(err, errTooContended):
		return LoginShed
	case errors.Is(err, ErrMFARequired), errors.Is(err, ErrMFAEnrolmentRequired):
		return LoginMFARequired
	}
	switch fault.CodeOf(err) {
	case fault.TooMany:
		return LoginRateLimited
	case fault.Unauthenticated, fault.Invalid, fault.Forbidden, fault.NotFound:
		return LoginInvalid
	case fault.Conflict, fault.Unprocessable, fault.Unavailable, fault.Internal:
		return LoginError
	}
	return LoginError // a code this build does not know
}

// lockout counts an account locked by a run of failures.
func (m *metrics) lockout(ctx context.Context, tenant string) {
	m.lockouts.Add(ctx, 1, m.with(tenant, m.empty)...)
}

// check counts a check's answer and whether the cache alone gave it.
func (m *metrics) check(ctx context.Context, tenant string, allowed, cached bool) {
	i := 0
	if allowed {
		i = 1
	}
	m.checks.Add(ctx, 1, m.with(tenant, m.checkSets[i])...)
	cache := m.cacheMisses
	if cached {
		cache = m.cacheHits
	}
	cache.Add(ctx, 1, m.with(tenant, m.empty)...)
}

// consistencyWait counts a request's wait for its consistency token, and
// records how long it waited unless the token was refused unread.
func (m *metrics) consistencyWait(ctx context.Context, tenant string, err error, waited time.Duration) {
	result := WaitOK
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalidConsistencyToken):
		result = WaitInvalid
	case errors.Is(err, ErrNotConsistentYet):
		result = WaitTimeout
	default:
		result = WaitAbandoned
	}
	m.waits.Add(ctx, 1, m.with(tenant, m.waitSets[result])...)
	if result != WaitInvalid {
		m.waitTime.Record(ctx, waited.Seconds())
	}
}

// clientAuthenticated counts a client authentication that ended with err.
func (m *metrics) clientAuthenticated(ctx context.Context, tenant string, err error) {
	result := ClientAuthOK
	switch fault.CodeOf(err) {
	case "":
	case fault.Unauthenticated, fault.Invalid, fault.NotFound:
		result = ClientAuthInvalid
	case fault.Conflict, fault.Forbidden, fault.Unprocessable, fault.TooMany, fault.Unavailable, fault.Internal:
		result = ClientAuthError
	default: // a code this build does not know
		result = ClientAuthError
	}
	m.clientAuths.Add(ctx, 1, m.with(tenant, m.clientSets[result])...)
}

// hashed runs fn on the password pool and records how long it waited
// there for a core: the time from the call to fn's start.
func (m *metrics) hashed(ctx context.Context, pool *Pool, fn func()) error {
	start := time.Now()
	return pool.Do(ctx, func() {
		m.hashWait.Record(ctx, time.Since(start).Seconds())
		fn()
	})
}
