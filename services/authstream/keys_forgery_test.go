package authstream_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
)

// testForgeries presents forged and otherwise invalid tokens to both
// services, for a tenant of each signing algorithm: every one is refused
// with 401 and WWW-Authenticate: Bearer by the query service (GET /me) and
// by the command service (PUT /roles/{name}). The forgeries are made with
// the tenant's real private key wherever only one thing should be wrong,
// and a control token made the same way is accepted, so each refusal is
// for the reason the case names.
func testForgeries(t *testing.T, p *keysPlatform, root tokens) {
	tenants := []struct{ id, alg string }{{"alpha", authn.EdDSA}, {"bravo", authn.ES256}, {"charlie", authn.RS256}}
	admins := map[string]tokens{}
	for _, tn := range tenants {
		admins[tn.id] = p.mustTenant(t, root.AccessToken, tn.id, tn.alg)
	}

	for i, tn := range tenants {
		other := tenants[(i+1)%len(tenants)].id
		t.Run(tn.id+" "+tn.alg, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := mustForger(t, p, tn.id, admins[tn.id])
			of := mustForger(t, p, other, admins[other])

			// A user without roles, to tamper with its token, and a user
			// deleted after its token was issued.
			admin := admins[tn.id].AccessToken
			reg := p.DoCommand(t, http.MethodPost, "/t/"+tn.id+"/users", admin,
				map[string]any{"username": "bob", "password": userPassword}, http.StatusCreated)
			bob := p.Login(t, tn.id, "bob", userPassword, reg.Token())
			gone := p.DoCommand(t, http.MethodPost, "/t/"+tn.id+"/users", admin,
				map[string]any{"username": "gone", "password": userPassword}, http.StatusCreated)
			goneID := gone.JSON()["id"].(string)
			goneClaims := f.claims(goneID)
			goneClaims["iat"], goneClaims["nbf"] = time.Now().Add(-5*time.Second).Unix(), time.Now().Add(-5*time.Second).Unix()
			goneToken := f.sign(f.header(), goneClaims)
			// Until the delete, the query service takes that token.
			p.Do(t, http.MethodGet, p.Query+"/t/"+tn.id+"/me", goneToken, gone.Token(), nil, http.StatusOK)
			del := p.DoCommand(t, http.MethodDelete, "/t/"+tn.id+"/users/"+goneID, admin, nil, http.StatusNoContent)
			mustCheck(t, p.Platform, tn.id, admin, goneID, "docs:read", del.Token()) // waits until the read model has the delete

			// The control: the real key, the real header, good claims.
			control := f.sign(f.header(), f.claims(f.sub))
			p.mustAccepted(t, tn.id, control, "control")

			otherKey, err := p.keys.Signer(ctx, other)
			if err != nil {
				t.Fatal(err)
			}
			impostor := mustKeyOtherThan(t, tn.alg)
			now := time.Now()

			tests := []struct {
				name  string
				token string
				at    []string // tenants it is presented at; default tn.id
			}{
				{name: "alg none, empty signature", token: unsigned(with(f.header(), "alg", "none"), f.claims(f.sub))},
				{name: "alg none, no signature part", token: strings.TrimSuffix(unsigned(with(f.header(), "alg", "none"), f.claims(f.sub)), ".")},
				{name: "alg None", token: unsigned(with(f.header(), "alg", "None"), f.claims(f.sub))},
				{name: "HS256 keyed with the public key (DER)", token: hs256(f.header(), f.claims(f.sub), f.publicDER)},
				{name: "HS256 keyed with the public key (PEM)", token: hs256(f.header(), f.claims(f.sub), f.publicPEM)},
				{name: "HS256 keyed with the raw public key", token: hs256(f.header(), f.claims(f.sub), f.publicRaw)},
				{name: "HS256 keyed with the JWK's public member", token: hs256(f.header(), f.claims(f.sub), []byte(f.jwkMember))},
				{name: "HS256 keyed with the whole JWK", token: hs256(f.header(), f.claims(f.sub), f.jwk)},
				{name: "HS512 keyed with the public key", token: hmacToken("HS512", f.header(), f.claims(f.sub), f.publicDER)},
				{name: "another tenant's token", token: admins[other].AccessToken},
				{name: "another tenant's key and kid, this tenant's claims", token: signWith(otherKey, with(f.header(), "kid", otherKey.KID), f.claims(f.sub))},
				{name: "another tenant's key under this tenant's kid", token: signWith(otherKey, with(f.header(), "alg", otherKey.Alg), f.claims(f.sub))},
				{
					name:  "this tenant's key and kid, the other tenant's iss and tid",
					token: f.sign(f.header(), with(with(f.claims(f.sub), "iss", of.issuer), "tid", other)),
					at:    []string{tn.id, other},
				},
				{name: "this tenant's iss, the other tenant's tid", token: f.sign(f.header(), with(f.claims(f.sub), "tid", other))},
				{name: "no iss", token: f.sign(f.header(), without(f.claims(f.sub), "iss"))},
				{name: "no tid", token: f.sign(f.header(), without(f.claims(f.sub), "tid"))},
				{name: "tampered roles, signature kept", token: tamper(bob.AccessToken, "roles", []string{"admin"})},
				{name: "tampered subject, signature kept", token: tamper(bob.AccessToken, "sub", f.sub)},
				{name: "tampered expiry, signature kept", token: tamper(control, "exp", now.Add(24*time.Hour).Unix())},
				{name: "header alg changed, signature kept", token: retitle(control, mustOtherAlg(tn.alg))},
				{name: "signature of another token", token: spliced(control, bob.AccessToken)},
				{name: "truncated signature", token: control[:len(control)-4]},
				{name: "expired", token: f.sign(f.header(), with(with(with(f.claims(f.sub), "exp", now.Add(-time.Hour).Unix()), "iat", now.Add(-2*time.Hour).Unix()), "nbf", now.Add(-2*time.Hour).Unix()))},
				{name: "no exp", token: f.sign(f.header(), without(f.claims(f.sub), "exp"))},
				{name: "nbf in the future", token: f.sign(f.header(), with(f.claims(f.sub), "nbf", now.Add(time.Hour).Unix()))},
				{name: "iat in the future", token: f.sign(f.header(), with(f.claims(f.sub), "iat", now.Add(time.Hour).Unix()))},
				{name: "no sub", token: f.sign(f.header(), without(f.claims(f.sub), "sub"))},
				{name: "no jti", token: f.sign(f.header(), without(f.claims(f.sub), "jti"))},
				{name: "unknown kid", token: f.sign(with(f.header(), "kid", authn.NewKID()), f.claims(f.sub))},
				{name: "no kid", token: f.sign(without(f.header(), "kid"), f.claims(f.sub))},
				{name: "empty kid", token: f.sign(with(f.header(), "kid", ""), f.claims(f.sub))},
				{name: "another algorithm's key under this kid", token: signWith(impostor, with(f.header(), "alg", impostor.Alg), f.claims(f.sub))},
				{
					name:  "a key embedded in the header",
					token: signWith(impostor, with(with(f.header(), "alg", impostor.Alg), "jwk", json.RawMessage(mustJWK(t, impostor))), f.claims(f.sub)),
				},
				{name: "a user deleted after the token was issued", token: goneToken},
				{name: "garbage", token: "garbage"},
				{name: "three garbage parts", token: "a.b.c"},
				{name: "empty parts", token: ".."},
				{name: "JSON instead of a JWT", token: `{"alg":"none"}`},
				{name: "over 8 KiB", token: f.sign(f.header(), with(f.claims(f.sub), "pad", strings.Repeat("x", 9<<10)))},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					at := tc.at
					if at == nil {
						at = []string{tn.id}
					}
					for _, tenant := range at {
						p.mustRefuse(t, tenant, tc.token)
					}
				})
			}
		})
	}
}

