package oauth

import (
	"crypto/sha256"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/authn"
)

// Default login rate limits. The lockout of the sign-in aggregate (five
// failures, then an escalating lock) remains the defence of an account's
// password; these limits keep a flood of password attempts from spending
// the service's bcrypt CPU, and keep one client from locking many accounts
// in a burst. docs/security.md explains the figures.
const (
	// DefaultPerAccount is how many password attempts one account (tenant
	// and normalised username, whether or not the user exists) may receive
	// per DefaultWindow, from all addresses together.
	DefaultPerAccount = 20
	// DefaultPerAddress is how many password attempts one client address
	// (an IPv4 address, or the /64 prefix of an IPv6 address) may make per
	// DefaultWindow, to all accounts and tenants together.
	DefaultPerAddress = 300
	// DefaultWindow is the period the limits refill over.
	DefaultWindow = time.Minute
	// maxKeys bounds the buckets kept per limit; see limiter.bucket.
	maxKeys = 100_000
)

// Limits are the password-attempt rate limits of the token and login
// endpoints: each key may spend up to its limit at once (the burst) and
// gets it back evenly over Window (a token bucket). A limit below 1
// disables that limit.
type Limits struct {
	PerAccount int
	PerAddress int
	Window     time.Duration
}

// DefaultLimits are the limits of a Handler made without WithLimits.
var DefaultLimits = Limits{PerAccount: DefaultPerAccount, PerAddress: DefaultPerAddress, Window: DefaultWindow}

// Option changes optional behaviour of a Handler.
type Option func(*Handler)

// WithLimits replaces DefaultLimits. A Window below one second is taken as
// DefaultWindow.
func WithLimits(l Limits) Option {
	return func(h *Handler) {
		if l.Window < time.Second {
			l.Window = DefaultWindow
		}
		h.limits = newLimiter(l, h.limits.now)
	}
}

// WithClock sets the clock the rate limits refill by (tests).
func WithClock(now func() time.Time) Option {
	return func(h *Handler) {
		if now != nil {
			h.limits.now = now
		}
	}
}

// limiter holds a token bucket per account and per address.
type limiter struct {
	mu        sync.Mutex
	cfg       Limits
	now       func() time.Time
	accounts  map[string]bucket
	addresses map[string]bucket
	swept     time.Time
}

// bucket is a token bucket: tokens left at time at.
type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	return &limiter{cfg: l, now: now, accounts: map[string]bucket{}, addresses: map[string]bucket{}}
}

// allow reports whether one password attempt of address on account may go
// ahead, and takes it from both buckets when it may. When it may not, it
// takes nothing and returns how long until it would be allowed.
func (l *limiter) allow(address, account string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) >= l.cfg.Window {
		l.sweep(now)
	}
	addr, addrOK, addrWait := l.check(l.addresses, address, l.cfg.PerAddress, now)
	acct, acctOK, acctWait := l.check(l.accounts, account, l.cfg.PerAccount, now)
	if !addrOK || !acctOK {
		return false, max(addrWait, acctWait)
	}
	if l.cfg.PerAddress >= 1 {
		addr.tokens--
		l.put(l.addresses, address, addr)
	}
	if l.cfg.PerAccount >= 1 {
		acct.tokens--
		l.put(l.accounts, account, acct)
	}
	return true, 0
}

// check returns key's bucket refilled to now, whether it holds an attempt,
// and when it does not, the wait until it will.
func (l *limiter) check(m map[string]bucket, key string, limit int, now time.Time) (bucket, bool, time.Duration) {
	if limit < 1 {
		return bucket{}, true, 0
	}
	burst := float64(limit)
	rate := burst / l.cfg.Window.Seconds() // attempts per second
	b, ok := m[key]
	if !ok {
		b = bucket{tokens: burst, at: now}
	}
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = min(burst, b.tokens+elapsed*rate)
	}
	b.at = now
	if b.tokens >= 1 {
		return b, true, 0
	}
	return b, false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// put stores b under key. The maps are bounded: when one is full, buckets
// that have refilled completely are dropped (they hold nothing a new
// bucket would not), and if that is not enough the map starts afresh.
// Failing open there is deliberate: a spray of distinct usernames must not
// grow memory without bound, and the sign-in lockout still stands.
func (l *limiter) put(m map[string]bucket, key string, b bucket) {
	if _, ok := m[key]; !ok && len(m) >= maxKeys {
		l.sweep(b.at)
		if len(m) >= maxKeys {
			clear(m)
		}
	}
	m[key] = b
}

// sweep drops the buckets that are full again at now.
func (l *limiter) sweep(now time.Time) {
	l.swept = now
	for _, s := range []struct {
		m     map[string]bucket
		limit int
	}{{l.accounts, l.cfg.PerAccount}, {l.addresses, l.cfg.PerAddress}} {
		rate := float64(s.limit) / l.cfg.Window.Seconds()
		for k, b := range s.m {
			if b.tokens+now.Sub(b.at).Seconds()*rate >= float64(s.limit) {
				delete(s.m, k)
			}
		}
	}
}

// accountKey is the per-account bucket key: a hash of the tenant and the
// normalised username (the raw one when it does not normalise; such a
// login fails anyway, after a dummy bcrypt comparison). Hashing bounds the
// memory of a key whatever the username's length.
func accountKey(tenant, username string) string {
	if key, err := authn.NormalizeUsername(username); err == nil {
		username = key
	}
	sum := sha256.Sum256([]byte(tenant + "\x00" + username))
	return string(sum[:])
}

// addressKey is the per-address bucket key: the IPv4 address, or the /64
// prefix of an IPv6 address (one host usually holds a whole /64).
func addressKey(r *http.Request) string {
	host := clientAddr(r)
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// errTooManyAttempts is the description of a rate-limited attempt.
const errTooManyAttempts = "too many login attempts; retry after the time in Retry-After"

// writeTooMany answers a rate-limited password attempt: 429 with
// Retry-After (whole seconds, at least 1) and an RFC 6749 error body.
// RFC 6749 defines no code for it at the token endpoint;
// temporarily_unavailable is the one clients already handle as "retry
// later", and the one this endpoint answers when bcrypt is saturated.
func writeTooMany(w http.ResponseWriter, wait time.Duration) {
	secs := max(1, int((wait+time.Second-1)/time.Second))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, ErrorBody{Error: ErrTemporarilyUnavailable, Description: errTooManyAttempts})
}

// limited applies the rate limits to a password attempt of username in
// tenant; it answers and returns true when the attempt must not go ahead.
func (h *Handler) limited(w http.ResponseWriter, r *http.Request, tenant, username string) bool {
	ok, wait := h.limits.allow(addressKey(r), accountKey(tenant, username))
	if ok {
		return false
	}
	// Debug only: under a flood every refusal would otherwise be a line.
	h.log.DebugContext(r.Context(), "login attempt rate-limited", "tenant", tenant,
		"address", addressKey(r), "retry_after", wait.String())
	writeTooMany(w, wait)
	return true
}
