package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// Authorize decides an authorization request (OpenID Connect Core section
// 3.1.2) of tenant, whose client and redirect URI the HTTP edge has
// checked (the client exists, the redirect URI is one it registered,
// exactly), for the browser whose session cookie is cookie ("" for none).
// It returns where the browser goes next:
//
//   - the client's redirect URI with a new code, state and iss (RFC 9207),
//     when the browser has a usable session and nothing asks for a new
//     sign-in: a code without any page (single sign-on, prompt=none);
//   - the hosted login page, carrying the request sealed, otherwise.
//
// A session is usable when it is live, its user active in an active
// tenant and not changed (password, disable) since the sign-in, and
// neither prompt=login nor an exceeded max_age asks for a new one; with
// an id_token_hint, it must be the hint's user's.
//
// The refusals go back to the client's redirect URI (the edge builds the
// error redirect): ErrLoginRequired for prompt=none without a usable
// session, ErrUnauthorizedClient for a client whose grant types do not
// list authorization_code, and fault.Invalid for a request the policy
// refuses: a public client without a PKCE challenge, a challenge method
// other than S256 (plain included), a malformed challenge, no state where
// PKCE does not protect the request.
func (a *App) Authorize(ctx context.Context, tenant string, r AuthRequest, cookie string) (string, error) {
	cl, err := a.client(ctx, tenant, r.ClientID)
	if err != nil {
		return "", err
	}
	if err := checkAuthRequest(cl, r); err != nil {
		return "", err
	}
	var hint *hintClaims
	if r.IDTokenHint != "" {
		h, err := a.verifyIDTokenHint(ctx, tenant, r.IDTokenHint)
		if fault.CodeOf(err) == fault.Invalid {
			return "", refused(ErrLoginRequired, err)
		}
		if err != nil {
			return "", err
		}
		hint = &h
	}
	now := a.now()
	b, u, err := a.browserSession(ctx, tenant, cookie)
	if err != nil {
		return "", err
	}
	usable := b != nil && !r.HasPrompt(PromptLogin) &&
		(r.MaxAge == nil || now.Sub(b.AuthTime()) <= time.Duration(*r.MaxAge)*time.Second) &&
		(hint == nil || hint.Subject == u.ID)
	if usable {
		code, ac, err := a.newCode(tenant, cl, r, u.ID, b.ID(), b.AuthTime(), b.AMR(), now)
		if err != nil {
			return "", err
		}
		if err := a.append(ctx, tenant, ac, eventstore.Position{}, userActor(tenant, u.ID)); err != nil {
			return "", err
		}
		return codeRedirect(r.RedirectURI, code, r.State, authn.IssuerURL(a.publicURL, tenant))
	}
	if r.HasPrompt(PromptNone) {
		return "", ErrLoginRequired
	}
	sealed, err := a.sealRequest(tenant, r)
	if err != nil {
		return "", err
	}
	return authn.IssuerURL(a.publicURL, tenant) + "/signin?" + url.Values{"auth": {sealed}}.Encode(), nil
}

// checkAuthRequest applies the provider's policy to a request of cl
// (RFC 9700 section 2.1.1): PKCE S256 required of public clients, plain
// refused for all, and state required where no PKCE challenge binds the
// response to the browser that asked.
func checkAuthRequest(cl Client, r AuthRequest) error {
	switch {
	case !cl.Allows(GrantAuthorizationCode):
		return refused(ErrUnauthorizedClient, errors.New("client does not list authorization_code"))
	case r.CodeChallenge == "" && !cl.Confidential:
		return fault.New(fault.Invalid, "pkce-required", "code_challenge (PKCE, S256) is required of public clients")
	case r.CodeChallenge == "" && r.State == "":
		return fault.New(fault.Invalid, "state-required", "state is required without code_challenge")
	case r.CodeChallenge == "":
		return nil
	case r.CodeChallengeMethod != domain.PKCEMethodS256:
		return fault.New(fault.Invalid, "pkce-method", "code_challenge_method must be S256")
	case !domain.ValidChallenge(r.CodeChallenge):
		return fault.New(fault.Invalid, "pkce-challenge", "code_challenge is malformed")
	}
	return nil
}

// browserSession returns the live browser session of cookie with its user,
// or nil when there is none that signs the user in: no cookie or a
// malformed one, a session never started or ended, a user disabled,
// deleted or in a disabled tenant, or changed (password, disable) since
// the sign-in. Errors are the store's and the read model's.
func (a *App) browserSession(ctx context.Context, tenant, cookie string) (*domain.Browser, User, error) {
	id, err := domain.BrowserID(cookie)
	if err != nil {
		return nil, User{}, nil
	}
	last, ok, err := a.store.Last(ctx, tenant, events.AggregateBrowser, id)
	if err != nil {
		return nil, User{}, appendError("load browser session", err)
	}
	if !ok {
		return nil, User{}, nil
	}
	b, err := domain.ResumeBrowser(id, last.Envelope)
	if err != nil {
		return nil, User{}, err
	}
	if !b.Live() {
		return nil, User{}, nil
	}
	u, err := a.readModel.UserByID(ctx, tenant, b.UserID())
	if fault.CodeOf(err) == fault.NotFound {
		return nil, User{}, nil
	}
	if err != nil {
		return nil, User{}, err
	}
	if !u.Active || !u.TenantActive || (!u.NotBefore.IsZero() && u.NotBefore.After(b.AuthTime())) {
		return nil, User{}, nil
	}
	return b, u, nil
}

// newCode records a new authorization code of r for userID, signed in on
// browser session browserID at authTime with amr. The code aggregate has
// no history: its append expects an empty subject, so two codes can never
// share one.
func (a *App) newCode(tenant string, cl Client, r AuthRequest, userID, browserID string, authTime time.Time, amr []string, now time.Time) (string, *domain.AuthCode, error) {
	code, id := domain.NewAuthCode()
	ac, err := domain.LoadAuthCode(id, nil)
	if err != nil {
		return "", nil, err
	}
	err = ac.Issue(events.AuthCodeIssued{
		ClientID: cl.ID, UserID: userID, RedirectURI: r.RedirectURI,
		CodeChallenge: r.CodeChallenge, CodeChallengeMethod: challengeMethod(r),
		Nonce: r.Nonce, Scopes: grantedScopes(cl, r.Scopes), BrowserSession: browserID,
		AuthTime: authTime, AMR: amr, ACR: acrOf(amr), ExpiresAt: now.Add(CodeTTL),
	}, now)
	if err != nil {
		return "", nil, err
	}
	return code, ac, nil
}

func challengeMethod(r AuthRequest) string {
	if r.CodeChallenge == "" {
		return ""
	}
	return r.CodeChallengeMethod
}

// grantedScopes returns the scopes of requested that cl may have, in
// their order, without repetitions: those its registration lists. Others
// (address, phone, a scope it was not registered for) are dropped, not
// refused: OpenID Connect lets a provider grant less than asked.
func grantedScopes(cl Client, requested []string) []string {
	out := []string{}
	for _, s := range requested {
		if slices.Contains(cl.Scopes, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// codeRedirect returns redirectURI with the authorization response's
// parameters added to its query (RFC 6749 section 4.1.2): code, state
// when the request had one, and iss (RFC 9207).
func codeRedirect(redirectURI, code, state, iss string) (string, error) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "", fault.Wrap(fault.Internal, fmt.Errorf("registered redirect uri %q: %w", redirectURI, err), "internal error")
	}
	q := u.Query()
	q.Set("code", code)
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", iss)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
