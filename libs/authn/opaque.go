package authn

import (
	"crypto/sha256"
	"encoding/hex"
)

// NewOpaqueToken returns a new refresh token (32 random bytes, base64url)
// and its hash (HashToken). Store only the hash; hand the token to the
// client once.
func NewOpaqueToken() (token, hash string) {
	token = randomString(32)
	return token, HashToken(token)
}

// HashToken returns the hex SHA-256 of token: the form in which refresh
// tokens are stored and looked up. The tokens carry 256 random bits, so a
// fast unsalted hash is enough.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
