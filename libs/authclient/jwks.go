package authclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
)

// The signing algorithms authstream issues tokens with. Only keys published
// with one of them are used; HMAC and "none" never are.
const (
	algEdDSA = "EdDSA"
	algES256 = "ES256"
	algRS256 = "RS256"
)

// minRSABits is the smallest RSA modulus accepted for RS256.
const minRSABits = 2048

// maxDocumentBytes bounds a discovery document or key set read from the
// server.
const maxDocumentBytes = 1 << 20

// publicKey is one verification key with the one algorithm it verifies.
type publicKey struct {
	alg string
	key crypto.PublicKey
}

// keySet is what one fetch learned about a tenant.
type keySet struct {
	issuer string // the issuer the tenant's tokens must carry
	keys   map[string]publicKey
}

// errNoTenant is the answer of a fetch for a tenant the server does not
// know (404): an empty key set, not an outage.
var errNoTenant = errors.New("no such tenant")

// fetchKeys reads a tenant's issuer and keys from the server.
func (v *Verifier) fetchKeys(ctx context.Context, tenant string) (keySet, error) {
	tenantURL := v.base + "/t/" + tenant
	issuer := tenantURL
	if v.issuerBase != "" {
		issuer = v.issuerBase + "/t/" + tenant
	}
	jwksURI := tenantURL + "/.well-known/jwks.json"
	if v.discovery {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := v.getJSON(ctx, tenantURL+"/.well-known/openid-configuration", &doc); err != nil {
			return keySet{}, err
		}
		switch {
		case v.issuerBase != "" && doc.Issuer != issuer:
			return keySet{}, fmt.Errorf("discovery issuer %q is not the configured %q", doc.Issuer, issuer)
		case !strings.HasSuffix(doc.Issuer, "/t/"+tenant) || !absoluteHTTP(doc.Issuer):
			// A document naming another tenant's issuer would let that
			// tenant's tokens in.
			return keySet{}, fmt.Errorf("discovery issuer %q is not an issuer of tenant %q", doc.Issuer, tenant)
		case !absoluteHTTP(doc.JWKSURI):
			return keySet{}, fmt.Errorf("discovery jwks_uri %q is not an absolute http or https url", doc.JWKSURI)
		}
		issuer, jwksURI = doc.Issuer, doc.JWKSURI
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := v.getJSON(ctx, jwksURI, &set); err != nil {
		return keySet{}, err
	}
	ks := keySet{issuer: issuer, keys: make(map[string]publicKey, len(set.Keys))}
	for _, raw := range set.Keys {
		kid, k, err := parseJWK(raw)
		if err != nil {
			// A key of a kind this client does not know must not stop it
			// from using the others.
			continue
		}
		ks.keys[kid] = k
	}
	return ks, nil
}

// getJSON GETs url and decodes its JSON body into dst. A 404 is errNoTenant.
func (v *Verifier) getJSON(ctx context.Context, u string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNoTenant
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("get %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return fmt.Errorf("get %s: body larger than %d bytes", u, maxDocumentBytes)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	return nil
}

// absoluteHTTP reports whether s is an absolute http or https URL.
func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// jwk is the JSON form of one public key (RFC 7517, RFC 7518 section 6,
// RFC 8037 section 2).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	KID string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

var b64 = base64.RawURLEncoding

// parseJWK reads one public signing key. Its alg must be one authstream
// signs with and its key type must fit that alg: the algorithm is taken from
// the published key, never from a token.
func parseJWK(raw []byte) (string, publicKey, error) {
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return "", publicKey{}, errors.New("jwk is not a json object")
	}
	if j.KID == "" {
		return "", publicKey{}, errors.New("jwk has no kid")
	}
	if j.Use != "" && j.Use != "sig" {
		return "", publicKey{}, errors.New("jwk is not a signing key")
	}
	var key crypto.PublicKey
	switch {
	case j.Alg == algEdDSA && j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return "", publicKey{}, errors.New("jwk has a bad ed25519 key")
		}
		key = ed25519.PublicKey(x)
	case j.Alg == algES256 && j.Kty == "EC" && j.Crv == "P-256":
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return "", publicKey{}, errors.New("jwk has bad p-256 coordinates")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return "", publicKey{}, errors.New("jwk is not a point on p-256")
		}
		key = pub
	case j.Alg == algRS256 && j.Kty == "RSA":
		n, errN := b64.DecodeString(j.N)
		e, errE := b64.DecodeString(j.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return "", publicKey{}, errors.New("jwk has a bad rsa modulus or exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			return "", publicKey{}, errors.New("jwk rsa key is too small or its exponent is bad")
		}
		key = pub
	default:
		return "", publicKey{}, errors.New("jwk has an unsupported alg or a key type that does not fit it")
	}
	return j.KID, publicKey{alg: j.Alg, key: key}, nil
}
