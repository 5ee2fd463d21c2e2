package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// The console keeps no server-side state: the signed-in session and the
// sign-in in progress each live in a cookie sealed with AES-256-GCM under
// a key derived from the KEK (so every replica of the query service opens
// it), bound by the associated data to its purpose and tenant, so that a
// cookie of one tenant or purpose opens nowhere else.

// sessionLife bounds a session: after it the admin signs in again, even
// if the refresh token still works.
const sessionLife = 12 * time.Hour

// flowLife bounds a sign-in in progress (the hosted page's visit).
const flowLife = 10 * time.Minute

// session is a signed-in admin of one tenant.
type session struct {
	Tenant  string    `json:"t"`
	Access  string    `json:"a"`
	Refresh string    `json:"r,omitempty"`
	Expiry  time.Time `json:"e"` // of the access token
	CSRF    string    `json:"c"` // the forms' token
	Until   time.Time `json:"u"` // the session's end
}

// flow is a sign-in in progress: what the callback checks.
type flow struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Return   string    `json:"r"` // the console path to go back to
	Until    time.Time `json:"u"`
}

// sealer seals and opens the console's cookies.
type sealer struct{ aead cipher.AEAD }

func newSealer(kek *events.Keyring) (*sealer, error) {
	block, err := aes.NewCipher(kek.DeriveKey("authstream/console/cookie"))
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return &sealer{aead: aead}, nil
}

var errCookie = errors.New("console: cookie does not open")

func (s *sealer) seal(v any, aad string) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(aad))), nil
}

func (s *sealer) open(raw, aad string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) < s.aead.NonceSize() {
		return errCookie
	}
	plain, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(aad))
	if err != nil {
		return errCookie
	}
	if json.Unmarshal(plain, v) != nil {
		return errCookie
	}
	return nil
}

// Cookie names: per tenant, so that one browser can hold sessions of
// several tenants; __Secure- over https.
func (c *Console) cookieName(kind, tenant string) string {
	name := "authstream_console_" + kind + "_" + tenant
	if c.secure {
		return "__Secure-" + name
	}
	return name
}

// setCookie writes a sealed cookie of tenant for the console's paths of
// that tenant; a nil v deletes it.
func (c *Console) setCookie(w http.ResponseWriter, kind, tenant string, v any, until time.Time) error {
	ck := &http.Cookie{ //nolint:gosec // G124: Secure whenever the public URL is https; plain http only in development
		Name: c.cookieName(kind, tenant), Path: base(tenant) + "/", HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	}
	if v == nil {
		ck.MaxAge = -1
	} else {
		val, err := c.sealer.seal(v, "authstream/console/"+kind+"/"+tenant)
		if err != nil {
			return err
		}
		ck.Value, ck.Expires = val, until
	}
	http.SetCookie(w, ck)
	return nil
}

// readCookie opens tenant's cookie of kind into v; false when there is
// none or it does not open.
func (c *Console) readCookie(r *http.Request, kind, tenant string, v any) bool {
	ck, err := r.Cookie(c.cookieName(kind, tenant))
	if err != nil {
		return false
	}
	return c.sealer.open(ck.Value, "authstream/console/"+kind+"/"+tenant, v) == nil
}
