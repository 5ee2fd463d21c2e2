package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/authstream/authstream/libs/fault"
)

// PublicKeyInfo is the public part of a signing key: what a verifier needs
// and what the JWKS publishes.
type PublicKeyInfo struct {
	KID string
	Alg string
	Key crypto.PublicKey // ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey
}

// jwk is the JSON form of one public key (RFC 7517 section 4, RFC 7518
// section 6, RFC 8037 section 2).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	KID string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

var b64 = base64.RawURLEncoding

func (p PublicKeyInfo) toJWK() (jwk, error) {
	if !keyFitsAlg(p.Key, p.Alg) {
		return jwk{}, fault.New(fault.Internal, "invalid-key", fmt.Sprintf("key %q does not fit alg %q", p.KID, p.Alg))
	}
	j := jwk{KID: p.KID, Alg: p.Alg, Use: "sig"}
	switch k := p.Key.(type) {
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64.EncodeToString(k)
	case *ecdsa.PublicKey:
		// Uncompressed point: 0x04 || X || Y, each 32 bytes for P-256.
		pt, err := k.Bytes()
		if err != nil {
			return jwk{}, fault.Wrap(fault.Internal, err, "encode ecdsa key")
		}
		j.Kty, j.Crv = "EC", "P-256"
		j.X, j.Y = b64.EncodeToString(pt[1:33]), b64.EncodeToString(pt[33:])
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = b64.EncodeToString(k.N.Bytes())
		j.E = b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	}
	return j, nil
}

// JWK returns p as a JSON Web Key with kid, alg and use "sig".
func (p PublicKeyInfo) JWK() ([]byte, error) {
	j, err := p.toJWK()
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

// JWKS returns the JSON Web Key Set {"keys": [...]} of keys, in their order.
func JWKS(keys []PublicKeyInfo) ([]byte, error) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		j, err := k.toJWK()
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, j)
	}
	return json.Marshal(set)
}

// ParseJWK reads one public JWK as JWK writes it. The key type must fit its
// alg; private members are ignored, never required. Errors are
// fault.Invalid with reason "invalid-jwk".
func ParseJWK(data []byte) (PublicKeyInfo, error) {
	var j jwk
	if err := json.Unmarshal(data, &j); err != nil {
		return PublicKeyInfo{}, invalidJWK("jwk is not a JSON object")
	}
	if j.KID == "" {
		return PublicKeyInfo{}, invalidJWK("jwk has no kid")
	}
	if err := ValidAlg(j.Alg); err != nil {
		return PublicKeyInfo{}, invalidJWK(fmt.Sprintf("jwk %q has an unsupported alg", j.KID))
	}
	var key crypto.PublicKey
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return PublicKeyInfo{}, invalidJWK(fmt.Sprintf("jwk %q has a bad x", j.KID))
		}
		key = ed25519.PublicKey(x)
	case j.Kty == "EC" && j.Crv == "P-256":
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return PublicKeyInfo{}, invalidJWK(fmt.Sprintf("jwk %q has bad coordinates", j.KID))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return PublicKeyInfo{}, invalidJWK(fmt.Sprintf("jwk %q is not a point on P-256", j.KID))
		}
		key = pub
	case j.Kty == "RSA":
		n, errN := b64.DecodeString(j.N)
		e, errE := b64.DecodeString(j.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return PublicKeyInfo{}, invalidJWK(fmt.Sprintf("jwk %q has a bad modulus or exponent", j.KID))
		}
		key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	default:
		return PublicKeyInfo{}, invalidJWK(fmt.Sprintf("jwk %q has an unsupported key type", j.KID))
	}
	if !keyFitsAlg(key, j.Alg) {
		return PublicKeyInfo{}, invalidJWK(fmt.Sprintf("jwk %q key type does not fit alg %s", j.KID, j.Alg))
	}
	return PublicKeyInfo{KID: j.KID, Alg: j.Alg, Key: key}, nil
}

func invalidJWK(msg string) error { return fault.New(fault.Invalid, "invalid-jwk", msg) }
