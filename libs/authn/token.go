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
}

// wireClaims is the JSON form of Claims as golang-jwt reads and writes it.
type wireClaims struct {
	jwt.RegisteredClaims
	Tenant string   `json:"tid"`
	Roles  []string `json:"roles,omitempty"`
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
		Tenant: c.Tenant,
		Roles:  c.Roles,
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
	tok := jwt.NewWithClaims(method, claims.wire())
	tok.Header["kid"] = key.KID
	s, err := tok.SignedString(key.Private)
	if err != nil {
		return "", fault.Wrap(fault.Internal, fmt.Errorf("sign token: %w", err), "sign token")
	}
	return s, nil
}
