package bulk_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/tools/bench/internal/bulk"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

const password = "seeded user password"

var roles = []bulk.Role{
	{Name: "reader", Permissions: []string{"docs:read"}},
	{Name: "writer", Permissions: []string{"docs:write", "docs:read"}},
}

// userRoles gives users no role, one, or two, so every shape of
// registration is compared.
func userRoles(i int) []string {
	switch i % 3 {
	case 0:
		return nil
	case 1:
		return []string{"reader"}
	}
	return []string{"writer", "reader"}
}

func username(i int) string { return fmt.Sprintf("User-%02d", i) }

const users = 5

func serverURL() string {
	if v := os.Getenv("DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres"
}

// TestSeed_likeTheAPI seeds the same tenants through the command API and
// with the bulk seeder on one platform, and compares what each left in the
// event log and in the projections, with ids, times, hashes and
// ciphertexts set aside; then a bulk-seeded user logs in and checks answer.
func TestSeed_likeTheAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{ServerURL: serverURL(), BcryptCost: 4, Name: "bulktest"})
	if err != nil {
		t.Fatalf("start the platform: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop the platform: %v", err)
		}
	})
	root, err := p.LoginAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rootID, err := platform.TokenSubject(root.AccessToken)
	if err != nil {
		t.Fatal(err)
	}

	apiTenants := []string{"api-0", "api-1"}
	apiIDs := map[string][]string{} // tenant -> user ids, admin first
	for _, id := range apiTenants {
		tn, err := p.CreateTenant(ctx, root.AccessToken, id, "admin", password)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roles {
			if err := p.DefineRole(ctx, &tn, r.Name, r.Permissions); err != nil {
				t.Fatal(err)
			}
		}
		apiIDs[id] = []string{tn.AdminID}
		for i := range users {
			uid, err := p.RegisterUser(ctx, &tn, username(i), password, userRoles(i))
			if err != nil {
				t.Fatal(err)
			}
			apiIDs[id] = append(apiIDs[id], uid)
		}
	}

	nc, err := nats.Connect(p.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pub, err := bulk.NewPublisher(nc)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keystore.New(ctx, pub.JS, p.KEK)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	dataKeys, err := keystore.NewDataKeys(ctx, pub.JS, p.KEK, 1)
	if err != nil {
		t.Fatal(err)
	}
	seeder := &bulk.Seeder{Pub: pub, Keys: keys, KEK: p.KEK, DataKeys: dataKeys, Cost: 4, Creator: events.Actor{Tenant: authz.PlatformTenant, Sub: rootID}, Workers: 2, PublicURL: p.PublicURL}
	res, err := seeder.Seed(ctx, bulk.Plan{
		Tenants: []string{"blk-0", "blk-1"}, Roles: roles, Users: users,
		Username: username, UserRoles: userRoles, AdminUsername: "admin", Password: password, KeepUserIDs: true,
	})
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	if res.Users != 2*users || len(res.Tenants) != 2 {
		t.Fatalf("Seed wrote %d users in %d tenants, want %d in 2", res.Users, len(res.Tenants), 2*users)
	}
	// A tenant: 7 events to create it (two keys, the audit key and the
	// console client), 2 roles, 5 users of 1, 2, 3, 1, 2 events.
	if want := 2 * (7 + 2 + 9); res.Events != want {
		t.Errorf("Seed appended %d events, want %d", res.Events, want)
	}
	if want := res.Events + 2*(1+users); res.Messages != want {
		t.Errorf("Seed published %d messages, want %d (events and one claim a user)", res.Messages, want)
	}
	bulkIDs := map[string][]string{}
	for _, tn := range res.Tenants {
		bulkIDs[tn.ID] = append([]string{tn.AdminID}, tn.UserIDs...)
	}
	if err := p.WaitProjected(ctx, root.AccessToken, time.Minute); err != nil {
		t.Fatal(err)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		t.Fatal(err)
	}
	for i := range apiTenants {
		api, blk := fmt.Sprintf("api-%d", i), fmt.Sprintf("blk-%d", i)
		want := logOf(t, ctx, store, js, dataKeys, api, apiIDs[api], rootID)
		got := logOf(t, ctx, store, js, dataKeys, blk, bulkIDs[blk], rootID)
		if diff := compare(want, got); diff != "" {
			t.Errorf("event log of %s differs from %s (API):\n%s", blk, api, diff)
		}
		want = projectionOf(t, ctx, p.DatabaseURL, api, apiIDs[api])
		got = projectionOf(t, ctx, p.DatabaseURL, blk, bulkIDs[blk])
		if diff := compare(want, got); diff != "" {
			t.Errorf("projection of %s differs from %s (API):\n%s", blk, api, diff)
		}
	}

	// The seeded password logs a seeded user in, and checks answer from
	// the seeded roles.
	if _, err := p.Login(ctx, "blk-0", username(2), password, ""); err != nil {
		t.Errorf("login of a seeded user: %v", err)
	}
	if _, err := p.Login(ctx, "blk-0", username(2), "another password", ""); err == nil {
		t.Error("login of a seeded user with a wrong password succeeded")
	}
	// The checks' data set is seeded with grouped syncs and the platform
	// restarted on it: what was seeded must survive that.
	if err := p.Restart(ctx, "2m"); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	admin, err := p.Login(ctx, "blk-1", "admin", password, "")
	if err != nil {
		t.Fatalf("login of a seeded admin: %v", err)
	}
	for i, want := range map[int]bool{0: false, 1: false, 2: true} {
		a, ok, err := p.Check(ctx, "blk-1", admin.AccessToken, bulkIDs["blk-1"][1+i], "docs:write", "")
		if err != nil || a.Status != http.StatusOK {
			t.Fatalf("check of user %d = %d %s, %v", i, a.Status, a.Body, err)
		}
		if ok != want {
			t.Errorf("check docs:write of user %d (roles %v) = %v, want %v", i, userRoles(i), ok, want)
		}
	}
}