// forger signs tokens with a tenant's real key, as its query service would,
// and knows the tenant's public key in the forms a confused verifier might
// take for an HMAC secret.
type forger struct {
	key       *authn.SigningKey
	tenant    string
	issuer    string
	sub       string // the admin's user id
	publicDER []byte // SubjectPublicKeyInfo
	publicPEM []byte
	publicRaw []byte // Ed25519 bytes, the uncompressed EC point, or the RSA modulus
	jwk       []byte // the JWK as the JWKS publishes it
	jwkMember string // x (OKP, EC) or n (RSA) as published
}

func mustForger(tb testing.TB, p *keysPlatform, tenant string, admin tokens) *forger {
	tb.Helper()
	key, err := p.keys.Signer(context.Background(), tenant)
	if err != nil {
		tb.Fatalf("signer of %s: %v", tenant, err)
	}
	_, _, claims, err := joseVerify(p.Client, tenant, admin.AccessToken)
	if err != nil {
		tb.Fatalf("admin token of %s: %v", tenant, err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	var raw []byte
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		raw = pub
	case *ecdsa.PublicKey:
		raw, _ = pub.Bytes()
	case *rsa.PublicKey:
		raw = pub.N.Bytes()
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	p.Do(tb, http.MethodGet, p.Query+"/t/"+tenant+"/.well-known/jwks.json", "", "", nil, http.StatusOK).Decode(tb, &set)
	f := &forger{
		key: key, tenant: tenant, issuer: claims.Issuer, sub: claims.Subject,
		publicDER: der, publicPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), publicRaw: raw,
	}
	for _, k := range set.Keys {
		var members struct{ KID, X, N string }
		if err := json.Unmarshal(k, &members); err != nil {
			tb.Fatal(err)
		}
		if members.KID == key.KID {
			f.jwk, f.jwkMember = k, members.X+members.N
		}
	}
	if f.jwk == nil {
		tb.Fatalf("JWKS of %s lacks its signer %s", tenant, key.KID)
	}
	return f
}

// header is the header the query service writes.
func (f *forger) header() map[string]any {
	return map[string]any{"alg": f.key.Alg, "typ": "JWT", "kid": f.key.KID}
}

// claims are good claims of user sub, issued now.
func (f *forger) claims(sub string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": f.issuer, "sub": sub, "aud": []string{"authstream"}, "tid": f.tenant, "roles": []string{"admin"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": authn.NewKID(),
	}
}

