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
	return a.sealValue(authRequestAAD(tenant), sealedRequest{Tenant: tenant, Request: r, ExpiresAt: a.now().Add(authRequestTTL).UTC()})
}

// sealValue seals the JSON of v with the hosted page's key, bound to aad:
// base64url of nonce and ciphertext, at most MaxSealedRequest long.
func (a *App) sealValue(aad []byte, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	nonce := make([]byte, a.requests.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := a.requests.Seal(nonce, nonce, plain, aad)
	out := base64.RawURLEncoding.EncodeToString(sealed)
	if len(out) > MaxSealedRequest {
		return "", fmt.Errorf("sealed value of %d bytes exceeds %d", len(out), MaxSealedRequest)
	}
	return out, nil
}

// openValue opens what sealValue sealed with aad into v; false when it is
// too long, malformed, forged or sealed with another aad.
func (a *App) openValue(aad []byte, sealed string, v any) bool {
	if sealed == "" || len(sealed) > MaxSealedRequest {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(sealed)
	n := a.requests.NonceSize()
	if err != nil || len(raw) < n {
		return false
	}
	plain, err := a.requests.Open(nil, raw[:n], raw[n:], aad)
	if err != nil {
		return false
	}
	return json.Unmarshal(plain, v) == nil
}

// OpenAuthRequest opens a request sealed for tenant's hosted page. A
// request that is too long, malformed, forged, sealed for another tenant
// or expired is ErrInvalidAuthRequest.
func (a *App) OpenAuthRequest(tenant, sealed string) (AuthRequest, error) {
	var s sealedRequest
	if !a.openValue(authRequestAAD(tenant), sealed, &s) || s.Tenant != tenant || !a.now().Before(s.ExpiresAt) {
		return AuthRequest{}, ErrInvalidAuthRequest
	}
	return s.Request, nil
}
