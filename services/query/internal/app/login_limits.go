package app

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"math"
	"net/netip"
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
	// DefaultLoginPerAccount is how many password attempts one account
	// may receive per DefaultLoginWindow, from all addresses together.
	DefaultLoginPerAccount = 20
	// DefaultLoginPerAddress is how many password attempts one client
	// address may make per DefaultLoginWindow, to all accounts and tenants
	// together.
	DefaultLoginPerAddress = 300
	// DefaultLoginWindow is the period the limits refill over.
	DefaultLoginWindow = time.Minute
	// maxKeys bounds the buckets kept per limit; see loginLimiter.put.
	maxKeys = 100_000
)

// LoginLimits are the password-attempt rate limits of PasswordLogin: each
// key may spend up to its limit at once (the burst) and gets it back evenly
// over Window (a token bucket). A limit below 1 turns that limit off.
type LoginLimits struct {
	// PerAccount bounds the attempts on one account (tenant and normalised
	// username, whether or not the user exists), from all addresses.
	PerAccount int
	// PerAddress bounds the attempts from one client address (an IPv4
	// address, or the /64 prefix of an IPv6 address: one host usually
	// holds a whole /64), on all accounts of all tenants.
	PerAddress int
	// Window is the period a limit refills over.
	Window time.Duration
}

// DefaultLoginLimits are the limits of an App made without
// WithLoginLimits.
var DefaultLoginLimits = LoginLimits{PerAccount: DefaultLoginPerAccount, PerAddress: DefaultLoginPerAddress, Window: DefaultLoginWindow}

// loginLimiter holds a token bucket per account and per address.
//
// A tenant's own limits (TenantLimits) replace the service's for its
// attempts: its accounts' buckets hold its per-account limit, and when its
// per-address limit or window differs from the service's, an address's
// attempts on that tenant are counted in a bucket of their own rather than
// in the address's shared one, so that a tenant that raises its limit (say,
// for a gateway that logs its users in from one address) spends nobody
// else's budget, and one that lowers it does not shrink anybody else's.
type loginLimiter struct {
	base    LoginLimits
	tenants TenantLimits // nil: no tenant sets its own
	now     func() time.Time
	log     *slog.Logger

	mu        sync.Mutex
	accounts  map[string]bucket
	addresses map[string]bucket
	swept     time.Time
}

// bucket is a token bucket: tokens left at time at, of the limit and
// window it was last refilled by.
type bucket struct {
	tokens float64
	at     time.Time
	limit  int
	window time.Duration
}

func newLoginLimiter(base LoginLimits, tenants TenantLimits, now func() time.Time, log *slog.Logger) *loginLimiter {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &loginLimiter{base: base, tenants: tenants, now: now, log: log, accounts: map[string]bucket{}, addresses: map[string]bucket{}}
}

// limitsOf returns the limits of tenant: the service's, with the tenant's
// own in place of them where it sets any. A tenant's settings that cannot
// be read leave the service's in force: the attempt is limited, never let
// through unlimited nor refused for an outage.
func (l *loginLimiter) limitsOf(ctx context.Context, tenant string) LoginLimits {
	eff := l.base
	if l.tenants == nil {
		return eff
	}
	own, ok, err := l.tenants.LoginLimits(ctx, tenant)
	if err != nil {
		l.log.WarnContext(ctx, "tenant login limits unavailable; using the service's", "tenant", tenant, "error", err.Error())
		return eff
	}
	if !ok {
		return eff
	}
	if own.Window >= time.Second && own.Window != eff.Window {
		// The service's limits the tenant does not set keep their rate
		// over the tenant's window.
		scale := func(n int) int {
			if n < 1 {
				return n // off stays off
			}
			return max(1, int(math.Ceil(float64(n)*float64(own.Window)/float64(eff.Window))))
		}
		eff.PerAccount, eff.PerAddress, eff.Window = scale(eff.PerAccount), scale(eff.PerAddress), own.Window
	}
	if own.PerAccount > 0 {
		eff.PerAccount = own.PerAccount
	}
	if own.PerAddress > 0 {
		eff.PerAddress = own.PerAddress
	}
	return eff
}

// allow reports whether one password attempt from address on username in
// tenant may go ahead, and takes it from both buckets when it may. When it
// may not, it takes nothing and returns how long until it would be allowed.
func (l *loginLimiter) allow(ctx context.Context, tenant, address, username string) (time.Duration, bool) {
	lim := l.limitsOf(ctx, tenant)
	addrKey := addressKey(address)
	if lim.PerAddress != l.base.PerAddress || lim.Window != l.base.Window {
		addrKey = tenant + "\x00" + addrKey
	}
	acctKey := accountKey(tenant, username)

	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) >= l.base.Window {
		l.sweep(now)
	}
	addr, addrOK, addrWait := check(l.addresses, addrKey, lim.PerAddress, lim.Window, now)
	acct, acctOK, acctWait := check(l.accounts, acctKey, lim.PerAccount, lim.Window, now)
	if !addrOK || !acctOK {
		return max(addrWait, acctWait), false
	}
	if lim.PerAddress >= 1 {
		addr.tokens--
		l.put(l.addresses, addrKey, addr)
	}
	if lim.PerAccount >= 1 {
		acct.tokens--
		l.put(l.accounts, acctKey, acct)
	}
	return 0, true
}

// check returns key's bucket refilled to now by limit and window, whether
// it holds an attempt, and when it does not, the wait until it will.
func check(m map[string]bucket, key string, limit int, window time.Duration, now time.Time) (bucket, bool, time.Duration) {
	if limit < 1 {
		return bucket{}, true, 0
	}
	burst := float64(limit)
	rate := burst / window.Seconds() // attempts per second
	b, ok := m[key]
	if !ok {
		b = bucket{tokens: burst, at: now}
	}
	b.tokens = min(burst, b.tokens+max(now.Sub(b.at).Seconds(), 0)*rate)
	b.at, b.limit, b.window = now, limit, window
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
func (l *loginLimiter) put(m map[string]bucket, key string, b bucket) {
	if _, ok := m[key]; !ok && len(m) >= maxKeys {
		l.sweep(b.at)
		if len(m) >= maxKeys {
			clear(m)
		}
	}
	m[key] = b
}

// sweep drops the buckets that are full again at now.
func (l *loginLimiter) sweep(now time.Time) {
	l.swept = now
	for _, m := range []map[string]bucket{l.accounts, l.addresses} {
		for k, b := range m {
			if b.limit < 1 || b.tokens+now.Sub(b.at).Seconds()*float64(b.limit)/b.window.Seconds() >= float64(b.limit) {
				delete(m, k)
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

// addressKey is the per-address bucket key of a client address: the IPv4
// address, or the /64 prefix of an IPv6 address (one host usually holds a
// whole /64). Anything that is not an address is its own key.
func addressKey(address string) string {
	ip, err := netip.ParseAddr(address)
	if err != nil {
		return address
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
