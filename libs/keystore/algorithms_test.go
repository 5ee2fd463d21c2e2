package keystore_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
)

func mustSignerFor(tb testing.TB, s *keystore.Store, tenant, alg string) *authn.SigningKey {
	tb.Helper()
	k, err := s.SignerFor(context.Background(), tenant, alg)
	if err != nil {
		tb.Fatalf("SignerFor(%s, %s): %v", tenant, alg, err)
	}
	return k
}

func mustEnsure(tb testing.TB, s *keystore.Store, tenant, alg string) (keystore.KeyInfo, bool) {
	tb.Helper()
	info, created, err := s.Ensure(context.Background(), tenant, alg)
	if err != nil {
		tb.Fatalf("Ensure(%s, %s): %v", tenant, alg, err)
	}
	return info, created
}

func mustDescribe(tb testing.TB, s *keystore.Store, tenant string) keystore.SetInfo {
	tb.Helper()
	d, err := s.Describe(context.Background(), tenant)
	if err != nil {
		tb.Fatalf("Describe(%s): %v", tenant, err)
	}
	return d
}

// currentKids returns the kid of each current key of d, by algorithm.
func currentKids(d keystore.SetInfo) map[string]string {
	out := map[string]string{}
	for _, k := range d.Current {
		out[k.Alg] = k.KID
	}
	return out
}

func infoKids(keys []keystore.KeyInfo) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.KID
	}
	return out
}

// mustTokenWith issues a token of tenant signed with key.
func mustTokenWith(tb testing.TB, key *authn.SigningKey, tenant string) string {
	tb.Helper()
	now := time.Now()
	tok, err := authn.Issue(key, authn.Claims{
		Issuer: authn.IssuerURL(publicURL, tenant), Subject: "user-1", Tenant: tenant,
		IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute),
	})
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return tok
}

