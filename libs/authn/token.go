package authn

import (
	"fmt"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of an access token (DESIGN section 7). Zero times
// are absent claims.
type Claims struct {
	Issuer    string    // iss: <public-url>/t/<tenant>
	Subject   string    // sub: the user id
	Audience  []string  // aud
	ExpiresAt time.Time // exp
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf
	ID        string    // jti
	Tenant    string    // tid: the tenant slug
	Roles     []string  // roles: the user's role names

	// The claims of a token issued to a registered OAuth client; empty for
	// the password grant without one.
	ClientID string // client_id (RFC 9068): the client the token was issued to
	AZP      string // azp: the authorized party, the same client
	Scope    string // scope: the scopes granted, space-separated
	// GrantID (gid) names the session (grant) an authorization code
	// started: the token dies with it, at the endpoints that check.
	GrantID string
	// AMR (RFC 8176) and ACR say how the user signed in, for a token of a
	// hosted sign-in: "pwd", and "otp" with a second factor.
	AMR []string
	ACR string
}

// wireClaims is the JSON form of Claims as golang-jwt reads and writes it.
type wireClaims struct {
	jwt.RegisteredClaims
	Tenant   string   `json:"tid"`
	Roles    []string `json:"roles,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
	AZP      string   `json:"azp,omitempty"`
	Scope    string   `json:"scope,omitempty"`
	GrantID  string   `json:"gid,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	ACR      string   `json:"acr,omitempty"`
}

func numericDate(t time.Time) *jwt.NumericDate {
	if t.IsZero() {
		return nil
	}
	return jwt.NewNumericDate(t)
}

func timeOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}

func (c Claims) wire() wireClaims {
	return wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			Audience:  c.Audience,
			ExpiresAt: numericDate(c.ExpiresAt),
			IssuedAt:  numericDate(c.IssuedAt),
			NotBefore: numericDate(c.NotBefore),
			ID:        c.ID,
		},
		Tenant:   c.Tenant,
		Roles:    c.Roles,
		ClientID: c.ClientID,
		AZP:      c.AZP,
		Scope:    c.Scope,
		GrantID:  c.GrantID,
		AMR:      c.AMR,
		ACR:      c.ACR,
	}
}

func (w wireClaims) claims() *Claims {
	return &Claims{
		Issuer:    w.Issuer,
		Subject:   w.Subject,
		Audience:  []string(w.Audience),
		ExpiresAt: timeOf(w.ExpiresAt),
		IssuedAt:  timeOf(w.IssuedAt),
		NotBefore: timeOf(w.NotBefore),
		ID:        w.ID,
		Tenant:    w.Tenant,
		Roles:     w.Roles,
		ClientID:  w.ClientID,
		AZP:       w.AZP,
		Scope:     w.Scope,
		GrantID:   w.GrantID,
		AMR:       w.AMR,
		ACR:       w.ACR,
	}
}

// IssuerURL returns the issuer of tenant's tokens: <publicURL>/t/<tenant>.
func IssuerURL(publicURL, tenant string) string {
	return strings.TrimRight(publicURL, "/") + "/t/" + tenant
}

// signingMethod returns golang-jwt's method for alg.
func signingMethod(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case EdDSA:
		return jwt.SigningMethodEdDSA, nil
	case ES256:
		return jwt.SigningMethodES256, nil
	case RS256:
		return jwt.SigningMethodRS256, nil
	}
	return nil, ValidAlg(alg)
}

// Issue signs claims with key and returns the compact JWT, with key.KID in
// the "kid" header. An empty ID gets a random jti and a zero IssuedAt the
// current time; Issuer, Subject, Tenant and ExpiresAt are required
// (fault.Invalid if missing).
func Issue(key *SigningKey, claims Claims) (string, error) {
	if key == nil || key.Private == nil {
		return "", fault.New(fault.Internal, "no-signing-key", "no signing key")
	}
	method, err := signingMethod(key.Alg)
	if err != nil {
		return "", err
	}
	switch {
	case claims.Issuer == "":
		return "", fault.New(fault.Invalid, "invalid-claims", "token needs an issuer")
	case claims.Subject == "":
		return "", fault.New(fault.Invalid, "invalid-claims", "token needs a subject")
	case claims.Tenant == "":
		return "", fault.New(fault.Invalid, "invalid-claims", "token needs a tenant")
	case claims.ExpiresAt.IsZero():
		return "", fault.New(fault.Invalid, "invalid-claims", "token needs an expiry")
	}
	if claims.ID == "" {
		claims.ID = randomString(16)
	}
	if claims.IssuedAt.IsZero() {
		claims.IssuedAt = time.Now()
	}
	return sign(key, method, claims.wire())
}

// Sign signs claims with key and returns the compact JWT, with key.KID in
// the "kid" header: the token of another kind than an access token (an ID
// token), whose claims the caller shapes and checks itself.
func Sign(key *SigningKey, claims jwt.Claims) (string, error) {
	if key == nil || key.Private == nil {
		return "", fault.New(fault.Internal, "no-signing-key", "no signing key")
	}
	method, err := signingMethod(key.Alg)
	if err != nil {
		return "", err
	}
	return sign(key, method, claims)
}

func sign(key *SigningKey, method jwt.SigningMethod, claims jwt.Claims) (string, error) {
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = key.KID
	s, err := tok.SignedString(key.Private)
	if err != nil {
		return "", fault.Wrap(fault.Internal, fmt.Errorf("sign token: %w", err), "sign token")
	}
	return s, nil
}
