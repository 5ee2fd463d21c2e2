package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// ClaimKindUsernameHMAC is the claim kind that keeps usernames unique per
// tenant since usernames are sealed: its value is UsernameClaim of the
// normalised username under the tenant's claim key, so that nobody holding
// the log can test a guessed name against a claim subject. Claims of kind
// ClaimKindUsername (the SHA-256 of the clear name) are only released.
const ClaimKindUsernameHMAC = "username_hmac"

// ClaimKeySize is the size of a tenant's claim key in bytes.
const ClaimKeySize = 32

// UsernameClaim returns the hex HMAC-SHA256 of a normalised username
// under a tenant's claim key: the value of its ClaimKindUsernameHMAC claim.
func UsernameClaim(claimKey []byte, normalizedUsername string) string {
	m := hmac.New(sha256.New, claimKey)
	m.Write([]byte("authstream/username/"))
	m.Write([]byte(normalizedUsername))
	return hex.EncodeToString(m.Sum(nil))
}