// logOf describes the event log of tenant: every aggregate's events (type,
// schema, version, actor, payload without secrets or random parts, and
// whether the hash chain holds), the headers of their messages, and the
// username claims, with the tenant's name and ids replaced by stable
// labels.
func logOf(t *testing.T, ctx context.Context, store *eventstore.Store, js jetstream.JetStream, keys *keystore.DataKeys, tenant string, ids []string, rootID string) []string {
	t.Helper()
	label := labeler(tenant, ids, rootID)
	var out []string
	aggs := [][2]string{{events.AggregateTenant, tenant}, {events.AggregateKeySet, tenant}}
	for _, r := range roles {
		aggs = append(aggs, [2]string{events.AggregateRole, r.Name})
	}
	for _, id := range ids {
		aggs = append(aggs, [2]string{events.AggregateUser, id})
	}
	stream, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range aggs {
		h, err := store.Load(ctx, tenant, a[0], a[1])
		if err != nil {
			t.Fatalf("load %s %s: %v", a[0], a[1], err)
		}
		envs := h.Envelopes()
		chain := "chain ok"
		if err := events.VerifyChain(envs); err != nil {
			chain = err.Error()
		}
		out = append(out, fmt.Sprintf("%s %s: %d events, %s", a[0], label(a[1]), len(envs), chain))
		for i, env := range envs {
			data, err := events.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			var payload string
			switch d := data.(type) {
			case events.UserRegistered:
				username, err := events.OpenPersonal(ctx, keys, env, "username", d.Username)
				if err != nil {
					t.Fatal(err)
				}
				key, err := events.OpenPersonal(ctx, keys, env, "username_key", d.UsernameKey)
				if err != nil {
					t.Fatal(err)
				}
				payload = fmt.Sprintf("username=%s key=%s credential kid=%s sealed=%v", username, key, d.Credential.KID, len(d.Credential.Ciphertext) > 0)
			case events.KeyCreated:
				payload = fmt.Sprintf("alg=%s jwk=%v active=%v", d.Algorithm, len(d.PublicJWK) > 0, !d.ActiveFrom.IsZero())
			case events.AuditKeyCreated:
				payload = fmt.Sprintf("kid=%v public key=%d bytes active=%v", len(d.KID) == 16, len(d.PublicKey), !d.ActiveFrom.IsZero())
			default:
				payload = string(env.Data)
			}
			// The trace is the causing request's: seeded events had none.
			out = append(out, fmt.Sprintf("  %s schema %d version %d actor %s/%s: %s",
				env.Type, env.Schema, env.Version, label(env.Actor.Tenant), label(env.Actor.Sub), label(payload)))
			raw, err := stream.GetMsg(ctx, h.Events[i].Sequence)
			if err != nil {
				t.Fatal(err)
			}
			// Headers besides the broker's: the atomic batch's own
			// (Nats-Batch-*) say how the API stored a command, and
			// traceparent which request caused it; neither is part of
			// the event contract.
			var names []string
			for k := range raw.Header {
				if !strings.HasPrefix(k, "Nats-Batch-") && k != events.HeaderTrace {
					names = append(names, k)
				}
			}
			slices.Sort(names)
			out = append(out, fmt.Sprintf("    subject %s headers %v type header %s id header is the event id %v",
				label(raw.Subject[:strings.LastIndex(raw.Subject, ".")]), names, raw.Header.Get(events.HeaderType), raw.Header.Get(jetstream.MsgIDHeader) == env.ID))
		}
		if a[0] == events.AggregateUser && len(envs) > 0 {
			d, _ := events.Decode(envs[0])
			st, err := store.ClaimState(ctx, tenant, events.ClaimKindUsernameHMAC, d.(events.UserRegistered).UsernameClaim)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("  username claim held=%v by this user=%v for its registration=%v",
				st.Held, st.Owner == a[1], st.Event == envs[0].ID))
		}
	}
	return out
}

