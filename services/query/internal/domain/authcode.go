package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// codeLen is the length of an authorization code: 32 random bytes in
// unpadded base64url.
const codeLen = 43

// PKCEMethodS256 is the one PKCE method accepted (RFC 7636 section 4.2;
// "plain" is refused, RFC 9700 section 2.1.1).
const PKCEMethodS256 = "S256"

// NewAuthCode returns a new authorization code and the id of its
// aggregate: 32 random bytes, and the hex SHA-256 of the code, so that
// neither the events nor their subjects reveal it.
func NewAuthCode() (code, id string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead
	code = base64.RawURLEncoding.EncodeToString(b[:])
	return code, HashToken(code)
}

// AuthCodeID returns the aggregate id of code, or ErrMalformedCode when
// code is not one NewAuthCode could have made.
func AuthCodeID(code string) (string, error) {
	if len(code) != codeLen {
		return "", ErrMalformedCode
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(code); err != nil {
		return "", ErrMalformedCode
	}
	return HashToken(code), nil
}

// AuthCode is one authorization code (aggregate events.AggregateAuthCode,
// id = AuthCodeID of the code): issued with everything its redemption must
// match and its tokens will say, redeemed at most once, and replayed at
// most once in its history (the replay that revokes the first
// redemption's grant).
type AuthCode struct {
	base
	issued    bool
	grant     events.AuthCodeIssued
	redeemed  bool
	sessionID string // the grant of the redemption
	replayed  bool
}

// LoadAuthCode folds a code's whole history, oldest first (at most three
// events); an empty history gives a code never issued. The errors are
// ErrInvalidID and ErrCorruptHistory.
func LoadAuthCode(id string, history []events.Envelope) (*AuthCode, error) {
	if !events.ValidToken(id) {
		return nil, detail(ErrInvalidID, "authorization code id %q is invalid", id)
	}
	c := &AuthCode{base: base{kind: events.AggregateAuthCode, id: id}}
	if err := c.fold(history, c.apply); err != nil {
		return nil, err
	}
	return c, nil
}

// apply is the only place a code's state changes.
func (c *AuthCode) apply(e event) error {
	ev, ok := e.data.(events.AuthCodeEvent)
	if !ok {
		return fmt.Errorf("authorization code cannot apply %T", e.data)
	}
	switch d := ev.(type) {
	case events.AuthCodeIssued:
		c.issued, c.grant = true, d
	case events.AuthCodeRedeemed:
		c.redeemed, c.sessionID = true, d.SessionID
	case events.AuthCodeReplayed:
		c.replayed = true
	}
	return nil
}

// Grant returns what the code was issued with; zero before it was.
func (c *AuthCode) Grant() events.AuthCodeIssued {
	g := c.grant
	g.Scopes, g.AMR = slices.Clone(g.Scopes), slices.Clone(g.AMR)
	return g
}

// SessionID returns the session (grant) the redemption started; "" while
// the code is not redeemed.
func (c *AuthCode) SessionID() string { return c.sessionID }

// Issue records events.AuthCodeIssued: g, as of now. The code must not
// exist yet (ErrCodeExists); g.ExpiresAt says when it stops working.
func (c *AuthCode) Issue(g events.AuthCodeIssued, now time.Time) error {
	if c.Version() > 0 {
		return detail(ErrCodeExists, "authorization code %q already exists", c.id)
	}
	g.AuthTime, g.ExpiresAt = g.AuthTime.UTC(), g.ExpiresAt.UTC()
	c.record(c.apply, events.TypeAuthCodeIssued, g, now)
	return nil
}

// Redemption is a token request presenting a code (RFC 6749 section
// 4.1.3).
type Redemption struct {
	ClientID     string    // the authenticated client
	RedirectURI  string    // the redirect_uri of the token request
	CodeVerifier string    // the PKCE verifier, "" if none was sent
	SessionID    string    // the session (grant) a success starts
	Now          time.Time // the instant of the request
}

// Redeem decides a redemption. When everything matches it records
// events.AuthCodeRedeemed and returns nil. A code redeemed before is
// refused with ErrCodeReused and, the first time, records
// events.AuthCodeReplayed, which the caller appends together with the
// revocation of the first redemption's grant (SessionID) before it answers:
// a code presented twice has leaked (RFC 6749 section 4.1.2). Every other
// refusal records nothing, so that the client the code belongs to can
// still redeem it: ErrUnknownCode, ErrCodeExpired, ErrCodeClientMismatch,
// ErrCodeRedirectMismatch and ErrPKCEMismatch (a verifier missing when the
// request carried a challenge, wrong, malformed, or sent when it carried
// none).
func (c *AuthCode) Redeem(r Redemption) error {
	switch {
	case !c.issued:
		return ErrUnknownCode
	case c.redeemed:
		if !c.replayed {
			c.record(c.apply, events.TypeAuthCodeReplayed, events.AuthCodeReplayed{ClientID: r.ClientID, SessionID: c.sessionID}, r.Now)
		}
		return ErrCodeReused
	case !r.Now.Before(c.grant.ExpiresAt):
		return ErrCodeExpired
	case r.ClientID != c.grant.ClientID:
		return ErrCodeClientMismatch
	case r.RedirectURI != c.grant.RedirectURI:
		return ErrCodeRedirectMismatch
	}
	if err := checkVerifier(c.grant.CodeChallenge, c.grant.CodeChallengeMethod, r.CodeVerifier); err != nil {
		return err
	}
	c.record(c.apply, events.TypeAuthCodeRedeemed, events.AuthCodeRedeemed{SessionID: r.SessionID}, r.Now)
	return nil
}

// checkVerifier checks a PKCE verifier against the challenge of the
// authorization request (RFC 7636 section 4.6): required and matching when
// there was a challenge, absent when there was none (a verifier without a
// challenge means someone else's code is being redeemed, RFC 9700 section
// 2.1.1).
func checkVerifier(challenge, method, verifier string) error {
	if challenge == "" {
		if verifier != "" {
			return detail(ErrPKCEMismatch, "code_verifier sent for a request without code_challenge")
		}
		return nil
	}
	if method != PKCEMethodS256 {
		return detail(ErrPKCEMismatch, "code challenge method %q is not S256", method)
	}
	if !ValidVerifier(verifier) {
		return detail(ErrPKCEMismatch, "code_verifier missing or malformed")
	}
	got := S256Challenge(verifier)
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return detail(ErrPKCEMismatch, "code_verifier does not match the code_challenge")
	}
	return nil
}

// ValidVerifier reports whether v is a PKCE code verifier (RFC 7636
// section 4.1): 43 to 128 characters of [A-Za-z0-9-._~].
func ValidVerifier(v string) bool { return validPKCE(v) }

// ValidChallenge reports whether c can be an S256 code challenge: the
// unpadded base64url of a SHA-256, 43 characters; longer ones up to 128
// are accepted as RFC 7636 allows for other methods' values.
func ValidChallenge(c string) bool { return validPKCE(c) }

func validPKCE(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '.' || b == '_' || b == '~') {
			return false
		}
	}
	return true
}

// S256Challenge returns the S256 code challenge of verifier (RFC 7636
// section 4.2), for clients and tests.
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
