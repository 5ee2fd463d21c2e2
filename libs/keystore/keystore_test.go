package keystore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/nats-io/nats.go/jetstream"
)

const publicURL = "https://auth.example.com"

// clock is a settable clock for the store's key schedule.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func mustStore(tb testing.TB, js jetstream.JetStream, keyring *events.Keyring, opts ...keystore.Option) *keystore.Store {
	tb.Helper()
	s, err := keystore.New(context.Background(), js, keyring, opts...)
	if err != nil {
		tb.Fatalf("keystore.New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func mustCreate(tb testing.TB, s *keystore.Store, tenant, alg string) keystore.KeyInfo {
	tb.Helper()
	info, _, err := s.Create(context.Background(), tenant, alg)
	if err != nil {
		tb.Fatalf("Create(%s, %s): %v", tenant, alg, err)
	}
	return info
}

func mustSigner(tb testing.TB, s *keystore.Store, tenant string) *authn.SigningKey {
	tb.Helper()
	k, err := s.Signer(context.Background(), tenant)
	if err != nil {
		tb.Fatalf("Signer(%s): %v", tenant, err)
	}
	return k
}

// mustToken issues a token of tenant signed with its current key.
func mustToken(tb testing.TB, s *keystore.Store, tenant string) string {
	tb.Helper()
	now := time.Now()
	tok, err := authn.Issue(mustSigner(tb, s, tenant), authn.Claims{
		Issuer:    authn.IssuerURL(publicURL, tenant),
		Subject:   "user-1",
		ExpiresAt: now.Add(15 * time.Minute),
		IssuedAt:  now,
		Tenant:    tenant,
	})
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return tok
}

func mustVerifier(tb testing.TB, src authn.KeySource) *authn.Verifier {
	tb.Helper()
	v, err := authn.NewVerifier(src, publicURL)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func kids(keys []authn.PublicKeyInfo) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.KID
	}
	return out
}

func TestNew(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "k1")
	mustStore(t, js, kr)
	mustStore(t, js, kr) // the bucket exists now: opened, not recreated
	kv, err := js.KeyValue(context.Background(), keystore.DefaultBucket)
	if err != nil {
		t.Fatalf("bucket not created: %v", err)
	}
	st, err := kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Storage != jetstream.FileStorage {
		t.Error("bucket is not on file storage")
	}
	if _, err := keystore.New(context.Background(), js, nil); err == nil {
		t.Error("New without a keyring succeeded")
	}
	if _, err := keystore.New(context.Background(), js, kr, keystore.WithPublishAhead(-time.Second)); err == nil {
		t.Error("New with a negative publish-ahead succeeded")
	}
}

func TestStore_Create(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	s := mustStore(t, mustJetStream(t, ns), mustKeyring(t, "k1"))
	ctx := context.Background()

	first, created, err := s.Create(ctx, "acme", "")
	if err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	if first.Alg != authn.EdDSA || first.Tenant != "acme" || first.KID == "" || first.ActiveFrom.IsZero() || !first.RemoveAt.IsZero() {
		t.Fatalf("Create info = %+v", first)
	}
	pub, err := authn.ParseJWK(first.PublicJWK)
	if err != nil || pub.KID != first.KID {
		t.Fatalf("public jwk %s: %v", first.PublicJWK, err)
	}
	again, created, err := s.Create(ctx, "acme", authn.RS256)
	if err != nil || created || again.KID != first.KID {
		t.Fatalf("second Create = %+v, %v, %v; want the first key", again, created, err)
	}
	if k := mustSigner(t, s, "acme"); k.KID != first.KID || k.Alg != authn.EdDSA {
		t.Fatalf("Signer = %s %s", k.KID, k.Alg)
	}

	errs := map[string]struct {
		tenant, alg string
		code        fault.Code
	}{
		"bad alg":    {"globex", "HS256", fault.Invalid},
		"bad tenant": {"Not A Slug", "", fault.Invalid},
	}
	for name, tc := range errs {
		if _, _, err := s.Create(ctx, tc.tenant, tc.alg); fault.CodeOf(err) != tc.code {
			t.Errorf("%s: Create = %v, want %s", name, err, tc.code)
		}
	}
	if _, err := s.Signer(ctx, "nobody"); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("Signer(nobody) = %v, want not found", err)
	}
	if _, err := s.PublicKeys(ctx, "nobody"); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("PublicKeys(nobody) = %v, want not found", err)
	}
}

