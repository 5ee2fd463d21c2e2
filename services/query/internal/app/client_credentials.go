package app

import (
	"context"
	"errors"
	"slices"
)

// ClientCredentials issues a service account's access token (RFC 6749
// section 4.4): the subject is client:<client id>, the roles the client's,
// so that the token's permissions are its roles' (a check with it asks the
// permission cache, which reads a client subject's roles from the client
// registry). Only a confidential client whose grant types list
// client_credentials may ask (ErrUnauthorizedClient); the scopes granted
// are those of scopes the client may have. Nothing is appended: a token is
// a signature, so issuance is as cheap as the key allows.
func (a *App) ClientCredentials(ctx context.Context, tenant string, cl Client, scopes []string) (_ Tokens, err error) {
	if !a.OIDC() {
		return Tokens{}, errNotConfigured
	}
	defer func() { a.metrics.login(ctx, GrantClientCredentials, tenant, err, true) }()
	if !cl.Confidential || !cl.Allows(GrantClientCredentials) {
		return Tokens{}, refused(ErrUnauthorizedClient, errors.New("client may not use client_credentials"))
	}
	granted := slices.DeleteFunc(grantedScopes(cl, scopes), func(s string) bool {
		return s == "openid" || s == "offline_access" // no user, no session
	})
	now := a.now()
	access, err := a.issueAccess(ctx, tenant, ClientSubjectPrefix+cl.ID, cl.Roles, accessGrant{ClientID: cl.ID, Scopes: granted}, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, ExpiresIn: a.accessTTL, Scopes: granted}, nil
}
