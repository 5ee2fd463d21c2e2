package app

import (
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// EndSession is an RP-initiated logout request (OpenID Connect
// RP-Initiated Logout 1.0 section 2).
type EndSession struct {
	Tenant                string
	IDTokenHint           string
	ClientID              string
	PostLogoutRedirectURI string
	State                 string
	Cookie                string // the browser's session cookie, "" for none
}

// EndSession ends the browser's session and says where the browser goes:
// the client's post_logout_redirect_uri with state, when the request names
// one that the client (named by client_id or by the hint's audience)
// registered, exactly; nowhere ("") when it names none or no client, and
// the provider's own page confirms the logout.
//
// A request that must not redirect is refused before anything changes,
// with ErrInvalidLogout: an id_token_hint that is not an ID token of the
// tenant (forged, altered, another issuer's; an expired one is fine), a
// client_id that is not the hint's audience, an unknown client, or a
// post_logout_redirect_uri the client did not register. The browser
// session's end is recorded (browser.ended) when it was live.
func (a *App) EndSession(ctx context.Context, e EndSession) (string, error) {
	if !a.OIDC() {
		return "", errNotConfigured
	}
	if authz.ValidTenantSlug(e.Tenant) != nil {
		return "", ErrUnknownTenant
	}
	clientID := e.ClientID
	if e.IDTokenHint != "" {
		h, err := a.verifyIDTokenHint(ctx, e.Tenant, e.IDTokenHint)
		if fault.CodeOf(err) == fault.Invalid {
			return "", refused(ErrInvalidLogout, err)
		}
		if err != nil {
			return "", err
		}
		switch {
		case clientID == "":
			clientID = h.Audience[0]
		case !slices.Contains(h.Audience, clientID):
			return "", refused(ErrInvalidLogout, fmt.Errorf("client_id %q is not the hint's audience", clientID))
		}
	}
	redirect := ""
	if e.PostLogoutRedirectURI != "" && clientID != "" {
		cl, err := a.client(ctx, e.Tenant, clientID)
		if err == ErrClientNotFound {
			return "", refused(ErrInvalidLogout, err)
		}
		if err != nil {
			return "", err
		}
		if !slices.Contains(cl.PostLogoutRedirectURIs, e.PostLogoutRedirectURI) {
			return "", refused(ErrInvalidLogout, fmt.Errorf("post_logout_redirect_uri not registered for client %s", cl.ID))
		}
		u, err := url.Parse(e.PostLogoutRedirectURI)
		if err != nil {
			return "", refused(ErrInvalidLogout, err)
		}
		if e.State != "" {
			q := u.Query()
			q.Set("state", e.State)
			u.RawQuery = q.Encode()
		}
		redirect = u.String()
	}
	if b, pos, ok := a.endableBrowser(ctx, e.Tenant, e.Cookie); ok {
		b.End(domain.BrowserLogout, a.now())
		if err := a.append(ctx, e.Tenant, b, pos, userActor(e.Tenant, b.UserID())); err != nil {
			return "", err
		}
	}
	return redirect, nil
}
