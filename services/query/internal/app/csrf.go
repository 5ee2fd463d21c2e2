package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// csrfPurpose names the key the hosted page's CSRF tokens are made with.
const csrfPurpose = "authstream/query/csrf/v1"

// CSRFToken returns the token the hosted page's form carries for the CSRF
// cookie value cookie (the double-submit pattern, with the token an HMAC
// of the cookie under a key derived from the KEK, bound to tenant): a
// forged form cannot know it, since it can neither read the cookie nor
// compute the MAC.
func (a *App) CSRFToken(tenant, cookie string) string {
	m := hmac.New(sha256.New, a.csrfKey)
	m.Write([]byte(tenant))
	m.Write([]byte{0})
	m.Write([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether token is the CSRFToken of cookie for tenant,
// in constant time. An empty cookie or token never passes.
func (a *App) CheckCSRF(tenant, cookie, token string) bool {
	if cookie == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(a.CSRFToken(tenant, cookie)), []byte(token))
}

// SecureCookies reports whether the public URL is https: the hosted
// page's cookies are then __Host- cookies with the Secure attribute.
func (a *App) SecureCookies() bool { return a.secure }
