package authclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/authn"
	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerifier_Verify feeds token strings from outside to Verify: it must
// never panic, and whatever it accepts is a token of the tenant it was
// asked about, signed by that tenant's published key.
func FuzzVerifier_Verify(f *testing.F) {
	is := mustIssuer(f, "acme")
	now := time.Now().UTC().Truncate(time.Second)
	v := mustVerifier(f, is.URL(), authclient.WithClock(func() time.Time { return now }))
	key := is.signingKey("acme")
	good := claimsOf(is, "acme", "user-1", now)
	f.Add(is.token(f, "acme", "user-1", now))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, key.KID, good))
	f.Add(sign(f, jwt.SigningMethodEdDSA, key.Private, key.KID, with(good, map[string]any{"roles": []any{1, nil}})))
	f.Add("eyJhbGciOiJFZERTQSIsImtpZCI6IngifQ.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(context.Background(), "acme", token)
		if err != nil {
			if !errors.Is(err, authclient.ErrInvalidToken) && !errors.Is(err, authclient.ErrUnavailable) {
				t.Fatalf("Verify error %v wraps neither ErrInvalidToken nor ErrUnavailable", err)
			}
			return
		}
		if p.Tenant != "acme" || p.Subject == "" || p.Issuer != is.issuerOf("acme") {
			t.Fatalf("accepted %q as %+v", token, p)
		}
	})
}

// FuzzVerifier_keySet serves key sets from outside: a malformed or hostile
// set must never panic the verifier or let a token through that its keys
// did not sign.
func FuzzVerifier_keySet(f *testing.F) {
	key := mustKey(f, authn.EdDSA)
	jwks, err := authn.JWKS([]authn.PublicKeyInfo{key.PublicInfo()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(jwks))
	f.Add(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"` + key.KID + `","alg":"HS256"}]}`)
	f.Add(`{"keys":[{"kty":"RSA","n":"AQ","e":"AQAB","kid":"` + key.KID + `","alg":"RS256"}]}`)
	f.Add(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"","kid":"` + key.KID + `","alg":"EdDSA"}]}`)
	f.Add(`{"keys":null}`)
	f.Add(`[]`)
	forger := mustKey(f, authn.EdDSA)
	f.Fuzz(func(t *testing.T, set string) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(set))
		}))
		defer srv.Close()
		v, err := authclient.NewVerifier(srv.URL, authclient.WithoutDiscovery())
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		claims := jwt.MapClaims{"iss": srv.URL + "/t/acme", "sub": "u", "tid": "acme", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		forged := sign(t, jwt.SigningMethodEdDSA, forger.Private, key.KID, claims)
		if _, err := v.Verify(context.Background(), "acme", forged); err == nil {
			t.Fatalf("key set %q let a token signed by another key through", set)
		}
		hmac := sign(t, jwt.SigningMethodHS256, []byte("secret"), key.KID, claims)
		if _, err := v.Verify(context.Background(), "acme", hmac); err == nil {
			t.Fatalf("key set %q let an HMAC token through", set)
		}
	})
}