func TestStore_signVerify(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	s := mustStore(t, mustJetStream(t, ns), mustKeyring(t, "k1"))
	v := mustVerifier(t, s)
	ctx := context.Background()
	for _, alg := range []string{authn.EdDSA, authn.ES256, authn.RS256} {
		tenant := "t-" + strings.ToLower(alg)
		info := mustCreate(t, s, tenant, alg)
		tok := mustToken(t, s, tenant)
		claims, err := v.Verify(ctx, tenant, tok)
		if err != nil {
			t.Fatalf("%s: Verify: %v", alg, err)
		}
		if claims.Tenant != tenant {
			t.Fatalf("%s: claims tenant %q", alg, claims.Tenant)
		}
		keys, err := s.PublicKeys(ctx, tenant)
		if err != nil || len(keys) != 1 || keys[0].KID != info.KID || keys[0].Alg != alg {
			t.Fatalf("%s: PublicKeys = %v, %v", alg, kids(keys), err)
		}
		if _, err := authn.JWKS(keys); err != nil {
			t.Fatalf("%s: JWKS: %v", alg, err)
		}
		// A tenant's token is refused at another tenant.
		if _, err := v.Verify(ctx, "t-eddsa", tok); alg != authn.EdDSA && fault.CodeOf(err) != fault.Unauthenticated {
			t.Fatalf("%s token at t-eddsa: %v", alg, err)
		}
	}
	if _, _, err := s.PublicKey(ctx, "t-eddsa", "no-such-kid"); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("PublicKey(unknown kid) = %v", err)
	}
}

func TestStore_Rotate(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	clk := newClock()
	s := mustStore(t, mustJetStream(t, ns), mustKeyring(t, "k1"), keystore.WithClock(clk.Now))
	v := mustVerifier(t, s)
	ctx := context.Background()

	old := mustCreate(t, s, "acme", authn.ES256)
	oldToken := mustToken(t, s, "acme")

	rot, err := s.Rotate(ctx, "acme", "", 10*time.Minute)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if rot.New.KID == old.KID || rot.New.Alg != authn.ES256 {
		t.Fatalf("Rotate made %+v; want a new ES256 key", rot.New)
	}
	if len(rot.Retired) != 1 || rot.Retired[0].KID != old.KID ||
		!rot.Retired[0].RetireAt.Equal(rot.New.ActiveFrom) || !rot.Retired[0].RemoveAt.Equal(rot.New.ActiveFrom.Add(10*time.Minute)) {
		t.Fatalf("Retired = %+v", rot.Retired)
	}

	if k := mustSigner(t, s, "acme"); k.KID != rot.New.KID {
		t.Fatalf("Signer after rotate = %s, want %s", k.KID, rot.New.KID)
	}
	created, retired := rot.New.CreatedEvent(), rot.Retired[0].RetiredEvent()
	if created.KID != rot.New.KID || created.Algorithm != authn.ES256 || !created.ActiveFrom.Equal(rot.New.ActiveFrom) ||
		!bytes.Equal(created.PublicJWK, rot.New.PublicJWK) {
		t.Fatalf("CreatedEvent = %+v", created)
	}
	if retired.KID != old.KID || !retired.RemoveAt.Equal(rot.Retired[0].RemoveAt) {
		t.Fatalf("RetiredEvent = %+v", retired)
	}
	newToken := mustToken(t, s, "acme")
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		if _, err := v.Verify(ctx, "acme", tok); err != nil {
			t.Fatalf("%s token refused during the overlap: %v", name, err)
		}
	}
	keys, err := s.PublicKeys(ctx, "acme")
	if err != nil || !slices.Equal(kids(keys), []string{rot.New.KID, old.KID}) {
		t.Fatalf("PublicKeys = %v, %v; want new then old", kids(keys), err)
	}

	// Another algorithm on request.
	rot2, err := s.Rotate(ctx, "acme", authn.EdDSA, 10*time.Minute)
	if err != nil || rot2.New.Alg != authn.EdDSA {
		t.Fatalf("Rotate to EdDSA = %+v, %v", rot2.New, err)
	}
	if len(rot2.Retired) != 1 || rot2.Retired[0].KID != rot.New.KID {
		t.Fatalf("second rotation retired %+v; the first old key was retired already", rot2.Retired)
	}

	// Once the overlap is over, the old key leaves the JWKS and its tokens
	// stop verifying.
	clk.Advance(10*time.Minute + time.Second)
	keys, err = s.PublicKeys(ctx, "acme")
	if err != nil || !slices.Equal(kids(keys), []string{rot2.New.KID}) {
		t.Fatalf("PublicKeys after the overlap = %v, %v", kids(keys), err)
	}
	if _, err := v.Verify(ctx, "acme", oldToken); fault.CodeOf(err) != fault.Unauthenticated {
		t.Fatalf("old token after removal: %v", err)
	}
	// The removed keys are dropped from the stored value on the next write.
	rot3, err := s.Rotate(ctx, "acme", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := rot3.Retired[0].RemoveAt.Sub(rot3.Retired[0].RetireAt); got != keystore.DefaultMaxTokenLifetime {
		t.Fatalf("default overlap = %s", got)
	}
	raw := mustRaw(t, mustJetStream(t, ns), "acme")
	if bytes.Contains(raw, []byte(old.KID)) {
		t.Fatal("removed key still stored")
	}

	if _, err := s.Rotate(ctx, "nobody", "", 0); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("Rotate(nobody) = %v", err)
	}
	if _, err := s.Rotate(ctx, "acme", "", -time.Second); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("Rotate with negative overlap = %v", err)
	}
}

