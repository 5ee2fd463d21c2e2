package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/commandtest"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// keysEnv is a command application with one tenant, "acme", of signing
// algorithm alg, and its admin.
type keysEnv struct {
	*commandtest.Env
	admin domain.Principal
}

func mustKeysEnv(tb testing.TB, alg string, opts ...app.Option) *keysEnv {
	tb.Helper()
	env := commandtest.New(tb, opts...)
	platform := domain.NewPrincipal("platform", env.AdminID, authz.AdminPermissions())
	res, err := env.App.Commands.CreateTenant.Handle(context.Background(), app.CreateTenant{
		Request: app.Request{Principal: platform}, ID: "acme", Name: "Acme",
		AdminUsername: "ada", AdminPassword: "ada-password", SigningAlg: alg,
	})
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	return &keysEnv{Env: env, admin: domain.NewPrincipal("acme", res.UserID, authz.AdminPermissions())}
}

// rotate runs RotateKeys as the tenant's admin.
func (e *keysEnv) rotate(tb testing.TB, req app.Request, alg string, overlap time.Duration) (app.Result, error) {
	tb.Helper()
	if req.Principal.UserID == "" {
		req.Principal = e.admin
	}
	return e.App.Commands.RotateKeys.Handle(context.Background(), app.RotateKeys{Request: req, Tenant: "acme", Alg: alg, Overlap: overlap})
}

func (e *keysEnv) mustRotate(tb testing.TB, req app.Request, alg string, overlap time.Duration) app.Result {
	tb.Helper()
	res, err := e.rotate(tb, req, alg, overlap)
	if err != nil {
		tb.Fatalf("rotate: %v", err)
	}
	return res
}

// keyEvents returns the kids of the key set's key.created and key.retired
// events, in order.
func (e *keysEnv) keyEvents(tb testing.TB) (created []string, retired []events.KeyRetired) {
	tb.Helper()
	for _, env := range e.Events(tb, "acme", events.AggregateKeySet, "acme") {
		data, err := events.Decode(env)
		if err != nil {
			tb.Fatal(err)
		}
		switch d := data.(type) {
		case events.KeyCreated:
			created = append(created, d.KID)
		case events.KeyRetired:
			retired = append(retired, d)
		}
	}
	return created, retired
}

// signer returns the kid and alg of the key that signs acme's tokens now.
func (e *keysEnv) signer(tb testing.TB) (string, string) {
	tb.Helper()
	k, err := e.Keys.Signer(context.Background(), "acme")
	if err != nil {
		tb.Fatal(err)
	}
	return k.KID, k.Alg
}

// idSigner returns the kid of the RS256 key that signs acme's ID tokens.
func (e *keysEnv) idSigner(tb testing.TB) string {
	tb.Helper()
	k, err := e.Keys.SignerFor(context.Background(), "acme", authn.RS256)
	if err != nil {
		tb.Fatal(err)
	}
	return k.KID
}

func retiredKids(rs []events.KeyRetired) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.KID
	}
	return out
}

func newKids(ks []app.NewKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.KID
	}
	return out
}

func idempotent(key string) app.Request {
	sum := sha256.Sum256([]byte(key))
	return app.Request{IdempotencyKey: key, Fingerprint: hex.EncodeToString(sum[:])}
}

func TestCreateTenant_SigningAlg(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"", authn.EdDSA, authn.ES256, authn.RS256} {
		t.Run("alg "+alg, func(t *testing.T) {
			t.Parallel()
			e := mustKeysEnv(t, alg)
			want := alg
			if want == "" {
				want = authn.DefaultAlg
			}
			if _, got := e.signer(t); got != want {
				t.Errorf("signer alg = %s, want %s", got, want)
			}
			// The access-token key and the RS256 key of ID tokens, which
			// are one key when the tenant signs with RS256.
			kid, _ := e.signer(t)
			wantKids := []string{kid, e.idSigner(t)}
			if want == authn.RS256 {
				wantKids = wantKids[:1]
			}
			if created, _ := e.keyEvents(t); !slices.Equal(created, wantKids) {
				t.Errorf("key.created kids %v, want %v", created, wantKids)
			}
		})
	}
	t.Run("unknown alg", func(t *testing.T) {
		t.Parallel()
		env := commandtest.New(t)
		platform := domain.NewPrincipal("platform", env.AdminID, authz.AdminPermissions())
		_, err := env.App.Commands.CreateTenant.Handle(context.Background(), app.CreateTenant{
			Request: app.Request{Principal: platform}, ID: "acme", Name: "Acme",
			AdminUsername: "ada", AdminPassword: "ada-password", SigningAlg: "HS256",
		})
		if fault.CodeOf(err) != fault.Invalid {
			t.Fatalf("create with HS256 = %v, want invalid", err)
		}
		if got := env.Events(t, "acme", events.AggregateTenant, "acme"); len(got) != 0 {
			t.Errorf("tenant has %d events after a refused create", len(got))
		}
	})
}

