package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// pendingTTL is how long the code form of a hosted sign-in stays usable
// after the right password.
const pendingTTL = 5 * time.Minute

// maxCodeLen bounds the code a factor form takes: a recovery code with
// its dashes is 19 characters.
const maxCodeLen = 64

// pendingSignin is the plaintext of the sealed state of a hosted sign-in
// between the password and the code: whose password was right, for which
// authorization request, and when.
type pendingSignin struct {
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"` // as typed: the account's rate limit
	Request   string    `json:"request"`  // requestHash of the sealed request it goes with
	AuthTime  time.Time `json:"auth_time"`
	ExpiresAt time.Time `json:"expires_at"`
}

func pendingAAD(tenant string) []byte { return []byte("authstream/pending-signin/" + tenant) }

// requestHash binds a pending sign-in to the sealed request it answers.
func requestHash(sealed string) string {
	sum := sha256.Sum256([]byte(sealed))
	return hex.EncodeToString(sum[:])
}

// HostedFactor is a submission of the hosted login page's code form: the
// second step of a sign-in whose password was right.
type HostedFactor struct {
	Tenant  string
	Request string // the sealed authorization request the form carried
	Pending string // the sealed pending sign-in (SignedIn.Pending)
	Code    string // a TOTP code or a recovery code
	Address string
	Cookie  string
}

// HostedFactor checks the code of the second step of a hosted sign-in and,
// when it passes, signs the user in as HostedSignin does, with amr
// ["pwd", "otp"] (acr ACRMFA).
//
// The code is a TOTP code of the user's factor (the current step, the one
// before or the one after) or one of their recovery codes. Its use is
// decided on the user's sign-in aggregate with optimistic concurrency
// (domain.Signin.AttemptFactor): a TOTP step once accepted, and every
// earlier one, never passes again, and a recovery code passes once, so of
// any number of parallel submissions of one code, on any number of
// replicas, exactly one passes. Every refusal (a wrong, malformed, out of
// window or used code, a locked account, a user disabled or whose factor
// is gone since) is ErrInvalidCredentials, and the wrong codes count
// toward the lock like wrong passwords. The rate limits of the account
// and the client address apply as to passwords. A pending sign-in or a
// request that no longer opens (forged, another tenant's or request's,
// expired) is ErrInvalidAuthRequest.
func (a *App) HostedFactor(ctx context.Context, s HostedFactor) (_ SignedIn, err error) {
	r, err := a.OpenAuthRequest(s.Tenant, s.Request)
	if err != nil {
		return SignedIn{}, err
	}
	var p pendingSignin
	if !a.openValue(pendingAAD(s.Tenant), s.Pending, &p) || p.Request != requestHash(s.Request) || !a.now().Before(p.ExpiresAt) {
		return SignedIn{}, ErrInvalidAuthRequest
	}
	cl, err := a.client(ctx, s.Tenant, r.ClientID)
	if err != nil {
		return SignedIn{}, err
	}
	defer func() { a.metrics.login(ctx, GrantAuthorizationCode, s.Tenant, err, false) }()
	if wait, ok := a.limits.allow(ctx, s.Tenant, s.Address, p.Username); !ok {
		return SignedIn{}, rateLimited(wait)
	}
	u, err := a.readModel.UserByID(ctx, s.Tenant, p.UserID)
	switch {
	case fault.CodeOf(err) == fault.NotFound:
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("user gone"))
	case err != nil:
		return SignedIn{}, err
	case !u.Active || !u.TenantActive:
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("user or tenant disabled"))
	}
	factors, err := a.factors(ctx, s.Tenant, u.ID)
	if err != nil {
		return SignedIn{}, err
	}
	if !factors.Any() {
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("no second factor any more"))
	}
	use, err := a.matchCode(s.Tenant, u.ID, factors, s.Code)
	if err != nil {
		return SignedIn{}, err
	}
	cookie, browserID := domain.NewBrowserCookie()
	amr := []string{AMRPassword, AMROTP}
	attempt := domain.Attempt{SessionID: browserID, Client: s.Address}
	passed, locked, err := a.decideFactor(ctx, s.Tenant, u.ID, attempt, use, amr)
	if err != nil {
		return SignedIn{}, err
	}
	if locked {
		a.metrics.lockout(ctx, s.Tenant)
	}
	if !passed {
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("wrong or used code"))
	}
	return a.signedIn(ctx, s.Tenant, cl, r, u.ID, cookie, browserID, amr, a.now(), s.Address, s.Cookie)
}