func TestStore_Rotate_publishAhead(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	clk := newClock()
	s := mustStore(t, mustJetStream(t, ns), mustKeyring(t, "k1"),
		keystore.WithClock(clk.Now), keystore.WithPublishAhead(time.Hour))
	ctx := context.Background()
	old := mustCreate(t, s, "acme", "") // Create signs at once, whatever the publish-ahead
	if k := mustSigner(t, s, "acme"); k.KID != old.KID {
		t.Fatalf("Signer = %s", k.KID)
	}
	rot, err := s.Rotate(ctx, "acme", "", 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !rot.New.ActiveFrom.Equal(rot.New.CreatedAt.Add(time.Hour)) {
		t.Fatalf("new key active from %s, created %s", rot.New.ActiveFrom, rot.New.CreatedAt)
	}
	if k := mustSigner(t, s, "acme"); k.KID != old.KID {
		t.Fatalf("new key signs before its time")
	}
	keys, _ := s.PublicKeys(ctx, "acme")
	if !slices.Contains(kids(keys), rot.New.KID) {
		t.Fatal("new key not published ahead of signing")
	}
	// Create while a rotation is pending returns the current key.
	if info, created, _ := s.Create(ctx, "acme", ""); created || info.KID != old.KID {
		t.Fatalf("Create during a pending rotation = %s, %v", info.KID, created)
	}
	clk.Advance(time.Hour)
	if k := mustSigner(t, s, "acme"); k.KID != rot.New.KID {
		t.Fatalf("Signer after publish-ahead = %s, want %s", k.KID, rot.New.KID)
	}
	clk.Advance(20 * time.Minute)
	keys, _ = s.PublicKeys(ctx, "acme")
	if !slices.Equal(kids(keys), []string{rot.New.KID}) {
		t.Fatalf("PublicKeys = %v", kids(keys))
	}
}

func mustRaw(tb testing.TB, js jetstream.JetStream, tenant string) []byte {
	tb.Helper()
	kv, err := js.KeyValue(context.Background(), keystore.DefaultBucket)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := kv.Get(context.Background(), tenant)
	if err != nil {
		tb.Fatalf("get %s: %v", tenant, err)
	}
	return e.Value()
}

func TestStore_sealedAtRest(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "kek-1")
	s := mustStore(t, js, kr)
	ctx := context.Background()
	for _, alg := range []string{authn.EdDSA, authn.ES256, authn.RS256} {
		tenant := "t-" + strings.ToLower(alg)
		mustCreate(t, s, tenant, alg)
		der, err := mustSigner(t, s, tenant).MarshalPrivate()
		if err != nil {
			t.Fatal(err)
		}
		raw := mustRaw(t, js, tenant)
		for name, form := range map[string]string{
			"der":       string(der),
			"base64":    base64.StdEncoding.EncodeToString(der),
			"base64url": base64.RawURLEncoding.EncodeToString(der),
			"hex":       hex.EncodeToString(der),
		} {
			if bytes.Contains(raw, []byte(form)) {
				t.Fatalf("%s: stored value contains the private key as %s", alg, name)
			}
		}
		var stored struct {
			Keys []struct {
				KID           string          `json:"kid"`
				PublicJWK     json.RawMessage `json:"public_jwk"`
				SealedPrivate events.Sealed   `json:"sealed_private"`
			} `json:"keys"`
		}
		if err := json.Unmarshal(raw, &stored); err != nil || len(stored.Keys) != 1 {
			t.Fatalf("stored value %s: %v", raw, err)
		}
		k := stored.Keys[0]
		if k.SealedPrivate.KID != "kek-1" || len(k.SealedPrivate.Ciphertext) == 0 {
			t.Fatalf("sealed_private = %+v", k.SealedPrivate)
		}
		if bytes.Contains(k.PublicJWK, []byte(`"d"`)) {
			t.Fatal("public jwk holds a private member")
		}
		opened, err := kr.Open(k.SealedPrivate, []byte("authstream/key/"+tenant+"/"+k.KID))
		if err != nil || !bytes.Equal(opened, der) {
			t.Fatalf("sealed key does not open to the private key under its aad: %v", err)
		}
	}

	// A key set copied to another tenant does not open there: the seal is
	// bound to tenant and kid.
	kv, _ := js.KeyValue(ctx, keystore.DefaultBucket)
	if _, err := kv.Put(ctx, "evil", mustRaw(t, js, "t-eddsa")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Signer(ctx, "evil"); fault.CodeOf(err) != fault.Internal {
		t.Fatalf("Signer of a copied key set = %v, want internal", err)
	}
	// A store with another key-encryption key cannot open the keys, and
	// says so without detail.
	other := mustStore(t, js, mustKeyring(t, "kek-2"))
	_, err := other.Signer(ctx, "t-eddsa")
	if fault.CodeOf(err) != fault.Internal || !errors.Is(err, events.ErrUnknownKEK) {
		t.Fatalf("Signer under another KEK = %v", err)
	}
	if fault.MessageOf(err) != "internal error" {
		t.Fatalf("message shown = %q", fault.MessageOf(err))
	}
}

func TestStore_concurrentRotate(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	kr := mustKeyring(t, "k1")
	a := mustStore(t, mustJetStream(t, ns), kr)
	b := mustStore(t, mustJetStream(t, ns), kr)
	ctx := context.Background()
	first := mustCreate(t, a, "acme", "")

	const perStore = 4
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		made  []string
		start = make(chan struct{})
	)
	for _, s := range []*keystore.Store{a, b} {
		for range perStore {
			wg.Go(func() {
				<-start
				rot, err := s.Rotate(ctx, "acme", "", time.Hour)
				if err != nil {
					t.Errorf("Rotate: %v", err)
					return
				}
				mu.Lock()
				made = append(made, rot.New.KID)
				mu.Unlock()
			})
		}
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	fresh := mustStore(t, mustJetStream(t, ns), kr)
	keys, err := fresh.PublicKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	got := kids(keys)
	for _, kid := range append(made, first.KID) {
		if !slices.Contains(got, kid) {
			t.Fatalf("key %s lost; stored %v", kid, got)
		}
	}
	if len(got) != 2*perStore+1 {
		t.Fatalf("stored %d keys, want %d", len(got), 2*perStore+1)
	}
	// Every process comes to agree on one signer, one of the rotated-in
	// keys, as soon as its watch has delivered the last write.
	want := mustSigner(t, fresh, "acme").KID
	if !slices.Contains(made, want) {
		t.Fatalf("signer %s is not a rotated-in key", want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range []*keystore.Store{a, b} {
		for mustSigner(t, s, "acme").KID != want {
			if time.Now().After(deadline) {
				t.Fatalf("signer %s never became %s", mustSigner(t, s, "acme").KID, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestStore_watch(t *testing.T) {
	t.Parallel()
	ns := mustServer(t)
	kr := mustKeyring(t, "k1")
	a := mustStore(t, mustJetStream(t, ns), kr)
	// b trusts its cache for an hour: only the watch can tell it of a
	// rotation.
	b := mustStore(t, mustJetStream(t, ns), kr, keystore.WithCacheTTL(time.Hour))
	ctx := context.Background()

	first := mustCreate(t, a, "acme", "")
	if k := mustSigner(t, b, "acme"); k.KID != first.KID {
		t.Fatalf("b's signer = %s", k.KID)
	}
	rot, err := a.Rotate(ctx, "acme", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for mustSigner(t, b, "acme").KID != rot.New.KID {
		if time.Now().After(deadline) {
			t.Fatal("b never saw the rotation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// b verifies a's new tokens and still the old ones.
	v := mustVerifier(t, b)
	for _, s := range []*keystore.Store{a, b} {
		if _, err := v.Verify(ctx, "acme", mustToken(t, s, "acme")); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}

	// A deleted key set disappears from b too.
	kv, _ := mustJetStream(t, ns).KeyValue(ctx, keystore.DefaultBucket)
	if err := kv.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := b.Signer(ctx, "acme")
		if fault.CodeOf(err) == fault.NotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still signs for a deleted tenant: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// And the tenant can be given keys again.
	if _, created, err := a.Create(ctx, "acme", ""); err != nil || !created {
		t.Fatalf("Create after delete = %v, %v", created, err)
	}
}
