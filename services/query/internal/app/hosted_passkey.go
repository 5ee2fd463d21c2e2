package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// relyingPartyName is the name authenticators show for the platform's
// passkeys: the public URL's host.
func relyingPartyName(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "authstream"
}

// passkeyCeremony is the plaintext of the sealed state of a passkey
// ceremony of the hosted page: the WebAuthn ceremony, when it started (a
// response to it, or to an earlier one, passes once), and what it is
// bound to: the pending sign-in of a second step (its hash), or the
// authorization request of a passwordless sign-in.
type passkeyCeremony struct {
	Ceremony  []byte    `json:"ceremony"`
	Started   int64     `json:"started"` // Unix nanoseconds
	Bound     string    `json:"bound"`   // hash of the sealed pending sign-in, or of the sealed request
	ExpiresAt time.Time `json:"expires_at"`
}

func passkeyAAD(tenant string) []byte { return []byte("authstream/passkey-ceremony/" + tenant) }

// bindingHash binds a ceremony to the sealed value it goes with.
func bindingHash(sealed string) string {
	sum := sha256.Sum256([]byte("passkey/" + sealed))
	return hex.EncodeToString(sum[:])
}

// PasskeyOffer is a passkey ceremony the hosted page offers: the
// PublicKeyCredentialRequestOptions for navigator.credentials.get and the
// ceremony's sealed state, which the page's passkey form carries back.
type PasskeyOffer struct {
	Options  json.RawMessage
	Ceremony string
}

// PasskeysAvailable reports whether the public URL can be a WebAuthn
// relying party (its host is a domain name, not an IP address).
func (a *App) PasskeysAvailable() bool { return a.passkeys != nil }

// FactorPage is what the second step of a hosted sign-in offers: the code
// form when the user holds a TOTP factor, and a passkey ceremony when the
// user holds a passkey and passkeys are available (nil otherwise).
type FactorPage struct {
	Code    bool
	Passkey *PasskeyOffer
}