// matchCode checks code against the user's factors: the recovery code it
// is, or the step of the TOTP code it is; a use that matched nothing when
// it is neither. Whether it was used before is the sign-in's to decide.
func (a *App) matchCode(tenant, userID string, f domain.Factors, code string) (domain.FactorUse, error) {
	use := domain.FactorUse{MinStep: f.ConfirmedStep, RecoveryIndex: -1}
	if len(code) > maxCodeLen {
		return use, nil
	}
	if authn.LooksLikeRecoveryCode(code) {
		if i := f.RecoveryIndex(authn.HashRecoveryCode(code)); i >= 0 {
			use.RecoverySet, use.RecoveryIndex = f.RecoverySet, i
		}
		return use, nil
	}
	if !f.HasTOTP() {
		return use, nil
	}
	seed, err := a.kek.Open(f.TOTP, events.MFASecretAAD(tenant, userID, events.FactorTOTP))
	if err != nil {
		return use, fault.Wrap(fault.Internal, fmt.Errorf("open totp seed of user %s: %w", userID, err), "internal error")
	}
	defer clear(seed)
	step, err := authn.TOTPStep(string(seed), strings.TrimSpace(code), a.now())
	switch {
	case errors.Is(err, authn.ErrInvalidCode):
		return use, nil
	case err != nil:
		return use, fault.Wrap(fault.Internal, err, "internal error")
	}
	use.TOTPStep = step
	return use, nil
}

// decideFactor records the use of a code on the user's sign-in aggregate
// (decideStep): a request that loses the race decides again, and then
// finds the code used.
func (a *App) decideFactor(ctx context.Context, tenant, userID string, attempt domain.Attempt, use domain.FactorUse, amr []string) (passed, locked bool, err error) {
	return a.decideStep(ctx, tenant, userID, attempt, func(s *domain.Signin, at domain.Attempt) (bool, error) {
		return s.AttemptFactor(at, use, amr, a.policy)
	})
}

// decideStep records a second step of a sign-in (a code, a passkey
// response) on the user's sign-in aggregate with optimistic concurrency:
// decide attempts it on the aggregate's state; a request that loses the
// race reloads and decides again, so a secret used by a racer is found
// used. It reports whether the step passed and whether this attempt's
// failure locked the account.
func (a *App) decideStep(ctx context.Context, tenant, userID string, attempt domain.Attempt,
	decide func(*domain.Signin, domain.Attempt) (bool, error),
) (passed, locked bool, err error) {
	signin, pos, err := a.loadSignin(ctx, tenant, userID)
	if err != nil {
		return false, false, err
	}
	for i := 0; ; i++ {
		attempt.Now = a.now()
		passed, err = decide(signin, attempt)
		if errors.Is(err, domain.ErrLocked) {
			return false, false, nil
		}
		if err != nil {
			return false, false, err
		}
		actor := events.System
		if passed {
			actor = userActor(tenant, userID)
		}
		err = a.append(ctx, tenant, signin, pos, actor)
		if err == nil {
			break
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return false, false, err
		}
		if err := a.raced(ctx, i); err != nil {
			return false, false, err
		}
		if signin, pos, err = a.loadSignin(ctx, tenant, userID); err != nil {
			return false, false, err
		}
	}
	return passed, !passed && signin.Locked(attempt.Now), nil
}
