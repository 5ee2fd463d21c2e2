package authn

import (
	"crypto/rand"
	"encoding/base64"
)

// randomString returns n random bytes as unpadded base64url. crypto/rand
// never fails on the platforms Go supports (it crashes the program instead),
// hence no error.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