// FactorPage returns what the second step of the hosted sign-in whose
// pending state is pending offers, starting a new passkey ceremony each
// time. A pending sign-in that does not open is ErrInvalidAuthRequest.
func (a *App) FactorPage(ctx context.Context, tenant, request, pending string) (FactorPage, error) {
	p, err := a.openPending(tenant, request, pending)
	if err != nil {
		return FactorPage{}, err
	}
	f, err := a.factors(ctx, tenant, p.UserID)
	if err != nil {
		return FactorPage{}, err
	}
	page := FactorPage{Code: f.HasTOTP()}
	if a.passkeys == nil || len(f.Passkeys) == 0 {
		return page, nil
	}
	pu, err := passkeyUser(p.UserID, f)
	if err != nil {
		return FactorPage{}, err
	}
	opts, c, err := a.passkeys.BeginLogin(&pu)
	if err != nil {
		return FactorPage{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	offer, err := a.sealCeremony(tenant, c, bindingHash(pending), opts)
	if err != nil {
		return FactorPage{}, err
	}
	page.Passkey = &offer
	return page, nil
}

// sealCeremony seals the state of ceremony c, bound to bound.
func (a *App) sealCeremony(tenant string, c authn.PasskeyCeremony, bound string, opts json.RawMessage) (PasskeyOffer, error) {
	state, err := c.MarshalBinary()
	if err != nil {
		return PasskeyOffer{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	// Started orders the ceremonies of a user: it is read from the wall
	// clock (not the application's, which tests freeze), in nanoseconds,
	// so that two ceremonies never share it.
	now := a.now()
	sealed, err := a.sealValue(passkeyAAD(tenant), passkeyCeremony{
		Ceremony: state, Started: time.Now().UnixNano(), Bound: bound, ExpiresAt: now.Add(authn.PasskeyTimeout).UTC(),
	})
	if err != nil {
		return PasskeyOffer{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	return PasskeyOffer{Options: opts, Ceremony: sealed}, nil
}

// openCeremony opens a sealed ceremony of tenant bound to bound: the
// WebAuthn ceremony and its start; false when it does not open, is
// another's or expired.
func (a *App) openCeremony(tenant, sealed, bound string) (authn.PasskeyCeremony, int64, bool) {
	var p passkeyCeremony
	if !a.openValue(passkeyAAD(tenant), sealed, &p) || p.Bound != bound || !a.now().Before(p.ExpiresAt) {
		return authn.PasskeyCeremony{}, 0, false
	}
	var c authn.PasskeyCeremony
	if err := c.UnmarshalBinary(p.Ceremony); err != nil {
		return authn.PasskeyCeremony{}, 0, false
	}
	return c, p.Started, true
}

// openPending opens the sealed pending sign-in of request: whose password
// was right; ErrInvalidAuthRequest when it does not open, is another
// request's or expired.
func (a *App) openPending(tenant, request, pending string) (pendingSignin, error) {
	var p pendingSignin
	if !a.openValue(pendingAAD(tenant), pending, &p) || p.Request != requestHash(request) || !a.now().Before(p.ExpiresAt) {
		return pendingSignin{}, ErrInvalidAuthRequest
	}
	return p, nil
}

// passkeyUser returns the WebAuthn account of userID with the passkeys of
// f: the user handle is the user id.
func passkeyUser(userID string, f domain.Factors) (authn.PasskeyUser, error) {
	u := authn.PasskeyUser{Handle: []byte(userID), Name: userID}
	for _, p := range f.Passkeys {
		id, err1 := base64.RawURLEncoding.DecodeString(p.CredentialID)
		pub, err2 := base64.RawURLEncoding.DecodeString(p.PublicKey)
		if err := errors.Join(err1, err2); err != nil {
			return authn.PasskeyUser{}, fault.Wrap(fault.Internal, fmt.Errorf("passkey of user %s: %w", userID, err), "internal error")
		}
		u.Credentials = append(u.Credentials, authn.PasskeyCredential{ID: id, PublicKey: pub, SignCount: p.SignCount, Transports: p.Transports,
			BackupEligible: p.BackupEligible, BackupState: p.BackupState, UserVerified: p.UserVerified, Format: p.Format})
	}
	return u, nil
}

// HostedPasskey is a submission of the hosted page's passkey form in the
// second step of a sign-in whose password was right.
type HostedPasskey struct {
	Tenant    string
	Request   string // the sealed authorization request the form carried
	Pending   string // the sealed pending sign-in (SignedIn.Pending)
	Ceremony  string // the sealed ceremony (PasskeyOffer.Ceremony)
	Assertion string // the PublicKeyCredential of navigator.credentials.get, JSON
	Address   string
	Cookie    string
}

// HostedPasskey checks the passkey response of the second step of a
// hosted sign-in and, when it passes, signs the user in as HostedSignin
// does, with amr ["pwd", "hwk"] and "user" when the authenticator verified
// the user (acr ACRMFA).
//
// The response must answer the ceremony the page offered for this pending
// sign-in (challenge, origin, relying party id) with a passkey of the
// user, and its use is decided on the user's sign-in aggregate with
// optimistic concurrency (domain.Signin.AttemptPasskey): a ceremony
// answered once never passes again, and the signature counter must grow,
// so of any number of parallel submissions of one response, on any number
// of replicas, exactly one passes. Every refusal (malformed JSON or
// base64, another user's or tenant's passkey, another origin or relying
// party, a stale or replayed ceremony, a counter going back, a locked
// account, a user disabled since) is ErrInvalidCredentials, and all but
// the lock and the disabled user count toward the lock like wrong
// passwords. A pending sign-in or a request that no longer opens is
// ErrInvalidAuthRequest.
func (a *App) HostedPasskey(ctx context.Context, s HostedPasskey) (_ SignedIn, err error) {
	r, err := a.OpenAuthRequest(s.Tenant, s.Request)
	if err != nil {
		return SignedIn{}, err
	}
	p, err := a.openPending(s.Tenant, s.Request, s.Pending)
	if err != nil {
		return SignedIn{}, err
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
	if len(factors.Passkeys) == 0 || a.passkeys == nil {
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("no passkey any more"))
	}
	use, cause := a.checkPasskey(s.Tenant, u.ID, factors, s.Ceremony, bindingHash(s.Pending), s.Assertion)
	amr := []string{AMRPassword, AMRHardwareKey}
	if use.verifiedUser {
		amr = append(amr, AMRUser)
	}
	cookie, browserID := domain.NewBrowserCookie()
	attempt := domain.Attempt{SessionID: browserID, Client: s.Address}
	passed, locked, err := a.decidePasskey(ctx, s.Tenant, u.ID, attempt, use.PasskeyUse, amr)
	if err != nil {
		return SignedIn{}, err
	}
	if locked {
		a.metrics.lockout(ctx, s.Tenant)
	}
	if !passed {
		if cause == nil {
			cause = errors.New("passkey response answered before or counter went back")
		}
		return SignedIn{}, refused(ErrInvalidCredentials, cause)
	}
	return a.signedIn(ctx, s.Tenant, cl, r, u.ID, cookie, browserID, amr, a.now(), s.Address, s.Cookie)
}

// checkedPasskey is a passkey response as checkPasskey found it.
type checkedPasskey struct {
	domain.PasskeyUse
	verifiedUser bool
}

// checkPasskey verifies assertion against the sealed ceremony (bound to
// bound) and the passkeys of userID: the use to decide on the sign-in,
// Verified false with the cause (for the logs) when it does not verify.
func (a *App) checkPasskey(tenant, userID string, f domain.Factors, sealed, bound, assertion string) (checkedPasskey, error) {
	out := checkedPasskey{}
	for _, p := range f.Passkeys {
		out.Held = append(out.Held, p.CredentialID)
	}
	c, started, ok := a.openCeremony(tenant, sealed, bound)
	if !ok {
		return out, errors.New("passkey ceremony does not open, is another's or expired")
	}
	out.Ceremony = started
	as, err := authn.ParseAssertion([]byte(assertion))
	if err != nil {
		return out, err
	}
	id := base64.RawURLEncoding.EncodeToString(as.Credential)
	i := slices.IndexFunc(f.Passkeys, func(p events.UserPasskeyRegistered) bool { return p.CredentialID == id })
	if i < 0 {
		return out, errors.New("passkey the user does not hold")
	}
	pu, err := passkeyUser(userID, f)
	if err != nil {
		return out, err
	}
	got, err := a.passkeys.FinishLogin(pu, c, as)
	if err != nil {
		return out, err
	}
	if !bytes.Equal(got.Credential, as.Credential) {
		return out, errors.New("passkey verified another credential")
	}
	out.Verified, out.CredentialID, out.SignCount, out.Registered, out.verifiedUser = true, id, got.SignCount, f.Passkeys[i].SignCount, got.UserVerified
	return out, nil
}

// decidePasskey records the use of a passkey response on the user's
// sign-in aggregate (decideStep): a request that loses the race decides
// again, and then finds the ceremony answered.
func (a *App) decidePasskey(ctx context.Context, tenant, userID string, attempt domain.Attempt, use domain.PasskeyUse, amr []string) (passed, locked bool, err error) {
	return a.decideStep(ctx, tenant, userID, attempt, func(s *domain.Signin, at domain.Attempt) (bool, error) {
		return s.AttemptPasskey(at, use, amr, a.policy)
	})
}
