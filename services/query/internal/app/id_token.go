package app

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
	"github.com/golang-jwt/jwt/v5"
)

// The ID tokens of the OpenID Connect provider (OpenID Connect Core
// section 2): signed with the tenant's key of the client's
// id_token_signed_response_alg (RS256 by default), the kid in the header.

// DefaultIDTokenAlg is the algorithm of a client that chose none: RS256,
// which OpenID Connect requires every provider to support.
const DefaultIDTokenAlg = authn.RS256

// ACRPassword is the acr of a sign-in with a password.
const ACRPassword = "urn:authstream:acr:password" //nolint:gosec // G101: a method's name, not a credential

// AMRPassword is the amr of a sign-in with a password (RFC 8176).
const AMRPassword = "pwd"

// ACRMFA is the acr of a sign-in with a password and a second factor.
const ACRMFA = "urn:authstream:acr:mfa"

// AMROTP is the amr of a one-time code (RFC 8176): a TOTP code or a
// recovery code.
const AMROTP = "otp"

// AMRHardwareKey is the amr of a passkey (RFC 8176 "hwk": proof of
// possession of a hardware-secured key), and AMRUser the amr that comes
// with it when the authenticator verified the user (a PIN, a biometric).
const (
	AMRHardwareKey = "hwk"
	AMRUser        = "user"
)

// acrOf returns the acr of a sign-in with the methods amr: ACRMFA with two
// factors (a password and a code or a passkey, or a passkey that verified
// its user), ACRPassword otherwise.
func acrOf(amr []string) string {
	passkey := slices.Contains(amr, AMRHardwareKey)
	if slices.Contains(amr, AMROTP) || (passkey && (slices.Contains(amr, AMRPassword) || slices.Contains(amr, AMRUser))) {
		return ACRMFA
	}
	return ACRPassword
}

// idClaims are an ID token's claims.
type idClaims struct {
	jwt.RegisteredClaims
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	Nonce    string           `json:"nonce,omitempty"`
	AMR      []string         `json:"amr,omitempty"`
	ACR      string           `json:"acr,omitempty"`
	AtHash   string           `json:"at_hash,omitempty"`
	SID      string           `json:"sid,omitempty"`
	AZP      string           `json:"azp,omitempty"`
	// TID is never set in an ID token: an access token (which carries it)
	// is refused as an id_token_hint.
	TID string `json:"tid,omitempty"`
	profileClaims
}

// profileClaims are the standard claims of a user's profile (OpenID
// Connect Core 5.1) that the scopes profile and email release (5.4), in
// ID tokens and userinfo alike; a claim the user has no value for is
// absent.
type profileClaims struct {
	Name          string `json:"name,omitempty"`
	Locale        string `json:"locale,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
}

// profileClaimsOf returns the claims of u that scopes release.
func profileClaimsOf(u User, scopes []string) profileClaims {
	var c profileClaims
	if slices.Contains(scopes, "profile") {
		c.Name, c.Locale = u.Name, u.Locale
	}
	if slices.Contains(scopes, "email") && u.Email != "" {
		verified := u.EmailVerified
		c.Email, c.EmailVerified = u.Email, &verified
	}
	return c
}

// idToken is what an ID token says of its sign-in.
type idToken struct {
	UserID         string
	ClientID       string
	Nonce          string
	AuthTime       time.Time
	AMR            []string
	ACR            string
	BrowserSession string
	AccessToken    string // for at_hash
	Profile        profileClaims
}

// idTokenAlg returns the algorithm of cl's ID tokens.
func idTokenAlg(cl Client) string {
	if cl.IDTokenAlg == "" {
		return DefaultIDTokenAlg
	}
	return cl.IDTokenAlg
}

// issueIDToken signs the ID token of t for cl in tenant, valid as long as
// an access token.
func (a *App) issueIDToken(ctx context.Context, tenant string, cl Client, t idToken, now time.Time) (string, error) {
	alg := idTokenAlg(cl)
	key, err := a.idKeys.SignerFor(ctx, tenant, alg)
	if err != nil {
		return "", fmt.Errorf("id token key %s of %s: %w", alg, tenant, err)
	}
	if key.Alg != alg {
		return "", fault.Wrap(fault.Internal, fmt.Errorf("id token key of %s for %s is %s", tenant, alg, key.Alg), "internal error")
	}
	c := idClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    authn.IssuerURL(a.publicURL, tenant),
			Subject:   t.UserID,
			Audience:  jwt.ClaimStrings{cl.ID},
			ExpiresAt: jwt.NewNumericDate(now.Add(a.accessTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
		},
		Nonce: t.Nonce, AMR: t.AMR, ACR: t.ACR, SID: t.BrowserSession, AZP: cl.ID,
		profileClaims: t.Profile,
	}
	if !t.AuthTime.IsZero() {
		c.AuthTime = jwt.NewNumericDate(t.AuthTime)
	}
	if t.AccessToken != "" {
		c.AtHash = tokenHash(alg, t.AccessToken)
	}
	return authn.Sign(key, c)
}

// tokenHash is at_hash (OpenID Connect Core section 3.1.3.6): the
// base64url of the left half of the hash of the token, the hash being the
// one of the ID token's algorithm (SHA-512 for EdDSA, as for Ed25519
// elsewhere).
func tokenHash(alg, token string) string {
	newHash := sha256.New
	if alg == authn.EdDSA {
		newHash = sha512.New
	}
	h := newHash()
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// hintClaims is what an id_token_hint tells, once verified.
type hintClaims struct {
	Subject  string
	Audience []string
	SID      string
}

// verifyIDTokenHint checks that hint is an ID token this provider issued
// for tenant: the signature of one of the tenant's keys (the kid's, under
// that key's algorithm only) and the tenant's issuer. An expired hint is
// fine (OpenID Connect Core section 3.1.2.1, RP-Initiated Logout section
// 2): it names a past sign-in. Anything else is fault.Invalid.
func (a *App) verifyIDTokenHint(ctx context.Context, tenant, hint string) (hintClaims, error) {
	bad := func(format string, args ...any) error {
		return &fault.Error{Code: fault.Invalid, Reason: "invalid-id-token-hint", Message: "id_token_hint is not an ID token of this tenant",
			Err: fmt.Errorf(format, args...)}
	}
	if len(hint) > authn.MaxTokenBytes {
		return hintClaims{}, bad("hint longer than %d bytes", authn.MaxTokenBytes)
	}
	var unverified idClaims
	head, _, err := jwt.NewParser().ParseUnverified(hint, &unverified)
	if err != nil {
		return hintClaims{}, bad("malformed hint: %v", err)
	}
	kid, _ := head.Header["kid"].(string)
	if kid == "" {
		return hintClaims{}, bad("hint without kid")
	}
	alg, key, err := a.keys.PublicKey(ctx, tenant, kid)
	if err != nil {
		if c := fault.CodeOf(err); c == fault.Unavailable || c == fault.Internal {
			return hintClaims{}, err
		}
		return hintClaims{}, bad("key %q: %v", kid, err)
	}
	var c idClaims
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(hint, &c, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		return hintClaims{}, bad("hint: %v", err)
	}
	if c.Issuer != authn.IssuerURL(a.publicURL, tenant) || c.Subject == "" || len(c.Audience) == 0 || c.TID != "" {
		return hintClaims{}, bad("hint of issuer %q, subject %q, audience %v", c.Issuer, c.Subject, c.Audience)
	}
	return hintClaims{Subject: c.Subject, Audience: c.Audience, SID: c.SID}, nil
}
