package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/authstream/authstream/libs/fault"
)

// The signing algorithms a tenant may choose (JWS "alg" values).
const (
	EdDSA = "EdDSA" // Ed25519; the default
	ES256 = "ES256" // ECDSA P-256 with SHA-256
	RS256 = "RS256" // RSA PKCS#1 v1.5 with SHA-256, 2048-bit keys
)

// DefaultAlg is the algorithm of a tenant that chose none.
const DefaultAlg = EdDSA

// rsaBits is the size of generated RSA keys.
const rsaBits = 2048

// SigningKey is one private signing key of a tenant. Its private part lives
// in memory only; MarshalPrivate gives the bytes for the caller to seal.
type SigningKey struct {
	KID     string        // random, URL-safe; the JWS "kid" header
	Alg     string        // EdDSA, ES256 or RS256
	Private crypto.Signer // ed25519.PrivateKey, *ecdsa.PrivateKey or *rsa.PrivateKey
}

// ValidAlg returns nil if alg is one of EdDSA, ES256 and RS256, and
// otherwise fault.Invalid with reason "unsupported-alg".
func ValidAlg(alg string) error {
	switch alg {
	case EdDSA, ES256, RS256:
		return nil
	}
	return fault.New(fault.Invalid, "unsupported-alg", fmt.Sprintf("signing algorithm %q is not supported: use EdDSA, ES256 or RS256", alg))
}

// GenerateKey returns a new key for alg ("" means DefaultAlg) with a fresh
// random KID. An unknown alg gives fault.Invalid.
func GenerateKey(alg string) (*SigningKey, error) {
	if alg == "" {
		alg = DefaultAlg
	}
	if err := ValidAlg(alg); err != nil {
		return nil, err
	}
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	}
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "generate signing key")
	}
	return &SigningKey{KID: NewKID(), Alg: alg, Private: priv}, nil
}

// NewKID returns a random key id: 16 random bytes as base64url.
func NewKID() string { return randomString(16) }

// Public returns the public half of k.
func (k *SigningKey) Public() crypto.PublicKey { return k.Private.Public() }

// PublicInfo returns what verifiers and the JWKS need of k.
func (k *SigningKey) PublicInfo() PublicKeyInfo {
	return PublicKeyInfo{KID: k.KID, Alg: k.Alg, Key: k.Public()}
}

// PublicJWK returns the public key as a JWK (RFC 7517; Ed25519 per RFC
// 8037) with kid, alg and use "sig".
func (k *SigningKey) PublicJWK() ([]byte, error) { return k.PublicInfo().JWK() }

// MarshalPrivate returns the private key as PKCS#8 DER. The bytes are a
// secret: seal them before they leave memory.
func (k *SigningKey) MarshalPrivate() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "marshal signing key")
	}
	return der, nil
}

// ParsePrivate rebuilds a SigningKey from PKCS#8 DER made by MarshalPrivate.
// The key type must fit alg (an RSA key is never accepted as EdDSA, say).
// Errors say what is wrong without any key bytes.
func ParsePrivate(kid, alg string, der []byte) (*SigningKey, error) {
	if err := ValidAlg(alg); err != nil {
		return nil, err
	}
	if kid == "" {
		return nil, fault.New(fault.Invalid, "invalid-key", "signing key has no kid")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fault.New(fault.Invalid, "invalid-key", "signing key is not valid PKCS#8")
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok || !keyFitsAlg(signer.Public(), alg) {
		return nil, fault.New(fault.Invalid, "invalid-key", fmt.Sprintf("signing key type does not fit %s", alg))
	}
	return &SigningKey{KID: kid, Alg: alg, Private: signer}, nil
}

// keyFitsAlg reports whether pub is the kind of public key alg verifies
// with: Ed25519 for EdDSA, P-256 for ES256, RSA of at least 2048 bits for
// RS256.
func keyFitsAlg(pub crypto.PublicKey, alg string) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return alg == EdDSA && len(k) == ed25519.PublicKeySize
	case *ecdsa.PublicKey:
		return alg == ES256 && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == RS256 && k.N.BitLen() >= rsaBits
	}
	return false
}