// projectionOf dumps the accounts projection's rows of tenant, with ids
// replaced by labels and times and ciphertexts left out.
func projectionOf(t *testing.T, ctx context.Context, dbURL, tenant string, ids []string) []string {
	t.Helper()
	label := labeler(tenant, ids, "")
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var schema string
	if err := conn.QueryRow(ctx, `SELECT schema_name FROM projection_generations WHERE projection = 'accounts' AND state = 'active'`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	s := pgx.Identifier{schema}.Sanitize()
	queries := []string{
		`SELECT 'tenant ' || tenant_id || ' ' || name || ' ' || status || ' v' || version FROM ` + s + `.tenants WHERE tenant_id = $1`,
		`SELECT 'user ' || user_id || ' ' || username || ' ' || username_key || ' ' || status || ' v' || version ||
		        ' not_before ' || coalesce(not_before::text, 'none') || ' kid ' || (credential->>'kid') ||
		        ' keys ' || (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(credential) k)
		   FROM ` + s + `.users WHERE tenant_id = $1`,
		`SELECT 'role ' || name || ' ' || array_to_string(permissions, ',') || ' "' || description || '" v' || version FROM ` + s + `.roles WHERE tenant_id = $1`,
		`SELECT 'user_role ' || user_id || ' ' || role FROM ` + s + `.user_roles WHERE tenant_id = $1`,
		`SELECT 'client ' || client_id || ' ' || name || ' ' || type || ' v' || version FROM ` + s + `.clients WHERE tenant_id = $1`,
		`SELECT 'client_role ' || client_id || ' ' || role FROM ` + s + `.client_roles WHERE tenant_id = $1`,
	}
	var out []string
	for _, q := range queries {
		rows, err := conn.Query(ctx, q, tenant)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			out = append(out, label(l))
		}
	}
	slices.Sort(out)
	return out
}

// labeler replaces a tenant's name and ids in text by labels that do not
// depend on how the tenant was seeded.
func labeler(tenant string, ids []string, rootID string) func(string) string {
	pairs := []string{tenant, "<tenant>"}
	for i, id := range ids {
		pairs = append(pairs, id, fmt.Sprintf("<user %d>", i))
	}
	if rootID != "" {
		pairs = append(pairs, rootID, "<root>")
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// compare returns the lines that differ, or "".
func compare(want, got []string) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			fmt.Fprintf(&b, "  want %s\n  got  %s\n", w, g)
		}
	}
	return b.String()
}
