package app

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// OfferPasswordless starts a discoverable passkey ceremony for the hosted
// page of the sealed request when the tenant allows a sign-in with a
// passkey alone (settings passwordless) and passkeys are available; nil
// otherwise. The ceremony is bound to the request.
func (a *App) OfferPasswordless(ctx context.Context, tenant, request string) (*PasskeyOffer, error) {
	if a.passkeys == nil {
		return nil, nil
	}
	settings, err := a.tenantSettings(ctx, tenant)
	if err != nil || !settings.PasswordlessEnabled() || settings.MFAPolicy().Policy == events.MFAOff {
		return nil, err
	}
	opts, c, err := a.passkeys.BeginLogin(nil)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "internal error")
	}
	offer, err := a.sealCeremony(tenant, c, bindingHash(request), opts)
	if err != nil {
		return nil, err
	}
	return &offer, nil
}

// HostedPasswordless is a submission of the hosted page's passkey form
// without a password.
type HostedPasswordless struct {
	Tenant    string
	Request   string // the sealed authorization request the form carried
	Ceremony  string // the sealed ceremony (PasskeyOffer.Ceremony)
	Assertion string // the PublicKeyCredential of navigator.credentials.get, JSON
	Address   string
	Cookie    string
}

// HostedPasswordless signs a user in with a passkey alone, where the
// tenant allows it (settings passwordless; off by default): the response
// names its user (the user handle of a discoverable passkey, the user id)
// and must verify its user (a PIN, a biometric), so that the passkey is
// two factors in one; amr ["hwk", "user"], acr ACRMFA. The response's use
// is decided on the user's sign-in aggregate as a second factor's is
// (HostedPasskey): a ceremony answered once never passes again, the
// counter must grow, and a response that does not verify counts toward
// the named user's lock. Every refusal, including a user handle naming no
// user of the tenant (another tenant's passkey), a disabled user and a
// tenant that does not allow it, is ErrInvalidCredentials. A request that
// no longer opens is ErrInvalidAuthRequest.
func (a *App) HostedPasswordless(ctx context.Context, s HostedPasswordless) (_ SignedIn, err error) {
	r, err := a.OpenAuthRequest(s.Tenant, s.Request)
	if err != nil {
		return SignedIn{}, err
	}
	cl, err := a.client(ctx, s.Tenant, r.ClientID)
	if err != nil {
		return SignedIn{}, err
	}
	defer func() { a.metrics.login(ctx, GrantAuthorizationCode, s.Tenant, err, false) }()
	settings, err := a.tenantSettings(ctx, s.Tenant)
	if err != nil {
		return SignedIn{}, err
	}
	if a.passkeys == nil || !settings.PasswordlessEnabled() || settings.MFAPolicy().Policy == events.MFAOff {
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("passwordless sign-in is off"))
	}
	as, err := authn.ParseAssertion([]byte(s.Assertion))
	if err != nil {
		if wait, ok := a.limits.allow(ctx, s.Tenant, s.Address, ""); !ok {
			return SignedIn{}, rateLimited(wait)
		}
		return SignedIn{}, refused(ErrInvalidCredentials, err)
	}
	userID := string(as.UserHandle)
	if !events.ValidToken(userID) {
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("user handle names no user"))
	}
	u, err := a.readModel.UserByID(ctx, s.Tenant, userID)
	switch {
	case fault.CodeOf(err) == fault.NotFound:
		if wait, ok := a.limits.allow(ctx, s.Tenant, s.Address, ""); !ok {
			return SignedIn{}, rateLimited(wait)
		}
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("user handle names no user of the tenant"))
	case err != nil:
		return SignedIn{}, err
	}
	if wait, ok := a.limits.allow(ctx, s.Tenant, s.Address, u.Username); !ok {
		return SignedIn{}, rateLimited(wait)
	}
	if !u.Active || !u.TenantActive {
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("user or tenant disabled"))
	}
	factors, err := a.factors(ctx, s.Tenant, u.ID)
	if err != nil {
		return SignedIn{}, err
	}
	if len(factors.Passkeys) == 0 {
		return SignedIn{}, refused(ErrInvalidCredentials, errors.New("user holds no passkey"))
	}
	use, cause := a.checkPasskey(s.Tenant, u.ID, factors, s.Ceremony, bindingHash(s.Request), s.Assertion)
	if use.Verified && !use.verifiedUser { // FinishLogin requires it; never trust one check alone
		use.Verified, cause = false, errors.New("passkey did not verify its user")
	}
	amr := []string{AMRHardwareKey, AMRUser}
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
