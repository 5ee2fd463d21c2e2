package authstream_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// testRotation creates a tenant per signing algorithm, verifies its
// tokens with go-jose through discovery and the JWKS, rotates its key, and
// checks that the tokens of the old key keep working during the overlap
// while new tokens carry the new key, for an outside verifier and for both
// services alike.
func testRotation(t *testing.T, p *keysPlatform, root tokens) {
	tests := []struct {
		tenant   string
		alg      string // "" for none given: EdDSA
		rotateTo string // "" keeps the algorithm
		wantAlg  string
		newAlg   string
	}{
		{tenant: "default-alg", wantAlg: "EdDSA", newAlg: "EdDSA"},
		{tenant: "eddsa", alg: "EdDSA", wantAlg: "EdDSA", newAlg: "EdDSA"},
		{tenant: "es256", alg: "ES256", wantAlg: "ES256", newAlg: "ES256"},
		{tenant: "rs256", alg: "RS256", wantAlg: "RS256", newAlg: "RS256"},
		{tenant: "eddsa-to-rs256", alg: "EdDSA", rotateTo: "RS256", wantAlg: "EdDSA", newAlg: "RS256"},
	}
	for _, tt := range tests {
		t.Run(tt.tenant, func(t *testing.T) {
			t.Parallel()
			admin := p.mustTenant(t, root.AccessToken, tt.tenant, tt.alg)

			oldKID, alg, claims, err := joseVerify(p.Client, tt.tenant, admin.AccessToken)
			if err != nil {
				t.Fatalf("go-jose refuses the first token: %v", err)
			}
			if alg != tt.wantAlg || !slices.Equal(claims.Roles, []string{"admin"}) {
				t.Fatalf("first token: alg %s, roles %v; want %s, [admin]", alg, claims.Roles, tt.wantAlg)
			}
			// Besides the access-token key, every tenant holds an RS256 key
			// for ID tokens (one key when it signs access tokens with RS256).
			wantKeys := 2
			if tt.wantAlg == "RS256" {
				wantKeys = 1
			}
			if got := jwksKids(t, p.Client, tt.tenant); len(got) != wantKeys || !slices.Contains(got, oldKID) {
				t.Fatalf("JWKS before the rotation = %v, want %d keys with %s", got, wantKeys, oldKID)
			}
			p.mustAccepted(t, tt.tenant, admin.AccessToken, "before")

			// The rotation, authenticated with the token it retires.
			body := map[string]any{"overlap_seconds": 1200}
			if tt.rotateTo != "" {
				body["alg"] = tt.rotateTo
			}
			rot := p.DoCommand(t, http.MethodPost, "/t/"+tt.tenant+"/keys/rotate", admin.AccessToken, body, http.StatusOK)
			rb := rot.JSON()
			newKID, _ := rb["kid"].(string)
			retired, _ := rb["retired"].([]any)
			// A rotation replaces every current key; the access-token key
			// is the answer's own.
			var r map[string]any
			for _, x := range retired {
				if k := x.(map[string]any); k["kid"] == oldKID {
					r = k
				}
			}
			if newKID == "" || newKID == oldKID || rb["alg"] != tt.newAlg || r == nil {
				t.Fatalf("rotation = %s", rot.Body)
			}
			activeFrom, err1 := time.Parse(time.RFC3339Nano, rb["active_from"].(string))
			removeAt, err2 := time.Parse(time.RFC3339Nano, r["remove_at"].(string))
			if r["kid"] != oldKID || err1 != nil || err2 != nil || !removeAt.Equal(activeFrom.Add(20*time.Minute)) {
				t.Errorf("retired %v, active_from %v: want %s until active_from+20m", r, rb["active_from"], oldKID)
			}

			// Both keys are published during the overlap, the new one first.
			if got := jwksKids(t, p.Client, tt.tenant); !slices.Contains(got, newKID) || !slices.Contains(got, oldKID) {
				t.Errorf("JWKS after the rotation = %v, want %s and %s", got, newKID, oldKID)
			}

			// The old token still verifies and is still accepted.
			if kid, _, _, err := joseVerify(p.Client, tt.tenant, admin.AccessToken); err != nil || kid != oldKID {
				t.Errorf("go-jose on the old token after the rotation: kid %s, %v", kid, err)
			}
			p.mustAccepted(t, tt.tenant, admin.AccessToken, "after")

			// A new login is signed with the new key.
			fresh := p.Login(t, tt.tenant, acmeAdmin, acmePassword, rot.Token())
			kid, alg, _, err := joseVerify(p.Client, tt.tenant, fresh.AccessToken)
			if err != nil || kid != newKID || alg != tt.newAlg {
				t.Errorf("go-jose on the new token: kid %s alg %s, %v; want %s %s", kid, alg, err, newKID, tt.newAlg)
			}
			p.mustAccepted(t, tt.tenant, fresh.AccessToken, "fresh")

			// The key set's history records both keys and the retirement.
			created, ret := p.keyHistory(t, tt.tenant)
			createdAlg := map[string]string{}
			for _, c := range created {
				createdAlg[c.KID] = c.Algorithm
			}
			retiredAt := map[string]time.Time{}
			for _, x := range ret {
				retiredAt[x.KID] = x.RemoveAt
			}
			if createdAlg[oldKID] != tt.wantAlg || createdAlg[newKID] != tt.newAlg || !retiredAt[oldKID].Equal(removeAt) {
				t.Errorf("key set history: created %+v, retired %+v", created, ret)
			}
			// Every key is replaced, each once (a change of algorithm to
			// RS256 makes one key of two).
			if tt.rotateTo == "" && (len(created) != 2*wantKeys || len(ret) != wantKeys) {
				t.Errorf("key set history: %d key.created, %d key.retired; want %d and %d", len(created), len(ret), 2*wantKeys, wantKeys)
			}
			for _, c := range created {
				if strings.Contains(string(c.PublicJWK), `"d"`) {
					t.Errorf("key.created of %s carries a private member", c.KID)
				}
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		admin := p.mustTenant(t, root.AccessToken, "refusals", "")
		for _, tc := range []struct {
			name   string
			path   string
			bearer string
			body   any
			want   int
		}{
			{"unsupported algorithm", "/t/refusals/keys/rotate", admin.AccessToken, map[string]any{"alg": "HS256"}, http.StatusBadRequest},
			{"alg none", "/t/refusals/keys/rotate", admin.AccessToken, map[string]any{"alg": "none"}, http.StatusBadRequest},
			{"negative overlap", "/t/refusals/keys/rotate", admin.AccessToken, map[string]any{"overlap_seconds": -1}, http.StatusBadRequest},
			{"overlap over 30 days", "/t/refusals/keys/rotate", admin.AccessToken, map[string]any{"overlap_seconds": 30*24*3600 + 1}, http.StatusBadRequest},
			{"overlap that overflows a duration", "/t/refusals/keys/rotate", admin.AccessToken, map[string]any{"overlap_seconds": int64(1) << 62}, http.StatusBadRequest},
			{"fractional overlap", "/t/refusals/keys/rotate", admin.AccessToken, map[string]any{"overlap_seconds": 1.5}, http.StatusBadRequest},
			{"unknown member", "/t/refusals/keys/rotate", admin.AccessToken, map[string]any{"kid": "mine"}, http.StatusBadRequest},
			{"no token", "/t/refusals/keys/rotate", "", nil, http.StatusUnauthorized},
			{"another tenant's admin", "/t/platform/keys/rotate", admin.AccessToken, nil, http.StatusUnauthorized},
			{"a platform admin in a tenant", "/t/refusals/keys/rotate", root.AccessToken, nil, http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p.Do(t, http.MethodPost, p.Command+tc.path, tc.bearer, "", tc.body, tc.want)
			})
		}
		p.DoCommand(t, http.MethodPost, "/tenants", root.AccessToken,
			map[string]any{"id": "bad-alg", "name": "Bad", "signing_alg": "HS256",
				"admin": map[string]any{"username": acmeAdmin, "password": acmePassword}},
			http.StatusBadRequest)
		if created, ret := p.keyHistory(t, "refusals"); len(created) != 2 || len(ret) != 0 {
			t.Errorf("refused rotations recorded keys: %d created, %d retired", len(created), len(ret))
		}

		// A user without keys:write is forbidden.
		reg := p.DoCommand(t, http.MethodPost, "/t/refusals/users", admin.AccessToken,
			map[string]any{"username": "bob", "password": userPassword}, http.StatusCreated)
		bob := p.Login(t, "refusals", "bob", userPassword, reg.Token())
		p.Do(t, http.MethodPost, p.Command+"/t/refusals/keys/rotate", bob.AccessToken, "", nil, http.StatusForbidden)
	})

	t.Run("an idempotent retry answers the same rotation", func(t *testing.T) {
		t.Parallel()
		admin := p.mustTenant(t, root.AccessToken, "idempotent", "ES256")
		first := p.mustRotate(t, "idempotent", admin.AccessToken, "rotate-once", http.StatusOK)
		again := p.mustRotate(t, "idempotent", admin.AccessToken, "rotate-once", http.StatusOK)
		if again.JSON()["kid"] != first.JSON()["kid"] || again.Token() != first.Token() {
			t.Errorf("retry = %s (%s), first = %s (%s)", again.Body, again.Token(), first.Body, first.Token())
		}
		if created, _ := p.keyHistory(t, "idempotent"); len(created) != 4 {
			t.Errorf("%d key.created after a rotation and its retry, want 4 (the ES256 and RS256 keys, then their successors)", len(created))
		}
	})
}

// mustRotate posts an empty rotation with an Idempotency-Key; the answer
// must carry a JSON body and a Consistency-Token.
func (p *keysPlatform) mustRotate(tb testing.TB, tenant, bearer, key string, want int) authstreamtest.Response {
	tb.Helper()
	a := p.Must(tb, authstreamtest.Request{Method: http.MethodPost, URL: p.Command + "/t/" + tenant + "/keys/rotate",
		Bearer: bearer, Header: map[string]string{"Idempotency-Key": key}}, want)
	var body map[string]any
	if err := json.Unmarshal(a.Body, &body); err != nil || a.Token() == "" {
		tb.Fatalf("rotate %s = %d %s (%v), token %q; want %d", tenant, a.Status, a.Body, err, a.Token(), want)
	}
	return a
}
