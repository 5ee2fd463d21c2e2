package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// CodeExchange is a token request of the authorization_code grant (RFC
// 6749 section 4.1.3) by an authenticated client.
type CodeExchange struct {
	Tenant       string
	Client       Client
	Code         string
	RedirectURI  string
	CodeVerifier string
}

// ExchangeCode redeems an authorization code and returns the grant's
// tokens: an access token naming the grant (gid), an ID token when openid
// was granted, and a refresh token when offline_access was and the client
// lists the refresh_token grant.
//
// The decision reads the code's aggregate from the activity log and
// appends its redemption with optimistic concurrency, in one atomic batch
// with the session.started of the grant (the session the tokens name, and
// that a refresh token rotates), so a code is redeemed once across every
// replica: of concurrent redemptions exactly one wins, and the others,
// deciding again, find it redeemed.
//
// A second redemption (a replay, or the loser of such a race: they cannot
// be told apart) is refused and revokes the grant of the first, recording
// the replay (authcode.replayed) and the revocation (session.revoked,
// reason code-replay) in one batch (RFC 6749 section 4.1.2). Every other
// refusal records nothing. All are ErrInvalidCode, with the domain's
// error as the cause: malformed, unknown (another tenant's included),
// expired, another client's, another redirect URI's, a PKCE verifier
// missing, wrong or unexpected; and a user disabled, deleted or changed
// since the sign-in.
func (a *App) ExchangeCode(ctx context.Context, x CodeExchange) (_ Tokens, err error) {
	if !a.OIDC() {
		return Tokens{}, errNotConfigured
	}
	// The login was the hosted page's sign-in; a redeemed code is the
	// tokens it issues.
	defer func() {
		if err == nil {
			a.metrics.issued(ctx, GrantAuthorizationCode, x.Tenant)
		}
	}()
	id, err := domain.AuthCodeID(x.Code)
	if err != nil {
		return Tokens{}, refused(ErrInvalidCode, err)
	}
	sessionID := a.sessionID()
	for i := 0; ; i++ {
		h, err := a.store.Load(ctx, x.Tenant, events.AggregateAuthCode, id)
		if err != nil {
			return Tokens{}, appendError("load authorization code", err)
		}
		ac, err := domain.LoadAuthCode(id, h.Envelopes())
		if err != nil {
			return Tokens{}, err
		}
		g := ac.Grant()
		var u User
		if g.UserID != "" {
			if u, err = a.grantUser(ctx, x.Tenant, g); err != nil {
				return Tokens{}, err
			}
		}
		decision := ac.Redeem(domain.Redemption{
			ClientID: x.Client.ID, RedirectURI: x.RedirectURI, CodeVerifier: x.CodeVerifier,
			SessionID: sessionID, Now: a.now(),
		})
		switch {
		case errors.Is(decision, domain.ErrCodeReused):
			err = a.revokeReplayed(ctx, x.Tenant, ac, h.Position)
		case decision != nil:
			return Tokens{}, refused(ErrInvalidCode, decision)
		case u.ID == "":
			// The user is gone or can no longer sign in: the code is
			// refused, and left unredeemed for nothing.
			return Tokens{}, refused(ErrInvalidCode, errors.New("user cannot sign in"))
		default:
			var t Tokens
			t, err = a.redeem(ctx, x, ac, h.Position, sessionID, u)
			if err == nil {
				return t, nil
			}
		}
		if errors.Is(err, eventstore.ErrConcurrency) {
			if err := a.raced(ctx, i); err != nil {
				return Tokens{}, err
			}
			continue
		}
		if err != nil {
			return Tokens{}, err
		}
		return Tokens{}, refused(ErrInvalidCode, decision)
	}
}

// grantUser returns the user of a code's grant, or the zero User when the
// user can no longer sign in: deleted, disabled, in a disabled tenant, or
// changed (password, disable) since the sign-in.
func (a *App) grantUser(ctx context.Context, tenant string, g events.AuthCodeIssued) (User, error) {
	u, err := a.readModel.UserByID(ctx, tenant, g.UserID)
	if fault.CodeOf(err) == fault.NotFound {
		return User{}, nil
	}
	if err != nil {
		return User{}, err
	}
	if !u.Active || !u.TenantActive || (!u.NotBefore.IsZero() && u.NotBefore.After(g.AuthTime)) {
		return User{}, nil
	}
	return u, nil
}

