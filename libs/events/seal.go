package events

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// RawJSON is a JSON value kept as it is (a public JWK, say).
type RawJSON = json.RawMessage

// Sealed is a secret encrypted with AES-256-GCM under a key-encryption key.
// KID names the key so that history sealed under an older key can still be
// opened after a rotation. Its JSON form carries base64 bytes only.
type Sealed struct {
	KID        string `json:"kid"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// IsZero reports whether s holds nothing.
func (s Sealed) IsZero() bool { return s.KID == "" && len(s.Ciphertext) == 0 }

// KEK is one key-encryption key: 32 bytes and the id it is known by.
type KEK struct {
	ID  string
	Key []byte
}

// Keyring holds the key-encryption keys, newest first. It seals with the
// newest and opens with whichever key a Sealed names, so rotating the KEK
// never loses access to sealed history.
type Keyring struct {
	keys []KEK
	aead map[string]cipher.AEAD
}

// ErrUnknownKEK is returned by Open when the sealed value names a key the
// keyring does not hold.
var ErrUnknownKEK = errors.New("sealed with an unknown key-encryption key")

// ErrOpen is returned by Open when the ciphertext does not authenticate.
var ErrOpen = errors.New("sealed value does not authenticate")

// NewKeyring returns a keyring of keys, newest first. Each key must be 32
// bytes with a non-empty id unique in the ring.
func NewKeyring(keys ...KEK) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring needs at least one key")
	}
	r := &Keyring{aead: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if k.ID == "" || strings.ContainsAny(k.ID, ":, ") {
			return nil, fmt.Errorf("key %d: id must be non-empty without ':', ',' or spaces", i+1)
		}
		if len(k.Key) != 32 {
			return nil, fmt.Errorf("key %q: must be 32 bytes, got %d", k.ID, len(k.Key))
		}
		if _, dup := r.aead[k.ID]; dup {
			return nil, fmt.Errorf("key %q: id appears twice", k.ID)
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		r.aead[k.ID] = gcm
		r.keys = append(r.keys, KEK{ID: k.ID, Key: append([]byte(nil), k.Key...)})
	}
	return r, nil
}

// ParseKeyring reads the AUTH_KEK form: comma-separated keys, newest first,
// each "id:base64" or a bare base64 value whose id is derived from the key
// (the first 8 bytes of its SHA-256, hex). Errors never contain key bytes.
func ParseKeyring(s string) (*Keyring, error) {
	var keys []KEK
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, found := strings.Cut(part, ":")
		if !found {
			id, b64 = "", part
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			if key, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(b64, "=")); err != nil {
				return nil, fmt.Errorf("key %d is not valid base64", i+1)
			}
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("key %d must decode to 32 bytes, got %d", i+1, len(key))
		}
		if id == "" {
			sum := sha256.Sum256(key)
			id = hex.EncodeToString(sum[:8])
		}
		keys = append(keys, KEK{ID: id, Key: key})
	}
	return NewKeyring(keys...)
}

// CurrentID returns the id of the key that Seal uses.
func (r *Keyring) CurrentID() string { return r.keys[0].ID }

// DeriveKey returns a 32-byte key for purpose, derived from the newest
// key-encryption key with HKDF-SHA256 (RFC 5869; purpose is the info).
// Each use of the KEK beyond sealing (a short-lived sealed request, a CSRF
// token) gets a key of its own this way, so no value made for one use is
// accepted by another, and the KEK itself never leaves the keyring.
func (r *Keyring) DeriveKey(purpose string) []byte {
	key, err := hkdf.Key(sha256.New, r.keys[0].Key, nil, purpose, 32)
	if err != nil { // only for lengths HKDF cannot give; 32 always works
		panic("events: derive key: " + err.Error())
	}
	return key
}

// Seal encrypts plaintext under the newest key. aad binds the sealed value
// to its context (for instance tenant and user id): opening it elsewhere
// fails.
func (r *Keyring) Seal(plaintext, aad []byte) (Sealed, error) {
	k := r.keys[0]
	gcm := r.aead[k.ID]
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("seal: %w", err)
	}
	return Sealed{KID: k.ID, Nonce: nonce, Ciphertext: gcm.Seal(nil, nonce, plaintext, aad)}, nil
}

// Open decrypts s with the key it names. It returns ErrUnknownKEK or ErrOpen.
func (r *Keyring) Open(s Sealed, aad []byte) ([]byte, error) {
	gcm, ok := r.aead[s.KID]
	if !ok {
		return nil, ErrUnknownKEK
	}
	if len(s.Nonce) != gcm.NonceSize() {
		return nil, ErrOpen
	}
	out, err := gcm.Open(nil, s.Nonce, s.Ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// CredentialAAD is the associated data a user's sealed password hash is
// bound to: "authstream/credential/<tenant>/<user id>". The command side
// seals with it and the login path opens with it, so a credential copied to
// another user or tenant does not open.
func CredentialAAD(tenant, userID string) []byte {
	return []byte("authstream/credential/" + tenant + "/" + userID)
}

// WebhookSecretAAD is the associated data a webhook endpoint's sealed
// signing secret is bound to: "authstream/webhook-secret/<tenant>/<id>".
// The command side seals with it and the dispatcher opens with it, so a
// secret copied to another endpoint or tenant does not open.
func WebhookSecretAAD(tenant, webhookID string) []byte {
	return []byte("authstream/webhook-secret/" + tenant + "/" + webhookID)
}

// MFASecretAAD is the associated data a user's sealed TOTP seed is bound
// to: "authstream/mfa/<tenant>/<user id>/<factor>". The command side seals
// with it and the login path opens with it, so a seed copied to another
// user, tenant or factor does not open.
func MFASecretAAD(tenant, userID, factor string) []byte {
	return []byte("authstream/mfa/" + tenant + "/" + userID + "/" + factor)
}

// EmailLinkAAD is the associated data the sealed token of an e-mailed link
// is bound to: "authstream/email-link/<tenant>/<link id>", the link id
// being the hex SHA-256 of the token. The issuer seals with it and the
// mailer opens with it, so a token copied to another link or tenant does
// not open.
func EmailLinkAAD(tenant, linkID string) []byte {
	return []byte("authstream/email-link/" + tenant + "/" + linkID)
}