func TestRotateKeys_Rotates(t *testing.T) {
	t.Parallel()
	e := mustKeysEnv(t, authn.ES256)
	old, oldID := func() string { k, _ := e.signer(t); return k }(), e.idSigner(t)
	res := e.mustRotate(t, app.Request{}, "", 20*time.Minute)
	rot := res.Rotation
	kid, alg := e.signer(t)
	idKid := e.idSigner(t)
	switch {
	case !res.Changed || res.Sequence == 0 || rot == nil:
		t.Fatalf("result %+v", res)
	case rot.KID != kid || rot.KID == old || rot.Alg != authn.ES256 || alg != authn.ES256:
		t.Errorf("rotation %+v, signer %s %s, old %s", rot, kid, alg, old)
	case idKid == oldID || !slices.Equal(newKids(rot.Keys), []string{kid, idKid}) || rot.Keys[1].Alg != authn.RS256:
		t.Errorf("new keys %+v, want the access-token key then the new RS256 key %s (old %s)", rot.Keys, idKid, oldID)
	case len(rot.Retired) != 2 || rot.Retired[0].KID != old || rot.Retired[1].KID != oldID ||
		!rot.Retired[0].RemoveAt.Equal(rot.ActiveFrom.Add(20*time.Minute)) || !rot.Retired[1].RemoveAt.Equal(rot.Keys[1].ActiveFrom.Add(20*time.Minute)):
		t.Errorf("retired %+v, want %s and %s until their successor's active_from+20m", rot.Retired, old, oldID)
	}
	created, retired := e.keyEvents(t)
	// The access-token key's key.created comes last: a replay tells it so.
	if !slices.Equal(created, []string{old, oldID, idKid, kid}) || !slices.Equal(retiredKids(retired), []string{old, oldID}) {
		t.Errorf("key set: created %v, retired %v", created, retiredKids(retired))
	}

	// Another algorithm on request; the default overlap. The RS256 key of
	// ID tokens becomes the access-token key too: one key for both.
	res = e.mustRotate(t, app.Request{}, authn.RS256, 0)
	if kid, alg := e.signer(t); res.Rotation.KID != kid || alg != authn.RS256 || e.idSigner(t) != kid {
		t.Errorf("rotation to RS256 %+v, signer %s %s, ID-token signer %s", res.Rotation, kid, alg, e.idSigner(t))
	}
	if len(res.Rotation.Keys) != 1 {
		t.Errorf("new keys %+v, want one", res.Rotation.Keys)
	}
	if r := res.Rotation.Retired; len(r) != 2 || !r[0].RemoveAt.Equal(res.Rotation.ActiveFrom.Add(keystore.DefaultMaxTokenLifetime)) {
		t.Errorf("retired %+v, want the ES256 and the RS256 key with the default overlap", r)
	}
}

func TestRotateKeys_Refused(t *testing.T) {
	t.Parallel()
	e := mustKeysEnv(t, "")
	ctx := context.Background()
	user, err := e.App.Commands.RegisterUser.Handle(ctx, app.RegisterUser{
		Request: app.Request{Principal: e.admin}, Tenant: "acme", Username: "bob", Password: "bob-password",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		p       domain.Principal
		alg     string
		overlap time.Duration
		want    fault.Code
	}{
		{"user without keys:write", domain.NewPrincipal("acme", user.ID, authz.Set{}), "", 0, fault.Forbidden},
		{"admin of another tenant", domain.NewPrincipal("other", "u1", authz.AdminPermissions()), "", 0, fault.Forbidden},
		{"platform admin", domain.NewPrincipal("platform", e.AdminID, authz.AdminPermissions()), "", 0, fault.Forbidden},
		{"unknown alg", e.admin, "HS256", 0, fault.Invalid},
		{"alg none", e.admin, "none", 0, fault.Invalid},
		{"negative overlap", e.admin, "", -time.Second, fault.Invalid},
		{"overlap too long", e.admin, "", app.MaxKeyOverlap + time.Second, fault.Invalid},
	}
	kid, _ := e.signer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.rotate(t, app.Request{Principal: tt.p}, tt.alg, tt.overlap)
			if got := fault.CodeOf(err); got != tt.want {
				t.Errorf("rotate = %v, want %s", err, tt.want)
			}
		})
	}
	if now, _ := e.signer(t); now != kid {
		t.Errorf("a refused rotation changed the signer")
	}
	if created, _ := e.keyEvents(t); len(created) != 2 {
		t.Errorf("key.created %v after refused rotations", created)
	}
}

