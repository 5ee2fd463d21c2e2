package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/authstream/authstream/libs/events"
)

// refreshSecretLen is the length of a refresh token's secret part: 32
// random bytes in unpadded base64url.
const refreshSecretLen = 43

// NewRefreshToken returns a new opaque refresh token for a session and the
// hash that is stored in its place. The token is "<session id>.<secret>":
// it carries the session id so that a refresh finds its session without an
// index, while the secret (256 random bits) makes it unguessable. Only the
// hash of the whole token is ever stored.
func NewRefreshToken(sessionID string) (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead
	token = sessionID + "." + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token)
}

// HashToken returns the stored form of a refresh token: hex SHA-256 of
// the whole token. A fast hash is right here: the token has 256 bits of
// entropy, so no dictionary applies.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ParseRefreshToken splits a token made by NewRefreshToken into its session
// id and returns the token's hash. Anything else gives ErrMalformedToken.
func ParseRefreshToken(token string) (sessionID, hash string, err error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || !events.ValidID(id) || len(secret) != refreshSecretLen {
		return "", "", ErrMalformedToken
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return "", "", ErrMalformedToken
	}
	return id, HashToken(token), nil
}
