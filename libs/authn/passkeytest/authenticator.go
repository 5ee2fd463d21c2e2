// Package passkeytest is a software WebAuthn authenticator for tests: it
// makes passkeys (ES256, attestation "none") and signs sign-in challenges
// as a platform authenticator does, so that tests and benchmarks drive the
// ceremonies from a plain HTTP client, without a browser.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// The authenticator data flags (WebAuthn section 6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// Authenticator is a software authenticator holding passkeys. It is safe
// for concurrent use.
type Authenticator struct {
	// Origin is the origin the client data names (the browser's page).
	Origin string
	// NoUserVerification leaves the UV flag clear (a security key without
	// a PIN); by default the user is verified.
	NoUserVerification bool

	mu    sync.Mutex
	creds map[string]*Credential
}

// Credential is a passkey of the authenticator.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	Key        *ecdsa.PrivateKey
	// Counter is the signature counter, incremented before each signature
	// unless ZeroCounter (authenticators that keep none, as synced
	// passkeys do).
	Counter     uint32
	ZeroCounter bool
}

// New returns an authenticator for pages of origin.
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin, creds: map[string]*Credential{}}
}

// creationOptions is what Create reads of PublicKeyCredentialCreationOptions.
type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
}

// requestOptions is what Get reads of PublicKeyCredentialRequestOptions.
type requestOptions struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rpId"`
}

// Create answers creation options (the JSON of
// PublicKeyCredentialCreationOptions) as navigator.credentials.create
// does: it makes a new passkey and returns the PublicKeyCredential's JSON
// (the registration response) and the credential.
func (a *Authenticator) Create(options []byte) ([]byte, *Credential, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, nil, fmt.Errorf("creation options: %w", err)
	}
	handle, err := base64.RawURLEncoding.DecodeString(o.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("user id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	c := &Credential{ID: id, RPID: o.RP.ID, UserHandle: handle, Key: key}
	cose, err := coseKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	authData := a.authData(o.RP.ID, flagAT, 0)
	authData = append(authData, make([]byte, 16)...) // AAGUID: none
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id)))
	authData = append(authData, id...)
	authData = append(authData, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, nil, err
	}
	clientData := a.ClientData("webauthn.create", o.Challenge)
	out, err := json.Marshal(map[string]any{
		"id": b64(id), "rawId": b64(id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON": b64(clientData), "attestationObject": b64(att), "transports": []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	if err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	a.creds[string(id)] = c
	a.mu.Unlock()
	return out, c, nil
}

// Get answers request options (the JSON of
// PublicKeyCredentialRequestOptions) as navigator.credentials.get does,
// with the passkey c (nil: the first passkey of the options' relying
// party): it returns the PublicKeyCredential's JSON (the sign-in
// response), with the user handle.
func (a *Authenticator) Get(options []byte, c *Credential) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("request options: %w", err)
	}
	if c == nil {
		a.mu.Lock()
		for _, x := range a.creds {
			if x.RPID == o.RPID {
				c = x
				break
			}
		}
		a.mu.Unlock()
		if c == nil {
			return nil, fmt.Errorf("no passkey for %q", o.RPID)
		}
	}
	return a.Assert(c, o.RPID, a.ClientData("webauthn.get", o.Challenge))
}

// Assert signs clientData with c for the relying party rpID, as Get
// does, and returns the response's JSON: tests forge the client data (an
// origin, a type, a challenge) with it.
func (a *Authenticator) Assert(c *Credential, rpID string, clientData []byte) ([]byte, error) {
	a.mu.Lock()
	if !c.ZeroCounter {
		c.Counter++
	}
	counter := c.Counter
	a.mu.Unlock()
	authData := a.authData(rpID, 0, counter)
	digest := sha256.Sum256(clientData)
	signed := sha256.Sum256(append(append([]byte{}, authData...), digest[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.Key, signed[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64(c.ID), "rawId": b64(c.ID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON": b64(clientData), "authenticatorData": b64(authData),
			"signature": b64(sig), "userHandle": b64(c.UserHandle),
		},
		"clientExtensionResults": map[string]any{},
	})
}

// NoUV returns a view of a whose responses do not verify the user (the UV
// flag clear), signing with the same passkeys and counters.
func NoUV(a *Authenticator) *Authenticator {
	return &Authenticator{Origin: a.Origin, NoUserVerification: true, creds: a.snapshot()}
}

// snapshot returns a's passkeys, shared.
func (a *Authenticator) snapshot() map[string]*Credential {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]*Credential, len(a.creds))
	for k, v := range a.creds {
		out[k] = v
	}
	return out
}

// ClientData returns the collected client data of a ceremony of typ
// ("webauthn.create" or "webauthn.get") for challenge, at a's origin.
func (a *Authenticator) ClientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

// authData returns the authenticator data's first 37 bytes: the relying
// party id's hash, the flags (user present, verified unless
// NoUserVerification, and extra) and the counter.
func (a *Authenticator) authData(rpID string, extra byte, counter uint32) []byte {
	h := sha256.Sum256([]byte(rpID))
	flags := flagUP | extra
	if !a.NoUserVerification {
		flags |= flagUV
	}
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, counter)
}

// coseKey encodes an ES256 public key as a COSE_Key.
func coseKey(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	return webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256), XCoord: raw[1:33], YCoord: raw[33:65],
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
