package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// SignUpUser is a person creating their own account on a tenant's hosted
// sign-up page (ADR 0019): nobody is authenticated, the tenant's setting
// self_signup decides. The username and the profile's address are Email,
// normalised as profiles normalise addresses.
type SignUpUser struct {
	Tenant   string
	Email    string
	Password string
}

// The refusals of a sign-up.
var (
	// ErrSignupClosed: the tenant does not take sign-ups (its setting
	// self_signup is off), is disabled, or does not exist; the three read
	// the same.
	ErrSignupClosed = fault.New(fault.NotFound, "signup-closed", "this organisation does not take sign-ups")
	// ErrSignupRateLimited: the tenant took as many sign-ups as it may in
	// the current minute.
	ErrSignupRateLimited = fault.New(fault.TooMany, "signup-rate-limited", "too many sign-ups, retry in a minute")
)

// DefaultSignupsPerMinute bounds the sign-ups one command service takes
// for one tenant in a minute (WithSignupRate).
const DefaultSignupsPerMinute = 60

// WithSignupRate sets how many sign-ups one command service takes for one
// tenant in a minute (default DefaultSignupsPerMinute), whoever asks: the
// bound a flood of automated sign-ups meets even when it comes from many
// addresses or straight to the command service.
func WithSignupRate(perMinute int) Option {
	return func(o *options) error {
		if perMinute < 1 || perMinute > 100000 {
			return errors.New("sign-ups per minute must be between 1 and 100000")
		}
		o.signupRate = perMinute
		return nil
	}
}

type signUpUserHandler struct {
	e      *engine
	limits *signupLimits
}

// Handle registers the person, with user.registered marked self_signup,
// when the address is no username of the tenant yet. An address that is
// one already answers as a new one does (nil, after the same work: a
// password hash and one append refused by the username's claim) and
// changes nothing, so that the answer tells nobody which addresses hold an
// account. The errors: ErrSignupClosed, ErrSignupRateLimited,
// domain.ErrInvalidEmail, the password policy's (fault.Invalid), and the
// store's.
func (h signUpUserHandler) Handle(ctx context.Context, cmd SignUpUser) (Result, error) {
	email, err := domain.NormalizeEmail(cmd.Email)
	if err != nil {
		return Result{}, err
	}
	key, err := authn.NormalizeUsername(email)
	if err != nil {
		// The person typed an address, not a username.
		return Result{}, domain.ErrInvalidEmail
	}
	if err := h.e.validatePassword(cmd.Password); err != nil {
		return Result{}, err
	}
	if !h.limits.allow(cmd.Tenant, h.e.now()) {
		return Result{}, ErrSignupRateLimited
	}
	userID := unitofwork.NewID(nil, "user")
	// The person is the actor of their own registration: nobody else
	// asked for it.
	actor := events.Actor{Tenant: cmd.Tenant, Sub: userID}
	var sealed events.Sealed
	var name domain.Name
	res, err := h.e.run(ctx, Request{}, actor, nil, func(ctx context.Context, u unit) (Result, error) {
		t, err := u.tenant(ctx, cmd.Tenant)
		if err != nil {
			return Result{}, closedUnlessFailed(err)
		}
		if t.RequireActive() != nil || !t.Settings().SelfSignupEnabled() {
			return Result{}, ErrSignupClosed
		}
		usr, err := u.user(ctx, cmd.Tenant, userID)
		if err != nil {
			return Result{}, err
		}
		profile, err := domain.NewProfile(email, "", "", nil, userProfilePolicy(t))
		if err != nil {
			return Result{}, err
		}
		if name.Claim == "" {
			if name, err = h.e.sealName(ctx, cmd.Tenant, userID, email, key); err != nil {
				if errors.Is(err, ErrUsernameTaken) {
					// A username registered before usernames were sealed
					// is refused before any hash: one is spent anyway,
					// so that the time does not tell it apart.
					_, _ = h.e.hasher.Hash(cmd.Password)
				}
				return Result{}, err
			}
		}
		if sealed.IsZero() {
			if sealed, err = h.e.seal(cmd.Tenant, userID, cmd.Password); err != nil {
				return Result{}, err
			}
		}
		if err := usr.SignUp(name, sealed, profile); err != nil {
			return Result{}, err
		}
		res, err := u.Commit(ctx, []domain.Aggregate{usr}, usernameClaim(cmd.Tenant, usr, false))
		if err != nil {
			return Result{}, err
		}
		return Result{ID: userID, Version: usr.Version(), Sequence: res.Sequence, Changed: true}, nil
	})
	if errors.Is(err, ErrUsernameTaken) {
		// The address holds an account: the same answer as a new one.
		return Result{}, nil
	}
	return res, err
}

// closedUnlessFailed turns a tenant that cannot be loaded for what it is
// (unknown, or a malformed id) into ErrSignupClosed and keeps any other
// error (the store's).
func closedUnlessFailed(err error) error {
	if c := fault.CodeOf(err); c == fault.NotFound || c == fault.Invalid {
		return ErrSignupClosed
	}
	return err
}

// signupLimits counts each tenant's sign-ups in fixed one-minute windows,
// in this process: a bound on what an automated flood can register and
// hash, not an exact quota (each replica counts its own).
type signupLimits struct {
	perMinute int

	mu     sync.Mutex
	window time.Time
	counts map[string]int
}

func newSignupLimits(perMinute int) *signupLimits {
	return &signupLimits{perMinute: perMinute, counts: map[string]int{}}
}

// allow counts a sign-up of tenant at now and reports whether it is
// within the tenant's bound for now's minute.
func (l *signupLimits) allow(tenant string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := now.Truncate(time.Minute); !w.Equal(l.window) {
		// A new minute forgets the last: the map holds one minute's
		// tenants at most.
		l.window, l.counts = w, map[string]int{}
	}
	if l.counts[tenant] >= l.perMinute {
		return false
	}
	l.counts[tenant]++
	return true
}
