package app

import (
	"context"
	"slices"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// RegisterUser creates a user of a tenant, optionally holding roles. It
// needs users:write, and roles:assign plus the cover of every role's
// permissions when roles are given.
type RegisterUser struct {
	Request
	Tenant   string
	Username string
	Password string
	Roles    []string
	// The profile, each member optional (domain.NewProfile).
	Email      string
	Name       string
	Locale     string
	Attributes []byte

	// invite makes the registration an invitation (InviteUser).
	invite bool
}

type registerUserHandler struct{ e *engine }

// Handle appends user.registered and a user.role_assigned per role with the
// username's claim, so that two users of a tenant never share a username
// (ErrUsernameTaken). Result.ID is the new user's id, derived from the
// idempotency key when there is one.
func (h registerUserHandler) Handle(ctx context.Context, cmd RegisterUser) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	if len(cmd.Roles) > 0 {
		if err := domain.Authorize(p, cmd.Tenant, domain.PermRolesAssign); err != nil {
			return Result{}, err
		}
	}
	key, err := authn.NormalizeUsername(cmd.Username)
	if err != nil {
		return Result{}, err
	}
	if err := h.e.validatePassword(cmd.Password); err != nil {
		return Result{}, err
	}
	roles := slices.Compact(slices.Sorted(slices.Values(cmd.Roles)))
	for _, r := range roles {
		if err := authz.ValidRoleName(r); err != nil {
			return Result{}, err
		}
	}
	parts := cmd.idParts()
	userID := unitofwork.NewID(parts, "user")
	// Sealing the name (a read of its legacy claim and a synced create of
	// the user's data key) needs nothing an attempt reads: it starts now,
	// and its round trips run while the tenant is read and the password
	// hashed, so that the registration reaches its commit sooner (ADR
	// 0029). The hash stays on the request's goroutine: started here as
	// well, it did not raise the rate in our runs, where the hashes share
	// two cores with the broker's own goroutines.
	sealedName := goAwait(func() (domain.Name, error) { return h.e.sealName(ctx, cmd.Tenant, userID, cmd.Username, key) })
	var sealed events.Sealed
	attempt := 0
	return h.e.run(ctx, cmd.Request, actorOf(p), parts, func(ctx context.Context, u unit) (Result, error) {
		attempt++
		// The first attempt reads neither the new user's subject nor the
		// username's claim: the id is new and the name most likely free,
		// and the batch expects both subjects empty, so a name taken is
		// still ErrClaimTaken and anything else unexpected (a name
		// released by an earlier user, an id in use) fails the attempt
		// with ErrConcurrency; the next attempt reads both (ADR 0023).
		first := attempt == 1
		u.preloadRoles(ctx, cmd.Tenant, roles) // read while the tenant is
		t, err := u.activeTenant(ctx, cmd.Tenant)
		if err != nil {
			return Result{}, err
		}
		var usr *domain.User
		if first {
			usr, err = unitofwork.LoadNew(ctx, u.Unit, userKey(cmd.Tenant, userID), emptyUser(userID))
		} else {
			usr, err = u.user(ctx, cmd.Tenant, userID)
		}
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			// An invitation's password is drawn anew on each try: only a
			// registration's is compared.
			if err := h.e.checkReplayedPassword(rep, events.TypeUserRegistered, cmd.Tenant, cmd.Password); err != nil && !cmd.invite {
				return Result{}, err
			}
			return Result{ID: userID, Version: rep.Version(usr.Kind(), userID), Sequence: rep.Sequence, Changed: true, Replayed: true}, nil
		}
		for _, name := range roles {
			r, err := u.role(ctx, cmd.Tenant, name)
			if err != nil {
				return Result{}, err
			}
			if err := domain.CanGrant(p, r); err != nil {
				return Result{}, err
			}
		}
		profile, err := domain.NewProfile(cmd.Email, cmd.Name, cmd.Locale, cmd.Attributes, userProfilePolicy(t))
		if err != nil {
			return Result{}, err
		}
		if usr.Status() != domain.StatusAbsent {
			// Register says so; checking first saves a bcrypt hash.
			return Result{}, usr.Register(domain.Name{Username: cmd.Username, Key: key}, events.Sealed{KID: "-"}, nil)
		}
		if sealed.IsZero() {
			if sealed, err = h.e.seal(cmd.Tenant, userID, cmd.Password); err != nil {
				return Result{}, err
			}
		}
		name, err := sealedName()
		if err != nil {
			return Result{}, err
		}
		if err := usr.RegisterWithProfile(name, sealed, roles, profile); err != nil {
			return Result{}, err
		}
		if cmd.invite {
			if err := usr.Invite(); err != nil {
				return Result{}, err
			}
		}
		claim := usernameClaim(cmd.Tenant, usr, false)
		if first {
			claim = withFresh(claim)
		}
		res, err := u.Commit(ctx, []domain.Aggregate{usr}, claim)
		if err != nil {
			return Result{}, err
		}
		return Result{ID: userID, Version: usr.Version(), Sequence: res.Sequence, Changed: true, Replayed: res.Duplicate}, nil
	})
}

// goAwait runs f in a goroutine of its own and returns a function that
// waits for its result, as often as asked: a registration's attempts share
// one sealed name.
func goAwait[T any](f func() (T, error)) func() (T, error) {
	var (
		v   T
		err error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		v, err = f()
	}()
	return func() (T, error) {
		<-done
		return v, err
	}
}
