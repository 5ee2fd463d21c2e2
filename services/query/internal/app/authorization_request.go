package app

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// AuthRequest is a validated authorization request (OpenID Connect Core
// section 3.1.2.1): what the authorization endpoint decides on, and what
// the hosted login page carries sealed between its form and its
// submission.
type AuthRequest struct {
	ClientID            string   `json:"client_id"`
	RedirectURI         string   `json:"redirect_uri"`
	Scopes              []string `json:"scopes"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	// Prompt holds the prompt values (none, login, ...).
	Prompt []string `json:"prompt,omitempty"`
	// MaxAge is max_age in seconds; nil when absent.
	MaxAge *int64 `json:"max_age,omitempty"`
	// LoginHint prefills the username of the hosted page.
	LoginHint string `json:"login_hint,omitempty"`
	// IDTokenHint is the id_token_hint; Authorize verifies it.
	IDTokenHint string `json:"-"`
}

// HasPrompt reports whether the request carries the prompt value p.
func (r AuthRequest) HasPrompt(p string) bool {
	for _, v := range r.Prompt {
		if v == p {
			return true
		}
	}
	return false
}

// Prompt values the provider acts on.
const (
	PromptNone  = "none"
	PromptLogin = "login"
)

// The sealed authorization request of the hosted page: AES-256-GCM under a
// key derived from the KEK for this use alone, bound to its tenant (the
// associated data), living authRequestTTL. It travels in the page's URL
// and as a hidden input, so that the page needs no server-side state and
// any replica can take the submission.
const (
	authRequestPurpose = "authstream/query/authorization-request/v1"
	authRequestTTL     = 10 * time.Minute
	// MaxSealedRequest bounds a sealed request: the fields of a request
	// are bounded at the authorization endpoint, so a real one is far
	// smaller.
	MaxSealedRequest = 8 << 10
)

// sealedRequest is the plaintext of a sealed request.
type sealedRequest struct {
	Tenant    string      `json:"tenant"`
	Request   AuthRequest `json:"request"`
	ExpiresAt time.Time   `json:"expires_at"`
}

func newRequestSealer(kek *events.Keyring) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek.DeriveKey(authRequestPurpose))
	if err != nil {
		return nil, fmt.Errorf("authorization request key: %w", err)
	}
	return cipher.NewGCM(block)
}

func authRequestAAD(tenant string) []byte {
	return []byte("authstream/authorization-request/" + tenant)
}

// sealRequest seals r for tenant's hosted page: base64url of nonce and
// ciphertext.
func (a *App) sealRequest(tenant string, r AuthRequest) (string, error) {
	plain, err := json.Marshal(sealedRequest{Tenant: tenant, Request: r, ExpiresAt: a.now().Add(authRequestTTL).UTC()})
	if err != nil {
		return "", fmt.Errorf("seal authorization request: %w", err)
	}
	nonce := make([]byte, a.requests.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := a.requests.Seal(nonce, nonce, plain, authRequestAAD(tenant))
	out := base64.RawURLEncoding.EncodeToString(sealed)
	if len(out) > MaxSealedRequest {
		return "", fmt.Errorf("sealed authorization request of %d bytes exceeds %d", len(out), MaxSealedRequest)
	}
	return out, nil
}

// OpenAuthRequest opens a request sealed for tenant's hosted page. A
// request that is too long, malformed, forged, sealed for another tenant
// or expired is ErrInvalidAuthRequest.
func (a *App) OpenAuthRequest(tenant, sealed string) (AuthRequest, error) {
	if sealed == "" || len(sealed) > MaxSealedRequest {
		return AuthRequest{}, ErrInvalidAuthRequest
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(sealed)
	n := a.requests.NonceSize()
	if err != nil || len(raw) < n {
		return AuthRequest{}, ErrInvalidAuthRequest
	}
	plain, err := a.requests.Open(nil, raw[:n], raw[n:], authRequestAAD(tenant))
	if err != nil {
		return AuthRequest{}, ErrInvalidAuthRequest
	}
	var s sealedRequest
	if err := json.Unmarshal(plain, &s); err != nil || s.Tenant != tenant || !a.now().Before(s.ExpiresAt) {
		return AuthRequest{}, ErrInvalidAuthRequest
	}
	return s.Request, nil
}
