package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// HostedSignin is a submission of the hosted login page.
type HostedSignin struct {
	Tenant   string
	Request  string // the sealed authorization request the form carried
	Username string
	Password string
	Address  string // client address: rate-limited, and recorded for auditors
	// Cookie is the browser's session cookie, "" for none: a sign-in ends
	// the session it names (the new one replaces it).
	Cookie string
}

// SignedIn is the answer of a hosted sign-in: either the browser's new
// session cookie and where it goes (the client's redirect URI with a
// code, state and iss), or, after a right password of a user with a
// second factor, Pending: the sealed state of the sign-in that the page's
// code form carries back (HostedFactor).
type SignedIn struct {
	Cookie   string
	Redirect string
	Pending  string
}

// HostedSignin signs a user in on the hosted login page and answers the
// authorization request the page carried. The password is checked exactly
// as the password grant checks it (signIn: the same rate limits, lockout,
// dummy comparison for unknown users and one answer,
// ErrInvalidCredentials, for an unknown user, a wrong password, a disabled
// user and a locked account). A success starts a browser session with a
// new cookie (ending the browser's previous one) and issues a code, in one
// atomic batch. A user who holds a second factor is not signed in yet: the
// answer is Pending, for the page to ask for a code (HostedFactor). A
// sealed request that no longer opens is ErrInvalidAuthRequest, and a
// client that is gone since is ErrClientNotFound.
func (a *App) HostedSignin(ctx context.Context, s HostedSignin) (_ SignedIn, err error) {
	r, err := a.OpenAuthRequest(s.Tenant, s.Request)
	if err != nil {
		return SignedIn{}, err
	}
	cl, err := a.client(ctx, s.Tenant, r.ClientID)
	if err != nil {
		return SignedIn{}, err
	}
	// A login from here on: the request it answers is a real one. A right
	// password that the code form follows counts as mfa_required; the
	// code's post counts the login's end.
	stepUp := false
	defer func() {
		counted := err
		if stepUp {
			counted = ErrMFARequired
		}
		a.metrics.login(ctx, GrantAuthorizationCode, s.Tenant, counted, false)
	}()
	cookie, browserID := domain.NewBrowserCookie()
	u, factors, err := a.signIn(ctx, s.Tenant, s.Username, s.Password, s.Address, browserID)
	if err != nil {
		return SignedIn{}, err
	}
	now := a.now()
	if factors.Any() {
		pending, err := a.sealValue(pendingAAD(s.Tenant), pendingSignin{
			UserID: u.ID, Username: s.Username, Request: requestHash(s.Request),
			AuthTime: now.UTC(), ExpiresAt: now.Add(pendingTTL).UTC(),
		})
		if err != nil {
			return SignedIn{}, err
		}
		stepUp = true
		return SignedIn{Pending: pending}, nil
	}
	return a.signedIn(ctx, s.Tenant, cl, r, u.ID, cookie, browserID, []string{AMRPassword}, now, s.Address, s.Cookie)
}

// signedIn ends a hosted sign-in of userID with the methods amr at
// authTime: it starts the browser session browserID (whose cookie is
// cookie), ending the one oldCookie names, and issues a code of r, in one
// atomic batch, and answers where the browser goes.
func (a *App) signedIn(ctx context.Context, tenant string, cl Client, r AuthRequest, userID, cookie, browserID string,
	amr []string, authTime time.Time, address, oldCookie string) (SignedIn, error) {
	now := a.now()
	b, err := domain.LoadBrowser(browserID, nil)
	if err != nil {
		return SignedIn{}, err
	}
	if err := b.Start(userID, amr, address, authTime); err != nil {
		return SignedIn{}, err
	}
	code, ac, err := a.newCode(tenant, cl, r, userID, browserID, authTime, amr, now)
	if err != nil {
		return SignedIn{}, err
	}
	changes := []change{{b, eventstore.Position{}}, {ac, eventstore.Position{}}}
	if old, pos, ok := a.endableBrowser(ctx, tenant, oldCookie); ok {
		old.End(domain.BrowserReplaced, now)
		changes = append(changes, change{old, pos})
	}
	if err := a.appendAll(ctx, tenant, userActor(tenant, userID), changes...); err != nil {
		return SignedIn{}, err
	}
	redirect, err := codeRedirect(r.RedirectURI, code, r.State, authn.IssuerURL(a.publicURL, tenant))
	if err != nil {
		return SignedIn{}, err
	}
	return SignedIn{Cookie: cookie, Redirect: redirect}, nil
}

// endableBrowser returns the live browser session of cookie and its
// position, for a sign-in or a logout to end it; ok is false when there
// is none. A failure to read it only means it is not ended here: it stays
// usable until its user changes, and a lost race with a concurrent end
// fails the append, which the caller reports.
func (a *App) endableBrowser(ctx context.Context, tenant, cookie string) (*domain.Browser, eventstore.Position, bool) {
	id, err := domain.BrowserID(cookie)
	if err != nil {
		return nil, eventstore.Position{}, false
	}
	last, ok, err := a.store.Last(ctx, tenant, events.AggregateBrowser, id)
	if err != nil || !ok {
		return nil, eventstore.Position{}, false
	}
	b, err := domain.ResumeBrowser(id, last.Envelope)
	if err != nil || !b.Live() {
		return nil, eventstore.Position{}, false
	}
	return b, last.Position(), true
}

// SigninPage is what the hosted login page shows: the tenant's display
// name, the username to prefill (login_hint), and the client's redirect
// URI, which the page's Content-Security-Policy lets its form lead to.
type SigninPage struct {
	DisplayName string
	LoginHint   string
	RedirectURI string
}

// SigninPage opens the sealed request of tenant's hosted page and returns
// what the page shows. An unknown tenant is ErrUnknownTenant, a request
// that does not open ErrInvalidAuthRequest.
func (a *App) SigninPage(ctx context.Context, tenant, sealed string) (SigninPage, error) {
	if !a.OIDC() {
		return SigninPage{}, errNotConfigured
	}
	if err := a.requireTenant(ctx, tenant); err != nil {
		return SigninPage{}, err
	}
	r, err := a.OpenAuthRequest(tenant, sealed)
	if err != nil {
		return SigninPage{}, err
	}
	settings, err := a.tenantSettings(ctx, tenant)
	if err != nil {
		return SigninPage{}, err
	}
	name := settings.DisplayName
	if name == "" {
		name = tenant
	}
	return SigninPage{DisplayName: name, LoginHint: r.LoginHint, RedirectURI: r.RedirectURI}, nil
}