// TestStore_Ensure holds two algorithms in one key set: the access-token
// key signs access tokens, the ensured key signs for its algorithm, both
// are published and both verify.
func TestStore_Ensure(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	s := mustStore(t, mustJetStream(t, ns), mustKeyring(t, "k1"))
	v := mustVerifier(t, s)
	ctx := context.Background()

	access := mustCreate(t, s, "acme", authn.EdDSA)
	rs, created := mustEnsure(t, s, "acme", authn.RS256)
	if !created || rs.Alg != authn.RS256 || rs.KID == access.KID || rs.ActiveFrom.IsZero() || !rs.RemoveAt.IsZero() {
		t.Fatalf("Ensure = %+v, created %v", rs, created)
	}
	if again, created := mustEnsure(t, s, "acme", authn.RS256); created || again.KID != rs.KID {
		t.Fatalf("second Ensure = %s, created %v; want %s", again.KID, created, rs.KID)
	}
	// Ensuring the access-token algorithm makes no key: its key serves.
	if same, created := mustEnsure(t, s, "acme", authn.EdDSA); created || same.KID != access.KID {
		t.Fatalf("Ensure(EdDSA) = %s, created %v; want the access-token key %s", same.KID, created, access.KID)
	}

	if k := mustSigner(t, s, "acme"); k.KID != access.KID || k.Alg != authn.EdDSA {
		t.Fatalf("Signer = %s %s, want the access-token key", k.KID, k.Alg)
	}
	if k := mustSignerFor(t, s, "acme", authn.RS256); k.KID != rs.KID || k.Alg != authn.RS256 {
		t.Fatalf("SignerFor(RS256) = %s %s", k.KID, k.Alg)
	}
	if k := mustSignerFor(t, s, "acme", authn.EdDSA); k.KID != access.KID {
		t.Fatalf("SignerFor(EdDSA) = %s, want the access-token key", k.KID)
	}
	if _, err := s.SignerFor(ctx, "acme", authn.ES256); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("SignerFor(ES256) = %v, want not found", err)
	}
	if _, err := s.SignerFor(ctx, "acme", "HS256"); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("SignerFor(HS256) = %v, want invalid", err)
	}

	keys, err := s.PublicKeys(ctx, "acme")
	if err != nil || !slices.Equal(kids(keys), []string{rs.KID, access.KID}) {
		t.Fatalf("PublicKeys = %v, %v; want both, newest first", kids(keys), err)
	}
	jwks, err := authn.JWKS(keys)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
			Kty string `json:"kty"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 2 ||
		set.Keys[0].Alg != authn.RS256 || set.Keys[0].Kty != "RSA" || set.Keys[1].Alg != authn.EdDSA {
		t.Fatalf("JWKS %s: %v", jwks, err)
	}
	// A token signed with either key verifies through the key set.
	for _, alg := range []string{authn.EdDSA, authn.RS256} {
		if _, err := v.Verify(ctx, "acme", mustTokenWith(t, mustSignerFor(t, s, "acme", alg), "acme")); err != nil {
			t.Fatalf("%s token: %v", alg, err)
		}
	}

	d := mustDescribe(t, s, "acme")
	if d.Alg != authn.EdDSA || !slices.Equal(infoKids(d.Current), []string{access.KID, rs.KID}) ||
		!slices.Equal(infoKids(d.Published), []string{access.KID, rs.KID}) {
		t.Fatalf("Describe = %+v", d)
	}

	for name, tc := range map[string]struct {
		tenant, alg string
		code        fault.Code
	}{
		"no keys":    {"globex", authn.RS256, fault.NotFound},
		"no alg":     {"acme", "", fault.Invalid},
		"bad alg":    {"acme", "HS256", fault.Invalid},
		"bad tenant": {"Not A Slug", authn.RS256, fault.Invalid},
	} {
		if _, _, err := s.Ensure(ctx, tc.tenant, tc.alg); fault.CodeOf(err) != tc.code {
			t.Errorf("%s: Ensure = %v, want %s", name, err, tc.code)
		}
	}
	if _, err := s.Describe(ctx, "globex"); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("Describe(globex) = %v, want not found", err)
	}
}

// TestStore_RotateFor rotates one algorithm's key and leaves the other's:
// RotateFor of the ensured algorithm does not touch the access-token key,
// and Rotate does not touch the ensured key.
func TestStore_RotateFor(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	clk := newClock()
	s := mustStore(t, mustJetStream(t, ns), mustKeyring(t, "k1"), keystore.WithClock(clk.Now))
	v := mustVerifier(t, s)
	ctx := context.Background()

	access := mustCreate(t, s, "acme", authn.ES256)
	rs, _ := mustEnsure(t, s, "acme", authn.RS256)
	oldRS := mustTokenWith(t, mustSignerFor(t, s, "acme", authn.RS256), "acme")

	rot, err := s.RotateFor(ctx, "acme", authn.RS256, 10*time.Minute)
	if err != nil {
		t.Fatalf("RotateFor: %v", err)
	}
	if rot.New.Alg != authn.RS256 || rot.New.KID == rs.KID || len(rot.Retired) != 1 || rot.Retired[0].KID != rs.KID ||
		!rot.Retired[0].RemoveAt.Equal(rot.New.ActiveFrom.Add(10*time.Minute)) {
		t.Fatalf("RotateFor = %+v", rot)
	}
	if k := mustSigner(t, s, "acme"); k.KID != access.KID {
		t.Fatalf("Signer after RotateFor(RS256) = %s, want the untouched %s", k.KID, access.KID)
	}
	if k := mustSignerFor(t, s, "acme", authn.RS256); k.KID != rot.New.KID {
		t.Fatalf("SignerFor(RS256) = %s, want %s", k.KID, rot.New.KID)
	}
	if _, err := v.Verify(ctx, "acme", oldRS); err != nil {
		t.Fatalf("a token of the retired RS256 key during the overlap: %v", err)
	}

	// Rotate replaces the access-token key only.
	rot2, err := s.Rotate(ctx, "acme", "", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rot2.New.Alg != authn.ES256 || len(rot2.Retired) != 1 || rot2.Retired[0].KID != access.KID {
		t.Fatalf("Rotate = %+v", rot2)
	}
	if k := mustSignerFor(t, s, "acme", authn.RS256); k.KID != rot.New.KID {
		t.Fatalf("SignerFor(RS256) after Rotate = %s, want the untouched %s", k.KID, rot.New.KID)
	}
	d := mustDescribe(t, s, "acme")
	if got := currentKids(d); d.Alg != authn.ES256 || len(got) != 2 || got[authn.ES256] != rot2.New.KID || got[authn.RS256] != rot.New.KID {
		t.Fatalf("Describe current = %v (alg %s)", got, d.Alg)
	}
	if len(d.Published) != 4 {
		t.Fatalf("published %v, want the two current keys and the two retired ones", infoKids(d.Published))
	}

	// RotateFor of the access-token algorithm is Rotate.
	rot3, err := s.RotateFor(ctx, "acme", authn.ES256, time.Minute)
	if err != nil || len(rot3.Retired) != 1 || rot3.Retired[0].KID != rot2.New.KID {
		t.Fatalf("RotateFor(ES256) = %+v, %v", rot3, err)
	}
	if k := mustSigner(t, s, "acme"); k.KID != rot3.New.KID {
		t.Fatalf("Signer after RotateFor(ES256) = %s, want %s", k.KID, rot3.New.KID)
	}

	if _, err := s.RotateFor(ctx, "acme", authn.EdDSA, 0); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("RotateFor(EdDSA) without such a key = %v, want not found", err)
	}
	if _, err := s.RotateFor(ctx, "acme", "", 0); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("RotateFor without alg = %v, want invalid", err)
	}
	if _, err := s.RotateFor(ctx, "nobody", authn.RS256, 0); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("RotateFor(nobody) = %v, want not found", err)
	}
}

// TestStore_Rotate_changeOfAlgorithm changes the access-token algorithm:
// the old access-token key is retired unless Ensure keeps its algorithm,
// and a kept algorithm's key survives.
func TestStore_Rotate_changeOfAlgorithm(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	s := mustStore(t, mustJetStream(t, ns), mustKeyring(t, "k1"))
	ctx := context.Background()

	es := mustCreate(t, s, "acme", authn.ES256)
	rs, _ := mustEnsure(t, s, "acme", authn.RS256)

	// ES256 is nobody's: it goes; RS256 stays.
	toEd, err := s.Rotate(ctx, "acme", authn.EdDSA, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(toEd.Retired) != 1 || toEd.Retired[0].KID != es.KID {
		t.Fatalf("retired %v, want only the ES256 key", infoKids(toEd.Retired))
	}
	if k := mustSigner(t, s, "acme"); k.KID != toEd.New.KID || k.Alg != authn.EdDSA {
		t.Fatalf("Signer = %s %s", k.KID, k.Alg)
	}
	if k := mustSignerFor(t, s, "acme", authn.RS256); k.KID != rs.KID {
		t.Fatalf("SignerFor(RS256) = %s, want %s", k.KID, rs.KID)
	}

	// Keep EdDSA, then move access tokens to RS256: the RS256 key is
	// replaced (its algorithm rotates), the EdDSA key is kept.
	mustEnsure(t, s, "acme", authn.EdDSA)
	toRS, err := s.Rotate(ctx, "acme", authn.RS256, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(infoKids(toRS.Retired), []string{rs.KID}) {
		t.Fatalf("retired %v, want only the old RS256 key %s", infoKids(toRS.Retired), rs.KID)
	}
	if k := mustSigner(t, s, "acme"); k.KID != toRS.New.KID || k.Alg != authn.RS256 {
		t.Fatalf("Signer = %s %s, want the new RS256 key", k.KID, k.Alg)
	}
	if k := mustSignerFor(t, s, "acme", authn.RS256); k.KID != toRS.New.KID {
		t.Fatalf("SignerFor(RS256) = %s, want the new access-token key", k.KID)
	}
	if k := mustSignerFor(t, s, "acme", authn.EdDSA); k.KID != toEd.New.KID {
		t.Fatalf("SignerFor(EdDSA) = %s, want the kept %s", k.KID, toEd.New.KID)
	}
	d := mustDescribe(t, s, "acme")
	if d.Alg != authn.RS256 || !slices.Equal(infoKids(d.Current), []string{toRS.New.KID, toEd.New.KID}) {
		t.Fatalf("Describe = alg %s, current %v", d.Alg, infoKids(d.Current))
	}
	// Rotating the kept EdDSA key leaves access tokens on RS256.
	rot, err := s.RotateFor(ctx, "acme", authn.EdDSA, time.Minute)
	if err != nil || !slices.Equal(infoKids(rot.Retired), []string{toEd.New.KID}) {
		t.Fatalf("RotateFor(EdDSA) = %+v, %v", rot, err)
	}
	if k := mustSigner(t, s, "acme"); k.KID != toRS.New.KID {
		t.Fatalf("Signer after RotateFor(EdDSA) = %s, want %s", k.KID, toRS.New.KID)
	}
}

// TestStore_Rotate_changeOfAlgorithmAhead: while a change of algorithm is
// published ahead of signing, the old key keeps signing access tokens.
func TestStore_Rotate_changeOfAlgorithmAhead(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	clk := newClock()
	s := mustStore(t, mustJetStream(t, ns), mustKeyring(t, "k1"),
		keystore.WithClock(clk.Now), keystore.WithPublishAhead(time.Hour))
	ctx := context.Background()
	ed := mustCreate(t, s, "acme", authn.EdDSA)
	mustEnsure(t, s, "acme", authn.RS256)
	rot, err := s.Rotate(ctx, "acme", authn.ES256, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if k := mustSigner(t, s, "acme"); k.KID != ed.KID {
		t.Fatalf("Signer before the new key's time = %s, want %s", k.KID, ed.KID)
	}
	if d := mustDescribe(t, s, "acme"); d.Alg != authn.ES256 {
		t.Fatalf("access-token algorithm during the change = %s, want ES256", d.Alg)
	}
	clk.Advance(time.Hour)
	if k := mustSigner(t, s, "acme"); k.KID != rot.New.KID {
		t.Fatalf("Signer after = %s, want %s", k.KID, rot.New.KID)
	}
}

// TestStore_sealedAtRest_everyAlgorithm: each key of a set of several
// algorithms is sealed under its own tenant and kid, and opens.
func TestStore_sealedAtRest_everyAlgorithm(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "kek-1")
	s := mustStore(t, js, kr)
	mustCreate(t, s, "acme", authn.EdDSA)
	mustEnsure(t, s, "acme", authn.RS256)
	mustEnsure(t, s, "acme", authn.ES256)

	var stored struct {
		Kept []string `json:"kept"`
		Keys []struct {
			KID           string        `json:"kid"`
			Alg           string        `json:"alg"`
			SealedPrivate events.Sealed `json:"sealed_private"`
		} `json:"keys"`
	}
	raw := mustRaw(t, js, "acme")
	if err := json.Unmarshal(raw, &stored); err != nil || len(stored.Keys) != 3 {
		t.Fatalf("stored value %s: %v", raw, err)
	}
	if !slices.Equal(stored.Kept, []string{authn.ES256, authn.RS256}) {
		t.Errorf("kept %v", stored.Kept)
	}
	for _, k := range stored.Keys {
		der, err := mustSignerFor(t, s, "acme", k.Alg).MarshalPrivate()
		if err != nil {
			t.Fatal(err)
		}
		opened, err := kr.Open(k.SealedPrivate, []byte("authstream/key/acme/"+k.KID))
		if err != nil || string(opened) != string(der) {
			t.Fatalf("%s key %s does not open to its private key under its aad: %v", k.Alg, k.KID, err)
		}
		for _, other := range stored.Keys {
			if other.KID != k.KID {
				if _, err := kr.Open(k.SealedPrivate, []byte("authstream/key/acme/"+other.KID)); err == nil {
					t.Fatalf("key %s opens under the aad of %s", k.KID, other.KID)
				}
			}
		}
	}
}

// TestStore_valueOfEarlierVersions reads a key set written before keys of
// several algorithms (no kept, no extra): its keys are access-token keys,
// and Ensure and Rotate work on it.
func TestStore_valueOfEarlierVersions(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "k1")
	s := mustStore(t, js, kr)
	ctx := context.Background()
	first := mustCreate(t, s, "old", authn.ES256)
	// The value as the earlier version wrote it.
	var v map[string]any
	if err := json.Unmarshal(mustRaw(t, js, "old"), &v); err != nil {
		t.Fatal(err)
	}
	if _, ok := v["kept"]; ok || len(v) != 1 {
		t.Fatalf("a set of one access-token key stores %v, want keys only", v)
	}
	fresh := mustStore(t, mustJetStream(t, ns), kr)
	if k := mustSigner(t, fresh, "old"); k.KID != first.KID {
		t.Fatalf("Signer = %s", k.KID)
	}
	rs, created := mustEnsure(t, fresh, "old", authn.RS256)
	if !created {
		t.Fatal("Ensure made no key")
	}
	if k := mustSigner(t, fresh, "old"); k.KID != first.KID {
		t.Fatalf("Signer after Ensure = %s, want the access-token key %s", k.KID, first.KID)
	}
	rot, err := fresh.Rotate(ctx, "old", "", 0)
	if err != nil || rot.New.Alg != authn.ES256 || !slices.Equal(infoKids(rot.Retired), []string{first.KID}) {
		t.Fatalf("Rotate = %+v, %v", rot, err)
	}
	if k := mustSignerFor(t, fresh, "old", authn.RS256); k.KID != rs.KID {
		t.Fatalf("SignerFor(RS256) = %s, want %s", k.KID, rs.KID)
	}
}