// sign signs with the tenant's real key.
func (f *forger) sign(header, claims map[string]any) string { return signWith(f.key, header, claims) }

var b64 = base64.RawURLEncoding

// signingInput is the JWS signing input of header and claims.
func signingInput(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64.EncodeToString(h) + "." + b64.EncodeToString(c)
}

// signWith signs header and claims with key under key's algorithm,
// whatever the header says.
func signWith(key *authn.SigningKey, header, claims map[string]any) string {
	in := signingInput(header, claims)
	sum := sha256.Sum256([]byte(in))
	var sig []byte
	switch priv := key.Private.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(priv, []byte(in))
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
		if err != nil {
			panic(err)
		}
		sig = make([]byte, 64) // JWS wants r || s, 32 bytes each
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:]); err != nil {
			panic(err)
		}
	}
	return in + "." + b64.EncodeToString(sig)
}

// unsigned is a token with an empty signature.
func unsigned(header, claims map[string]any) string { return signingInput(header, claims) + "." }

func hs256(header, claims map[string]any, secret []byte) string {
	return hmacToken("HS256", header, claims, secret)
}

// hmacToken is the classic key-confusion forgery: an HMAC keyed with
// something public.
func hmacToken(alg string, header, claims map[string]any, secret []byte) string {
	in := signingInput(with(header, "alg", alg), claims)
	var mac []byte
	switch alg {
	case "HS512":
		m := hmac.New(sha512.New, secret)
		m.Write([]byte(in))
		mac = m.Sum(nil)
	default:
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		mac = m.Sum(nil)
	}
	return in + "." + b64.EncodeToString(mac)
}

// tamper changes one claim of token and keeps its header and signature.
func tamper(token, claim string, value any) string {
	parts := strings.Split(token, ".")
	raw, _ := b64.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(raw, &claims)
	claims[claim] = value
	c, _ := json.Marshal(claims)
	return parts[0] + "." + b64.EncodeToString(c) + "." + parts[2]
}

// retitle changes the alg of token's header and keeps the signature.
func retitle(token, alg string) string {
	parts := strings.Split(token, ".")
	raw, _ := b64.DecodeString(parts[0])
	var header map[string]any
	_ = json.Unmarshal(raw, &header)
	header["alg"] = alg
	h, _ := json.Marshal(header)
	return b64.EncodeToString(h) + "." + parts[1] + "." + parts[2]
}

// spliced is the header and claims of a with the signature of b.
func spliced(a, b string) string {
	return a[:strings.LastIndex(a, ".")] + b[strings.LastIndex(b, "."):]
}

// with returns a copy of m with k set to v.
func with(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}

// without returns a copy of m without k.
func without(m map[string]any, k string) map[string]any {
	out := with(m, k, nil)
	delete(out, k)
	return out
}

// mustOtherAlg returns a supported algorithm other than alg.
func mustOtherAlg(alg string) string {
	if alg == authn.RS256 {
		return authn.EdDSA
	}
	return authn.RS256
}

// mustKeyOtherThan returns a fresh key of a supported algorithm other than
// alg: a key nobody published.
func mustKeyOtherThan(tb testing.TB, alg string) *authn.SigningKey {
	tb.Helper()
	k, err := authn.GenerateKey(mustOtherAlg(alg))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustJWK(tb testing.TB, k *authn.SigningKey) []byte {
	tb.Helper()
	j, err := k.PublicJWK()
	if err != nil {
		tb.Fatal(err)
	}
	return j
}