func TestRotateKeys_IdempotencyKey(t *testing.T) {
	t.Parallel()
	e := mustKeysEnv(t, "")
	first := e.mustRotate(t, idempotent("rotate-1"), "", 0)
	again := e.mustRotate(t, idempotent("rotate-1"), "", 0)
	if !again.Replayed || again.Rotation.KID != first.Rotation.KID || again.Sequence != first.Sequence ||
		len(again.Rotation.Retired) != 2 || !slices.Equal(again.Rotation.Retired, first.Rotation.Retired) ||
		!slices.Equal(again.Rotation.Keys, first.Rotation.Keys) {
		t.Errorf("replay %+v %+v, first %+v %+v", again, again.Rotation, first, first.Rotation)
	}
	if kid, _ := e.signer(t); kid != first.Rotation.KID {
		t.Errorf("the replay rotated again: signer %s", kid)
	}
	if created, _ := e.keyEvents(t); len(created) != 4 {
		t.Errorf("key.created %v, want 4: two at creation, two by the rotation", created)
	}
	// The same key with another request is refused.
	_, err := e.rotate(t, app.Request{IdempotencyKey: "rotate-1", Fingerprint: idempotent("other body").Fingerprint}, authn.RS256, 0)
	if !errors.Is(err, app.ErrIdempotencyKeyReused) {
		t.Errorf("reuse = %v, want ErrIdempotencyKeyReused", err)
	}
}

// TestRotateKeys_UnrecordedRotation covers a rotation whose key store
// change happened but whose events were never stored (the event store
// failed for the whole request): the next rotation records that key
// instead of making another, and the log misses no key that signed.
func TestRotateKeys_UnrecordedRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a retry records it", func(t *testing.T) {
		t.Parallel()
		e := mustKeysEnv(t, "")
		old, _ := e.signer(t)
		oldID := e.idSigner(t)
		lost, err := e.Keys.Rotate(ctx, "acme", "", 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		res := e.mustRotate(t, idempotent("retry"), "", 10*time.Minute)
		if res.Rotation.KID != lost.New.KID || !res.Changed {
			t.Errorf("rotation %+v, want the unrecorded key %s", res.Rotation, lost.New.KID)
		}
		if kid, _ := e.signer(t); kid != lost.New.KID {
			t.Errorf("signer %s, want %s: the retry rotated again", kid, lost.New.KID)
		}
		// The unrecorded access-token key is recorded as it was retired by
		// the key store; the RS256 key, which the lost rotation did not
		// reach, is rotated.
		idKid := e.idSigner(t)
		created, retired := e.keyEvents(t)
		if !slices.Equal(created, []string{old, oldID, idKid, lost.New.KID}) || idKid == oldID ||
			!slices.Equal(retiredKids(retired), []string{old, oldID}) || !retired[0].RemoveAt.Equal(lost.Retired[0].RemoveAt) {
			t.Errorf("key set: created %v, retired %+v; key store retired %+v", created, retired, lost.Retired)
		}
	})

	t.Run("another algorithm records it and rotates", func(t *testing.T) {
		t.Parallel()
		e := mustKeysEnv(t, "")
		lost, err := e.Keys.Rotate(ctx, "acme", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		res := e.mustRotate(t, app.Request{}, authn.ES256, 0)
		kid, alg := e.signer(t)
		if res.Rotation.KID != kid || alg != authn.ES256 || kid == lost.New.KID {
			t.Errorf("rotation %+v, signer %s %s", res.Rotation, kid, alg)
		}
		created, retired := e.keyEvents(t)
		if len(created) != 5 || created[2] != lost.New.KID || created[4] != kid || len(retired) != 3 ||
			!slices.Contains(retiredKids(retired), lost.New.KID) {
			t.Errorf("key set: created %v, retired %v", created, retiredKids(retired))
		}
	})
}

// TestRotateKeys_Concurrent rotates from several goroutines at once: every
// key is recorded as created once, every key but the signers (of access
// tokens and of ID tokens) is retired once, and the signers are recorded.
func TestRotateKeys_Concurrent(t *testing.T) {
	t.Parallel()
	// Enough attempts that no rotation gives up: one that gave up after
	// its key store change would leave its key to the next rotation.
	e := mustKeysEnv(t, "", app.WithMaxAttempts(50))
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.rotate(t, idempotent(fmt.Sprintf("c%d", i)), "", 0)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("rotation %d: %v", i, err)
		}
	}
	created, retired := e.keyEvents(t)
	seen := map[string]int{}
	for _, k := range created {
		seen[k]++
	}
	for _, r := range retired {
		seen[r.KID] += 10
	}
	kid, _ := e.signer(t)
	idKid := e.idSigner(t)
	for k, v := range seen {
		want := 11
		if k == kid || k == idKid {
			want = 1
		}
		if v != want {
			t.Errorf("key %s: created %d times, retired %d times (signer %v)", k, v%10, v/10, k == kid || k == idKid)
		}
	}
	if seen[kid] != 1 || seen[idKid] != 1 || len(created) < 4 {
		t.Errorf("created %v, signers %s and %s", created, kid, idKid)
	}
}