// redeem appends the redemption ac recorded, then the session.started of
// the grant it starts, and issues the grant's tokens.
//
// The two are separate appends, not one atomic batch: the redemption alone
// decides (optimistic concurrency on the code's subject), and nats-server
// stages each atomic batch in a file store of its own, which held
// exchanges to about 70 a second (docs/benchmarks.md). Should the session's
// append fail after the redemption, the code is spent and no token leaves:
// the client starts a new authorization, and a replay of the code finds no
// session to revoke.
func (a *App) redeem(ctx context.Context, x CodeExchange, ac *domain.AuthCode, pos eventstore.Position, sessionID string, u User) (Tokens, error) {
	g := ac.Grant()
	now := a.now()
	offline := slices.Contains(g.Scopes, "offline_access") && x.Client.Allows(GrantRefreshToken)
	refresh, hash := domain.NewRefreshToken(sessionID)
	ttl := a.accessTTL // a grant without a refresh token lives as long as its access token
	if offline {
		ttl = a.refreshTTL
	}
	sess, err := domain.LoadSession(sessionID, nil)
	if err != nil {
		return Tokens{}, err
	}
	grant := domain.Grant{
		ClientID: x.Client.ID, Scopes: g.Scopes, AuthTime: g.AuthTime, AMR: g.AMR, ACR: g.ACR, BrowserSession: g.BrowserSession,
	}
	if err := sess.StartGrant(u.ID, grant, hash, now, ttl); err != nil {
		return Tokens{}, err
	}
	actor := userActor(x.Tenant, u.ID)
	if err := a.append(ctx, x.Tenant, ac, pos, actor); err != nil {
		return Tokens{}, err
	}
	if err := a.append(ctx, x.Tenant, sess, eventstore.Position{}, actor); err != nil {
		if errors.Is(err, eventstore.ErrConcurrency) {
			// Not a race to retry (the session is new): a retry would
			// take the code's own redemption for a replay.
			return Tokens{}, fault.Wrap(fault.Internal, fmt.Errorf("start the grant of a redeemed code: %v", err), "internal error") //nolint:errorlint // the concurrency error must not reach the caller's retry
		}
		return Tokens{}, err
	}
	t, err := a.grantTokens(ctx, x.Tenant, x.Client, u, sessionID, grant, g.Nonce, now)
	if err != nil {
		return Tokens{}, err
	}
	if offline {
		t.RefreshToken = refresh
	}
	return t, nil
}

// grantTokens issues the access token of a grant (session sessionID) of
// cl for u, and its ID token when openid was granted.
func (a *App) grantTokens(ctx context.Context, tenant string, cl Client, u User, sessionID string, g domain.Grant, nonce string, now time.Time) (Tokens, error) {
	access, err := a.issueAccess(ctx, tenant, u.ID, u.Roles, accessGrant{ClientID: cl.ID, Scopes: g.Scopes, GrantID: sessionID, AMR: g.AMR, ACR: g.ACR}, now)
	if err != nil {
		return Tokens{}, err
	}
	t := Tokens{AccessToken: access, ExpiresIn: a.accessTTL, Scopes: g.Scopes}
	if slices.Contains(g.Scopes, "openid") {
		t.IDToken, err = a.issueIDToken(ctx, tenant, cl, idToken{
			UserID: u.ID, Nonce: nonce, AuthTime: g.AuthTime, AMR: g.AMR, ACR: g.ACR,
			BrowserSession: g.BrowserSession, AccessToken: access, Profile: profileClaimsOf(u, g.Scopes),
		}, now)
		if err != nil {
			return Tokens{}, err
		}
	}
	return t, nil
}

// revokeReplayed appends the replay ac recorded (the first only) with the
// revocation of the first redemption's grant.
func (a *App) revokeReplayed(ctx context.Context, tenant string, ac *domain.AuthCode, pos eventstore.Position) error {
	changes := []change{{ac, pos}}
	if sid := ac.SessionID(); events.ValidID(sid) {
		sess, spos, err := a.loadSession(ctx, tenant, sid)
		if err != nil {
			return err
		}
		if sess.Revoke("", domain.RevokeCodeReplay, a.now()) == nil {
			changes = append(changes, change{sess, spos})
		}
	}
	return a.appendAll(ctx, tenant, events.System, changes...)
}
