package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/querytest"
	"golang.org/x/oauth2"
)

// One test per line of the OpenID Foundation's Basic OP and RP-initiated
// logout plans (shared OIDC-CONFORMANCE.md), named after the suite module,
// run with coreos/go-oidc and x/oauth2 as the relying party.

// mustBasicRP is a relying party of a confidential client of acme with
// client_secret_basic, and user alice.
func mustBasicRP(tb testing.TB, p *provider, alg string) *rp {
	tb.Helper()
	p.mustUser(tb, "acme", "alice")
	cl := querytest.Confidential("rp-"+strings.ToLower(alg), rpSecret, rpRedirect)
	cl.IDTokenAlg = alg
	return p.mustRP(tb, "acme", cl, oauth2.AuthStyleInHeader)
}

func TestOIDCC_server(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{authn.RS256, authn.EdDSA, authn.ES256} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			p := mustProvider(t)
			r := mustBasicRP(t, p, alg)
			f := r.mustSignIn(t, "alice", nil)
			if f.callback.Get("state") != f.state || f.callback.Get("iss") != p.issuer("acme") {
				t.Fatalf("callback = %v, want state %q and iss", f.callback, f.state)
			}
			tok, id := r.mustTokens(t, f)
			c := mustClaims(t, id)
			if id.Issuer != p.issuer("acme") || !slices.Equal(id.Audience, []string{r.client.ID}) || c.AuthTime == 0 ||
				!slices.Equal(c.AMR, []string{"pwd"}) || c.ACR == "" || c.SID == "" || c.AtHash == "" || c.AZP != r.client.ID {
				t.Fatalf("id token %+v claims %+v", id, c)
			}
			if tok.RefreshToken != "" {
				t.Fatalf("a refresh token without offline_access: %v", tok)
			}
			// The ID token's header names a key of the JWKS, of the client's algorithm.
			parts := strings.Split(tok.Extra("id_token").(string), ".")
			head := mustSegment(t, parts[0])
			if head["alg"] != alg || head["kid"] == "" || !p.jwksHas(t, "acme", head["kid"].(string), alg) {
				t.Fatalf("header %v is not a JWKS key of %s", head, alg)
			}
		})
	}
}

func TestOIDCC_serverClientSecretPost(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	p.mustUser(t, "acme", "alice")
	r := p.mustRP(t, "acme", querytest.Confidential("rp-post", rpSecret, rpRedirect), oauth2.AuthStyleInParams)
	f := r.mustSignIn(t, "alice", nil)
	r.mustTokens(t, f)
}

func TestOIDCC_idtokenRS256(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "") // no id_token_signed_response_alg: RS256
	tok, _ := r.mustTokens(t, r.mustSignIn(t, "alice", nil))
	if head := mustSegment(t, strings.Split(tok.Extra("id_token").(string), ".")[0]); head["alg"] != authn.RS256 {
		t.Fatalf("default ID token alg = %v", head["alg"])
	}
	var disc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := r.provider.Claims(&disc); err != nil || !slices.Contains(disc.Algs, authn.RS256) {
		t.Fatalf("discovery algs = %v (%v)", disc.Algs, err)
	}
}

// jwksHas reports whether tenant's JWKS lists kid with alg.
func (p *provider) jwksHas(tb testing.TB, tenant, kid, alg string) bool {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.issuer(tenant)+"/.well-known/jwks.json", nil)
	_, _, body := getJSON(tb, req)
	keys, _ := body["keys"].([]any)
	for _, k := range keys {
		m := k.(map[string]any)
		if m["kid"] == kid && m["alg"] == alg {
			return true
		}
	}
	return false
}

var (
	_ = context.Background
	_ = url.Values{}
	_ = app.ErrInvalidCode
)
