package authn_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
)

var algs = []string{authn.EdDSA, authn.ES256, authn.RS256}

func mustKey(tb testing.TB, alg string) *authn.SigningKey {
	tb.Helper()
	k, err := authn.GenerateKey(alg)
	if err != nil {
		tb.Fatalf("GenerateKey(%s): %v", alg, err)
	}
	return k
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	kidPattern := regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
	tests := []struct {
		alg, want string
		check     func(any) bool
	}{
		{"", authn.EdDSA, func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
		{authn.EdDSA, authn.EdDSA, func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
		{authn.ES256, authn.ES256, func(k any) bool { _, ok := k.(*ecdsa.PrivateKey); return ok }},
		{authn.RS256, authn.RS256, func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 }},
	}
	for _, tc := range tests {
		t.Run("alg="+tc.alg, func(t *testing.T) {
			t.Parallel()
			k := mustKey(t, tc.alg)
			if k.Alg != tc.want || !tc.check(k.Private) {
				t.Fatalf("GenerateKey(%q) = %s %T", tc.alg, k.Alg, k.Private)
			}
			if !kidPattern.MatchString(k.KID) {
				t.Fatalf("kid %q is not 16 bytes of base64url", k.KID)
			}
		})
	}
	for _, bad := range []string{"HS256", "none", "eddsa", "RS512"} {
		if _, err := authn.GenerateKey(bad); fault.CodeOf(err) != fault.Invalid {
			t.Errorf("GenerateKey(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestSigningKey_MarshalPrivate(t *testing.T) {
	t.Parallel()
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			k := mustKey(t, alg)
			der, err := k.MarshalPrivate()
			if err != nil {
				t.Fatalf("MarshalPrivate: %v", err)
			}
			back, err := authn.ParsePrivate(k.KID, k.Alg, der)
			if err != nil {
				t.Fatalf("ParsePrivate: %v", err)
			}
			if back.KID != k.KID || back.Alg != k.Alg {
				t.Fatalf("ParsePrivate = %s %s", back.KID, back.Alg)
			}
			a, _ := k.PublicJWK()
			b, _ := back.PublicJWK()
			if !bytes.Equal(a, b) {
				t.Fatalf("public keys differ after round trip")
			}
			// The same DER under another algorithm is refused.
			for _, other := range algs {
				if other == alg {
					continue
				}
				if _, err := authn.ParsePrivate(k.KID, other, der); fault.CodeOf(err) != fault.Invalid {
					t.Errorf("ParsePrivate as %s = %v, want invalid", other, err)
				}
			}
		})
	}
	if _, err := authn.ParsePrivate("kid", authn.EdDSA, []byte("garbage")); fault.CodeOf(err) != fault.Invalid {
		t.Errorf("ParsePrivate(garbage) = %v", err)
	}
	if _, err := authn.ParsePrivate("", authn.EdDSA, nil); fault.CodeOf(err) != fault.Invalid {
		t.Errorf("ParsePrivate without kid = %v", err)
	}
}

func TestPublicKeyInfo_JWK(t *testing.T) {
	t.Parallel()
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			k := mustKey(t, alg)
			raw, err := k.PublicJWK()
			if err != nil {
				t.Fatalf("PublicJWK: %v", err)
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if m["kid"] != k.KID || m["alg"] != alg || m["use"] != "sig" {
				t.Fatalf("jwk %s lacks kid, alg or use", raw)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := m[private]; ok {
					t.Fatalf("public jwk has private member %q", private)
				}
			}
			info, err := authn.ParseJWK(raw)
			if err != nil {
				t.Fatalf("ParseJWK: %v", err)
			}
			again, _ := info.JWK()
			if !bytes.Equal(raw, again) {
				t.Fatalf("jwk round trip: %s != %s", raw, again)
			}
		})
	}
}

func TestParseJWK_invalid(t *testing.T) {
	t.Parallel()
	ed, _ := mustKey(t, authn.EdDSA).PublicJWK()
	var edMap map[string]any
	_ = json.Unmarshal(ed, &edMap)
	with := func(key string, v any) []byte {
		m := map[string]any{}
		for k, x := range edMap {
			m[k] = x
		}
		if v == nil {
			delete(m, key)
		} else {
			m[key] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	tests := map[string][]byte{
		"not json":        []byte("{"),
		"no kid":          with("kid", nil),
		"hmac alg":        with("alg", "HS256"),
		"alg mismatch":    with("alg", authn.RS256),
		"short x":         with("x", "AAAA"),
		"symmetric":       []byte(`{"kty":"oct","k":"c2VjcmV0","kid":"a","alg":"EdDSA"}`),
		"ec off curve":    []byte(`{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","kid":"a","alg":"ES256"}`),
		"rsa too small":   []byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"a","alg":"RS256"}`),
		"unknown crv":     []byte(`{"kty":"OKP","crv":"X25519","x":"AAAA","kid":"a","alg":"EdDSA"}`),
		"bad base64 in x": with("x", "!!!"),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := authn.ParseJWK(raw); fault.CodeOf(err) != fault.Invalid {
				t.Fatalf("ParseJWK(%s) = %v, want invalid", raw, err)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	var infos []authn.PublicKeyInfo
	for _, alg := range algs {
		infos = append(infos, mustKey(t, alg).PublicInfo())
	}
	raw, err := authn.JWKS(infos)
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 3 {
		t.Fatalf("JWKS = %s, %v", raw, err)
	}
	for i, k := range set.Keys {
		if k["kid"] != infos[i].KID || k["alg"] != infos[i].Alg || k["use"] != "sig" {
			t.Errorf("key %d = %v", i, k)
		}
	}
	empty, _ := authn.JWKS(nil)
	if string(empty) != `{"keys":[]}` {
		t.Errorf("JWKS(nil) = %s", empty)
	}
	bad := authn.PublicKeyInfo{KID: "x", Alg: authn.RS256, Key: infos[0].Key}
	if _, err := authn.JWKS([]authn.PublicKeyInfo{bad}); err == nil {
		t.Error("JWKS accepted a key that does not fit its alg")
	}
}
