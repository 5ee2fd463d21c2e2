package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// live is the first generation of the accounts projection, which the
// migrations create active.
var live = postgres.Target{Projection: "accounts", Generation: 1, Schema: "rm_accounts_1"}

// applier feeds events to ApplyBatch as a worker would: grouped by
// partition, with ever-growing stream sequences.
type applier struct {
	pool *pgxpool.Pool
	ap   *postgres.Applier
	seq  uint64
}

// apply applies envs, one transaction per partition touched, and returns
// the results by partition.
func (a *applier) apply(tb testing.TB, envs ...events.Envelope) map[int]postgres.Result {
	tb.Helper()
	byPartition := map[int][]eventstore.Stored{}
	var order []int
	for _, e := range envs {
		a.seq++
		p := events.Partition(e.Tenant)
		if _, ok := byPartition[p]; !ok {
			order = append(order, p)
		}
		byPartition[p] = append(byPartition[p], projectortest.Stored(a.seq, e)...)
	}
	out := map[int]postgres.Result{}
	for _, p := range order {
		out[p] = mustApplyBatch(tb, a.ap, a.pool, live, p, byPartition[p])
	}
	return out
}

func mustApplyBatch(tb testing.TB, ap *postgres.Applier, pool *pgxpool.Pool, t postgres.Target, p int, batch []eventstore.Stored) postgres.Result {
	tb.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback(ctx)
	res, err := ap.ApplyBatch(ctx, tx, t, p, batch, nil)
	if err != nil {
		tb.Fatalf("apply batch: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		tb.Fatal(err)
	}
	return res
}

func queryRow(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) []any {
	tb.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if rows.Err() != nil {
			tb.Fatalf("%s: %v", sql, rows.Err())
		}
		return nil
	}
	v, err := rows.Values()
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestApplyBatch_EventTypes(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	a := &applier{pool: pool, ap: postgres.NewApplier()}

	t.Run("tenant lifecycle", func(t *testing.T) {
		g := projectortest.NewGen(1, "acme")
		created := g.Envelope(t, "acme", events.AggregateTenant, "acme", events.TypeTenantCreated, events.TenantCreated{Name: "Acme"})
		a.apply(t, created)
		got := queryRow(t, pool, `SELECT name, status, version FROM tenants WHERE tenant_id = 'acme'`)
		if fmt.Sprint(got) != "[Acme active 1]" {
			t.Fatalf("after created: %v", got)
		}
		a.apply(t, g.Envelope(t, "acme", events.AggregateTenant, "acme", events.TypeTenantDisabled, events.TenantDisabled{}))
		if got := queryRow(t, pool, `SELECT status, version FROM tenants WHERE tenant_id = 'acme'`); fmt.Sprint(got) != "[disabled 2]" {
			t.Fatalf("after disabled: %v", got)
		}
		a.apply(t, g.Envelope(t, "acme", events.AggregateTenant, "acme", events.TypeTenantEnabled, events.TenantEnabled{}))
		if got := queryRow(t, pool, `SELECT status, version, created_at < updated_at, settings::text FROM tenants WHERE tenant_id = 'acme'`); fmt.Sprint(got) != "[active 3 true {}]" {
			t.Fatalf("after enabled: %v", got)
		}
		off := false
		a.apply(t, g.Envelope(t, "acme", events.AggregateTenant, "acme", events.TypeTenantSettingsChanged, events.TenantSettingsChanged{
			Settings: events.TenantSettings{DisplayName: "Acme Corp", PasswordGrant: &off,
				RateLimits: &events.TenantRateLimits{AccountAttemptsPerMinute: 7}},
		}))
		got = queryRow(t, pool, `SELECT status, version, settings->>'display_name', settings->>'password_grant',
			settings#>>'{rate_limits,account_attempts_per_minute}' FROM tenants WHERE tenant_id = 'acme'`)
		if fmt.Sprint(got) != "[active 4 Acme Corp false 7]" {
			t.Fatalf("after settings changed: %v", got)
		}
		// The document replaces the previous one; a disable in the same
		// batch as a settings change keeps both.
		a.apply(t,
			g.Envelope(t, "acme", events.AggregateTenant, "acme", events.TypeTenantSettingsChanged, events.TenantSettingsChanged{
				Settings: events.TenantSettings{DisplayName: "Acme"},
			}),
			g.Envelope(t, "acme", events.AggregateTenant, "acme", events.TypeTenantDisabled, events.TenantDisabled{}),
		)
		if got := queryRow(t, pool, `SELECT status, version, settings::text FROM tenants WHERE tenant_id = 'acme'`); fmt.Sprint(got) != `[disabled 6 {"display_name": "Acme"}]` {
			t.Fatalf("after settings and disable in one batch: %v", got)
		}
		// A mail template moves the version and nothing else: the
		// templates are read from the log (ADR 0020).
		a.apply(t, g.Envelope(t, "acme", events.AggregateTenant, "acme", events.TypeTenantMailTemplateChanged, events.TenantMailTemplateChanged{
			Purpose: events.LinkResetPassword, Template: events.MailTemplate{Subject: "Acme"},
		}))
		if got := queryRow(t, pool, `SELECT status, version, settings::text FROM tenants WHERE tenant_id = 'acme'`); fmt.Sprint(got) != `[disabled 7 {"display_name": "Acme"}]` {
			t.Fatalf("after a mail template: %v", got)
		}
	})

	// Every tenant starts with its tenant.created: the events of a tenant
	// never created are no events of the platform (see
	// TestApplier_ApplyBatch_Classifies).
	create := func(t *testing.T, g *projectortest.Gen, tenant string) {
		t.Helper()
		a.apply(t, g.Envelope(t, tenant, events.AggregateTenant, tenant, events.TypeTenantCreated, events.TenantCreated{Name: tenant}))
	}

	t.Run("user lifecycle", func(t *testing.T) {
		g := projectortest.NewGen(2, "beta")
		create(t, g, "beta")
		uid := events.NewID()
		cred := g.Sealed()
		reg := g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserRegistered,
			events.UserRegistered{Username: events.LegacyPersonal("Bob"), UsernameKey: events.LegacyPersonal("bob"), Credential: cred})
		a.apply(t, reg)
		got := queryRow(t, pool, `SELECT username, username_key, status, version, not_before IS NULL, credential FROM users WHERE tenant_id = 'beta' AND user_id = $1`, uid)
		wantCred, _ := json.Marshal(cred)
		var gotCred map[string]any
		var wantCredMap map[string]any
		_ = json.Unmarshal(wantCred, &wantCredMap)
		if got == nil {
			t.Fatal("user not projected")
		}
		gotCred, _ = got[5].(map[string]any)
		if fmt.Sprint(got[:5]) != "[Bob bob active 1 true]" || fmt.Sprint(gotCred) != fmt.Sprint(wantCredMap) {
			t.Fatalf("after registered: %v", got)
		}

		changed := g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserPasswordChanged,
			events.UserPasswordChanged{Credential: g.Sealed(), Reset: true})
		a.apply(t, changed)
		var nb time.Time
		var version int
		if err := pool.QueryRow(context.Background(), `SELECT not_before, version FROM users WHERE user_id = $1`, uid).Scan(&nb, &version); err != nil {
			t.Fatal(err)
		}
		if !nb.Equal(changed.OccurredAt.Truncate(time.Microsecond)) || version != 2 {
			t.Fatalf("after password change: not_before %v version %d, want %v 2", nb, version, changed.OccurredAt)
		}

		a.apply(t, g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserDisabled, events.UserDisabled{}))
		if got := queryRow(t, pool, `SELECT status, version, not_before > $2 FROM users WHERE user_id = $1`, uid, nb); fmt.Sprint(got) != "[disabled 3 true]" {
			t.Fatalf("after disabled: %v", got)
		}
		a.apply(t, g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserEnabled, events.UserEnabled{}))
		if got := queryRow(t, pool, `SELECT status, version FROM users WHERE user_id = $1`, uid); fmt.Sprint(got) != "[active 4]" {
			t.Fatalf("after enabled: %v", got)
		}

		a.apply(t,
			g.Envelope(t, "beta", events.AggregateRole, "viewer", events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"users:read"}}),
			g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "viewer"}),
			g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "admin"}),
		)
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM user_roles WHERE tenant_id = 'beta' AND user_id = $1`, uid); n != 2 {
			t.Fatalf("roles assigned: %d, want 2", n)
		}
		perms := allowedPermissions(t, pool, "beta", uid)
		if fmt.Sprint(perms) != "[*:* users:read]" {
			t.Fatalf("effective permissions %v", perms)
		}
		a.apply(t, g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: "admin"}))
		if perms := allowedPermissions(t, pool, "beta", uid); fmt.Sprint(perms) != "[users:read]" {
			t.Fatalf("effective permissions after unassign %v", perms)
		}
		if got := queryRow(t, pool, `SELECT version FROM users WHERE user_id = $1`, uid); fmt.Sprint(got) != "[7]" {
			t.Fatalf("version after assignments: %v", got)
		}

		// A second factor moves the version; its removal also ends the
		// user's sessions (not_before), as a password change does.
		seed := g.Sealed()
		a.apply(t,
			g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserMFAEnrolmentStarted,
				events.UserMFAEnrolmentStarted{Factor: events.FactorTOTP, Secret: seed}),
			g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserMFAEnrolled,
				events.UserMFAEnrolled{Factor: events.FactorTOTP, Secret: &seed, ConfirmedStep: 1}))
		if got := queryRow(t, pool, `SELECT version, not_before = $2 FROM users WHERE user_id = $1`, uid, nb); fmt.Sprint(got) != "[9 false]" {
			t.Fatalf("after enrolment: %v", got)
		}
		removed := g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserMFARemoved, events.UserMFARemoved{Factor: events.FactorTOTP, Reset: true})
		a.apply(t, removed)
		if err := pool.QueryRow(context.Background(), `SELECT not_before, version FROM users WHERE user_id = $1`, uid).Scan(&nb, &version); err != nil {
			t.Fatal(err)
		}
		if !nb.Equal(removed.OccurredAt.Truncate(time.Microsecond)) || version != 10 {
			t.Fatalf("after factor removal: not_before %v version %d, want %v 10", nb, version, removed.OccurredAt)
		}
		// A passkey: its registration moves the version only, its removal
		// ends the sessions too.
		a.apply(t,
			g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserPasskeyRegistrationStarted,
				events.UserPasskeyRegistrationStarted{Ceremony: g.Sealed()}),
			g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserPasskeyRegistered,
				events.UserPasskeyRegistered{CredentialID: "AAAA", PublicKey: "pQECAyYgAQ"}))
		if got := queryRow(t, pool, `SELECT version, not_before = $2 FROM users WHERE user_id = $1`, uid, nb); fmt.Sprint(got) != "[12 true]" {
			t.Fatalf("after a passkey's registration: %v", got)
		}
		pkRemoved := g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserPasskeyRemoved, events.UserPasskeyRemoved{CredentialID: "AAAA"})
		a.apply(t, pkRemoved)
		if err := pool.QueryRow(context.Background(), `SELECT not_before, version FROM users WHERE user_id = $1`, uid).Scan(&nb, &version); err != nil {
			t.Fatal(err)
		}
		if !nb.Equal(pkRemoved.OccurredAt.Truncate(time.Microsecond)) || version != 13 {
			t.Fatalf("after passkey removal: not_before %v version %d, want %v 13", nb, version, pkRemoved.OccurredAt)
		}

		a.apply(t, g.Envelope(t, "beta", events.AggregateUser, uid, events.TypeUserDeleted, events.UserDeleted{}))
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM users WHERE tenant_id = 'beta'`); n != 0 {
			t.Fatalf("users after delete: %d", n)
		}
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM user_roles WHERE tenant_id = 'beta'`); n != 0 {
			t.Fatalf("assignments after delete: %d", n)
		}
		// The username is free again.
		a.apply(t, g.Envelope(t, "beta", events.AggregateUser, events.NewID(), events.TypeUserRegistered,
			events.UserRegistered{Username: events.LegacyPersonal("bob"), UsernameKey: events.LegacyPersonal("bob"), Credential: g.Sealed()}))
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM users WHERE tenant_id = 'beta' AND username_key = 'bob'`); n != 1 {
			t.Fatalf("re-registered users: %d", n)
		}
	})

	t.Run("roles", func(t *testing.T) {
		g := projectortest.NewGen(3, "gamma")
		create(t, g, "gamma")
		uid := events.NewID()
		first := g.Envelope(t, "gamma", events.AggregateRole, "editor", events.TypeRoleDefined,
			events.RoleDefined{Permissions: []string{"users:write", "*", "users:write"}, Description: "Edits"})
		a.apply(t, first,
			g.Envelope(t, "gamma", events.AggregateUser, uid, events.TypeUserRegistered,
				events.UserRegistered{Username: events.LegacyPersonal("Eve"), UsernameKey: events.LegacyPersonal("eve"), Credential: g.Sealed()}),
			g.Envelope(t, "gamma", events.AggregateUser, uid, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "editor"}))
		if got := queryRow(t, pool, `SELECT permissions, description, version FROM roles WHERE tenant_id = 'gamma' AND name = 'editor'`); fmt.Sprint(got) != "[[*:* users:write] Edits 1]" {
			t.Fatalf("defined: %v", got)
		}
		a.apply(t, g.Envelope(t, "gamma", events.AggregateRole, "editor", events.TypeRoleDefined,
			events.RoleDefined{Permissions: []string{"roles:read"}}))
		if got := queryRow(t, pool, `SELECT permissions, description, version, created_at = $1 FROM roles WHERE tenant_id = 'gamma' AND name = 'editor'`,
			first.OccurredAt.Truncate(time.Microsecond)); fmt.Sprint(got) != "[[roles:read]  2 true]" {
			t.Fatalf("redefined: %v", got)
		}
		a.apply(t, g.Envelope(t, "gamma", events.AggregateRole, "editor", events.TypeRoleDeleted, events.RoleDeleted{}))
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM roles WHERE tenant_id = 'gamma'`); n != 0 {
			t.Fatalf("roles after delete: %d", n)
		}
		// The assignment stays with the user; it grants nothing until the
		// role is defined again.
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM user_roles WHERE tenant_id = 'gamma'`); n != 1 {
			t.Fatalf("assignments after role delete: %d", n)
		}
		if perms := allowedPermissions(t, pool, "gamma", uid); len(perms) != 0 {
			t.Fatalf("permissions after role delete: %v", perms)
		}
	})

	t.Run("webhook lifecycle", func(t *testing.T) {
		g := projectortest.NewGen(7, "zeta")
		create(t, g, "zeta")
		id := events.NewID()
		row := func(tb testing.TB) string {
			tb.Helper()
			return fmt.Sprint(queryRow(tb, pool, `SELECT url, event_types, description, paused, previous_secret_expires_at IS NOT NULL, version
				FROM webhooks WHERE tenant_id = 'zeta' AND webhook_id = $1`, id))
		}
		sealed := events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: []byte("x")}
		a.apply(t, g.Envelope(t, "zeta", events.AggregateWebhook, id, events.TypeWebhookRegistered, events.WebhookRegistered{
			Config: events.WebhookConfig{URL: "https://h.example/a", EventTypes: []string{"role.*", "user.registered"}, Description: "CRM"}, Secret: sealed}))
		if got := row(t); got != "[https://h.example/a [role.* user.registered] CRM false false 1]" {
			t.Fatalf("after registered: %s", got)
		}
		a.apply(t,
			g.Envelope(t, "zeta", events.AggregateWebhook, id, events.TypeWebhookUpdated, events.WebhookUpdated{
				Config: events.WebhookConfig{URL: "https://h.example/b", EventTypes: []string{"*"}}}),
			g.Envelope(t, "zeta", events.AggregateWebhook, id, events.TypeWebhookPaused, events.WebhookPaused{}),
			g.Envelope(t, "zeta", events.AggregateWebhook, id, events.TypeWebhookSecretRotated, events.WebhookSecretRotated{
				Secret: sealed, PreviousSecretExpiresAt: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)}),
		)
		if got := row(t); got != "[https://h.example/b [*]  true true 4]" {
			t.Fatalf("after update, pause, rotation: %s", got)
		}
		a.apply(t,
			g.Envelope(t, "zeta", events.AggregateWebhook, id, events.TypeWebhookResumed, events.WebhookResumed{}),
			g.Envelope(t, "zeta", events.AggregateWebhook, id, events.TypeWebhookReplayed, events.WebhookReplayRequested{FromSequence: 1}),
		)
		if got := row(t); got != "[https://h.example/b [*]  false true 6]" {
			t.Fatalf("after resume, replay: %s", got)
		}
		a.apply(t, g.Envelope(t, "zeta", events.AggregateWebhook, id, events.TypeWebhookDeleted, events.WebhookDeleted{}))
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM webhooks WHERE tenant_id = 'zeta'`); n != 0 {
			t.Fatalf("rows of the deleted webhook: %d", n)
		}
	})

	t.Run("client lifecycle", func(t *testing.T) {
		g := projectortest.NewGen(6, "epsilon")
		create(t, g, "epsilon")
		id := events.NewID()
		client := func(tb testing.TB) string {
			tb.Helper()
			return fmt.Sprint(queryRow(tb, pool, `SELECT name, type, redirect_uris, post_logout_redirect_uris, grant_types, scopes,
				id_token_alg, secret_hash, previous_secret_hash, previous_secret_expires_at, version, created_at < updated_at
				FROM clients WHERE tenant_id = 'epsilon' AND client_id = $1`, id))
		}
		cfg := events.ClientConfig{
			Name: `Web, "v1"`, Type: events.ClientConfidential,
			RedirectURIs: []string{"https://app.example/cb?x=1,2", "http://127.0.0.1:8400/callback"}, PostLogoutRedirectURIs: []string{},
			GrantTypes: []string{"authorization_code", "client_credentials"}, Scopes: []string{"openid", "profile"},
			IDTokenSignedResponseAlg: "RS256",
		}
		first, second := g.SecretHash(), g.SecretHash()
		a.apply(t, g.Envelope(t, "epsilon", events.AggregateClient, id, events.TypeClientRegistered,
			events.ClientRegistered{Config: cfg, SecretHash: first}))
		want := `[Web, "v1" confidential [https://app.example/cb?x=1,2 http://127.0.0.1:8400/callback] [] [authorization_code client_credentials] [openid profile] RS256 ` +
			first + ` <nil> <nil> 1 false]`
		if got := client(t); got != want {
			t.Fatalf("after registered:\n got %s\nwant %s", got, want)
		}

		cfg.Name, cfg.RedirectURIs, cfg.PostLogoutRedirectURIs, cfg.IDTokenSignedResponseAlg = "Web 2", []string{"https://app.example/cb2"}, []string{"https://app.example/"}, "EdDSA"
		a.apply(t, g.Envelope(t, "epsilon", events.AggregateClient, id, events.TypeClientUpdated, events.ClientUpdated{Config: cfg}))
		want = `[Web 2 confidential [https://app.example/cb2] [https://app.example/] [authorization_code client_credentials] [openid profile] EdDSA ` +
			first + ` <nil> <nil> 2 true]`
		if got := client(t); got != want {
			t.Fatalf("after updated:\n got %s\nwant %s", got, want)
		}

		a.apply(t,
			g.Envelope(t, "epsilon", events.AggregateRole, "reader", events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"users:read"}}),
			g.Envelope(t, "epsilon", events.AggregateClient, id, events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: "reader"}),
			g.Envelope(t, "epsilon", events.AggregateClient, id, events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: "admin"}),
			g.Envelope(t, "epsilon", events.AggregateClient, id, events.TypeClientRoleUnassigned, events.ClientRoleUnassigned{Role: "admin"}),
		)
		if got := queryRow(t, pool, `SELECT array_agg(role ORDER BY role), (SELECT version FROM clients WHERE client_id = $1)
			FROM client_roles WHERE tenant_id = 'epsilon' AND client_id = $1`, id); fmt.Sprint(got) != "[[reader] 5]" {
			t.Fatalf("roles after assignments: %v", got)
		}

		until := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
		a.apply(t, g.Envelope(t, "epsilon", events.AggregateClient, id, events.TypeClientSecretRotated, events.ClientSecretRotated{
			SecretHash: second, PreviousSecretHash: first, PreviousSecretExpiresAt: until}))
		want = `[Web 2 confidential [https://app.example/cb2] [https://app.example/] [authorization_code client_credentials] [openid profile] EdDSA ` +
			second + ` ` + first + ` ` + until.Local().String() + ` 6 true]`
		if got := client(t); got != want {
			t.Fatalf("after secret rotated:\n got %s\nwant %s", got, want)
		}

		// A public client has no secret; a client registered, changed and
		// deleted in one batch leaves nothing.
		pub, brief := events.NewID(), events.NewID()
		a.apply(t,
			g.Envelope(t, "epsilon", events.AggregateClient, pub, events.TypeClientRegistered, events.ClientRegistered{Config: g.ClientConfig(events.ClientPublic)}),
			g.Envelope(t, "epsilon", events.AggregateClient, brief, events.TypeClientRegistered, events.ClientRegistered{Config: cfg, SecretHash: first}),
			g.Envelope(t, "epsilon", events.AggregateClient, brief, events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: "reader"}),
			g.Envelope(t, "epsilon", events.AggregateClient, brief, events.TypeClientSecretRotated, events.ClientSecretRotated{
				SecretHash: second, PreviousSecretHash: first, PreviousSecretExpiresAt: until}),
			g.Envelope(t, "epsilon", events.AggregateClient, brief, events.TypeClientDeleted, events.ClientDeleted{}),
		)
		if got := queryRow(t, pool, `SELECT type, secret_hash IS NULL, version FROM clients WHERE client_id = $1`, pub); fmt.Sprint(got) != "[public true 1]" {
			t.Fatalf("public client: %v", got)
		}
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM clients WHERE client_id = $1`, brief); n != 0 {
			t.Fatalf("a client deleted in its batch has %d rows", n)
		}

		a.apply(t, g.Envelope(t, "epsilon", events.AggregateClient, id, events.TypeClientDeleted, events.ClientDeleted{}))
		if n := projectortest.Count(t, pool, `SELECT (SELECT count(*) FROM clients WHERE tenant_id = 'epsilon' AND client_id = $1) +
			(SELECT count(*) FROM client_roles WHERE tenant_id = 'epsilon')`, id); n != 0 {
			t.Fatalf("rows of the deleted client: %d", n)
		}
	})

	// What the client aggregate's own history refuses, the projection
	// refuses too: its tenant stops at the event.
	t.Run("client events that cannot be applied", func(t *testing.T) {
		g := projectortest.NewGen(7)
		for i, tt := range []struct {
			name string
			// bad returns the event's client id, type and payload.
			bad func(confidential, public string) (string, string, any)
			// deleted: the client of the event is deleted right after it,
			// in the same batch.
			deleted bool
		}{
			{"registered twice", func(c, _ string) (string, string, any) {
				return c, events.TypeClientRegistered, events.ClientRegistered{Config: g.ClientConfig(events.ClientConfidential), SecretHash: g.SecretHash()}
			}, false},
			{"registered twice, deleted at once", func(c, _ string) (string, string, any) {
				return c, events.TypeClientRegistered, events.ClientRegistered{Config: g.ClientConfig(events.ClientPublic)}
			}, true},
			{"an update of an unknown client", func(string, string) (string, string, any) {
				return events.NewID(), events.TypeClientUpdated, events.ClientUpdated{Config: g.ClientConfig(events.ClientPublic)}
			}, false},
			{"a deletion of an unknown client", func(string, string) (string, string, any) {
				return events.NewID(), events.TypeClientDeleted, events.ClientDeleted{}
			}, false},
			{"a role of an unknown client", func(string, string) (string, string, any) {
				return events.NewID(), events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: "reader"}
			}, false},
			{"an update that changes the type", func(c, _ string) (string, string, any) {
				return c, events.TypeClientUpdated, events.ClientUpdated{Config: g.ClientConfig(events.ClientPublic)}
			}, false},
			{"a secret rotation of a public client", func(_, p string) (string, string, any) {
				return p, events.TypeClientSecretRotated, events.ClientSecretRotated{SecretHash: g.SecretHash(), PreviousSecretExpiresAt: time.Now()}
			}, false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				tenant := fmt.Sprintf("refuse-%d", i)
				create(t, g, tenant)
				conf, pub := events.NewID(), events.NewID()
				// Earlier batch or same batch: the tenant stops at the event
				// either way, with the events before it applied.
				a.apply(t, g.Envelope(t, tenant, events.AggregateClient, conf, events.TypeClientRegistered,
					events.ClientRegistered{Config: g.ClientConfig(events.ClientConfidential), SecretHash: g.SecretHash()}))
				id, typ, data := tt.bad(conf, pub)
				bad := g.Envelope(t, tenant, events.AggregateClient, id, typ, data)
				batch := []events.Envelope{g.Envelope(t, tenant, events.AggregateClient, pub, events.TypeClientRegistered,
					events.ClientRegistered{Config: g.ClientConfig(events.ClientPublic)}), bad}
				if tt.deleted {
					batch = append(batch, g.Envelope(t, tenant, events.AggregateClient, id, events.TypeClientDeleted, events.ClientDeleted{}))
				}
				batch = append(batch, g.Envelope(t, tenant, events.AggregateRole, "later", events.TypeRoleDefined, events.RoleDefined{}))
				res := a.apply(t, batch...)[events.Partition(tenant)]
				if len(res.Quarantined) != 1 || res.Quarantined[0].EventID != bad.ID || res.Applied != 1 || res.Held != len(batch)-2 {
					t.Fatalf("result %+v, want the tenant quarantined at the %s", res, bad.Type)
				}
				t.Log(res.Quarantined[0].Error)
				if n := projectortest.Count(t, pool, `SELECT count(*) FROM clients WHERE tenant_id = $1`, tenant); n != 2 {
					t.Fatalf("%d clients, want the two registered before the event", n)
				}
			})
		}
	})

	t.Run("ignored types advance the checkpoint", func(t *testing.T) {
		g := projectortest.NewGen(4, "delta")
		create(t, g, "delta")
		res := a.apply(t, g.Envelope(t, "delta", events.AggregateKeySet, "delta", events.TypeKeyCreated, events.KeyCreated{
			KID: "k", Algorithm: "EdDSA", PublicJWK: json.RawMessage(`{}`), ActiveFrom: time.Now()}))
		r := res[events.Partition("delta")]
		if r.Applied != 1 || r.To != a.seq || r.Quarantined != nil {
			t.Fatalf("result %+v, want 1 applied up to %d", r, a.seq)
		}
	})
}

// allowedPermissions lists a user's effective permissions from the view.
func allowedPermissions(tb testing.TB, pool *pgxpool.Pool, tenant, user string) []string {
	tb.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT permission FROM user_permissions WHERE tenant_id = $1 AND user_id = $2 ORDER BY permission`, tenant, user)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestApplyBatch_RedeliveryHasNoEffect(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	g := projectortest.NewGen(5, "acme")
	batch := projectortest.Stored(1, g.Many(t, 300)...)
	p := events.Partition("acme")
	ap := postgres.NewApplier()

	first := mustApplyBatch(t, ap, pool, live, p, batch)
	if first.Applied != 300 || first.To != 300 || first.Skipped != 0 {
		t.Fatalf("first delivery: %+v", first)
	}
	before := projectortest.Dump(t, pool, live.Schema)

	again := mustApplyBatch(t, ap, pool, live, p, batch)
	if again.Applied != 0 || again.Skipped != 300 || again.To != 300 {
		t.Fatalf("redelivery: %+v", again)
	}
	// A redelivery overlapping new events applies only the new ones.
	more := append(batch[250:], projectortest.Stored(301, g.Many(t, 20)...)...)
	overlap := mustApplyBatch(t, ap, pool, live, p, more)
	if overlap.Skipped != 50 || overlap.Applied != 20 || overlap.To != 320 {
		t.Fatalf("overlapping redelivery: %+v", overlap)
	}
	projectortest.MustScratch(t, pool, "fresh")
	ref, err := accounts.New("fresh")
	if err != nil {
		t.Fatal(err)
	}
	mustApplyEach(t, pool, ref, append(batch, more[50:]...))
	projectortest.MustEqualDumps(t, projectortest.Dump(t, pool, "fresh"), projectortest.Dump(t, pool, live.Schema))
	if before == projectortest.Dump(t, pool, live.Schema) {
		t.Fatal("the new events changed nothing")
	}
}

// mustApplyEach applies events one at a time, each in its own transaction,
// and returns the indexes of those that could not be applied (they are
// skipped).
func mustApplyEach(tb testing.TB, pool *pgxpool.Pool, tables *accounts.Tables, evs []eventstore.Stored) []int {
	tb.Helper()
	ctx := context.Background()
	var bad []int
	for i := range evs {
		tx, err := pool.Begin(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		_, err = tables.Apply(ctx, tx, evs[i:i+1])
		var evErr *accounts.EventError
		switch {
		case errors.As(err, &evErr):
			bad = append(bad, i)
			_ = tx.Rollback(ctx)
			continue
		case err != nil:
			_ = tx.Rollback(ctx)
			tb.Fatalf("apply event %d: %v", i, err)
		}
		if err := tx.Commit(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	return bad
}

// TestTables_Apply_BatchingIsInvisible checks that folding many events into
// a few statements gives exactly the tables that applying them one by one
// gives, for valid histories and for histories with events the projection
// must refuse.
func TestTables_Apply_BatchingIsInvisible(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	tests := []struct {
		name   string
		seed   uint64
		n      int
		poison bool
	}{
		{"valid history", 11, 1500, false},
		{"history with refused events", 12, 1000, true},
		{"long history with refused events", 13, 3000, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := projectortest.NewGen(tt.seed, "t-a", "t-b", "t-c")
			envs := g.Many(t, tt.n)
			if tt.poison {
				envs = poisonSome(t, g, envs)
			}
			evs := projectortest.Stored(1, envs...)
			one, many := fmt.Sprintf("one_%d", i), fmt.Sprintf("many_%d", i)
			projectortest.MustScratch(t, pool, one)
			projectortest.MustScratch(t, pool, many)
			a, _ := accounts.New(one)
			b, _ := accounts.New(many)
			badOne := mustApplyEach(t, pool, a, evs)
			badMany := projectortest.ApplyChunks(t, pool, b, evs, func() int { return 1 + g.Rng.IntN(min(tt.n, 3000)) })
			if !slices.Equal(badOne, badMany) {
				t.Fatalf("refused events differ: one by one %v, batched %v", badOne, badMany)
			}
			if tt.poison && len(badOne) == 0 {
				t.Fatal("no event was refused")
			}
			if !tt.poison && len(badOne) != 0 {
				t.Fatalf("valid events refused: %v", badOne)
			}
			projectortest.MustEqualDumps(t, projectortest.Dump(t, pool, one), projectortest.Dump(t, pool, many))
		})
	}
}

// poisonSome mixes events the projection must refuse into a history:
// duplicates, changes of users that were deleted or never existed, taken
// usernames (also by users deleted right after, or whose holder is),
// erasures of earlier users, unknown types and
// schemas, bad permissions, changes of clients that do not exist or of
// another type, clients registered twice (also deleted right after).
func poisonSome(tb testing.TB, g *projectortest.Gen, envs []events.Envelope) []events.Envelope {
	tb.Helper()
	var out []events.Envelope
	for i, e := range envs {
		out = append(out, e)
		if g.Rng.IntN(40) != 0 {
			continue
		}
		switch g.Rng.IntN(14) {
		case 0: // the same registration again (another event id)
			if e.Type == events.TypeUserRegistered {
				d := e
				d.ID = events.NewID()
				out = append(out, d)
			}
		case 1: // a change of a user that does not exist
			out = append(out, g.Envelope(tb, e.Tenant, events.AggregateUser, events.NewID(), events.TypeUserDisabled, events.UserDisabled{}))
		case 2: // a username taken by an earlier user
			for _, prev := range slices.Backward(envs[:i]) {
				if prev.Type == events.TypeUserRegistered && prev.Tenant == e.Tenant {
					var r events.UserRegistered
					_ = json.Unmarshal(prev.Data, &r)
					out = append(out, g.Envelope(tb, e.Tenant, events.AggregateUser, events.NewID(), events.TypeUserRegistered,
						events.UserRegistered{Username: r.Username, UsernameKey: r.UsernameKey, Credential: g.Sealed()}))
					break
				}
			}
		case 3: // an unknown type
			u := e
			u.ID, u.Type, u.Data = events.NewID(), "user.renamed", json.RawMessage(`{"username":"x"}`)
			u.Aggregate, u.AggregateID = events.AggregateUser, events.NewID()
			g.ChainEnv(tb, &u)
			out = append(out, u)
		case 4: // a schema from the future
			u := e
			u.ID, u.Schema = events.NewID(), 99
			g.ChainEnv(tb, &u)
			out = append(out, u)
		case 5: // a permission that does not parse
			out = append(out, g.Envelope(tb, e.Tenant, events.AggregateRole, "broken", events.TypeRoleDefined,
				events.RoleDefined{Permissions: []string{"Not A Permission"}}))
		case 6: // the same registration again, deleted at once
			if e.Type == events.TypeUserRegistered {
				var r events.UserRegistered
				_ = json.Unmarshal(e.Data, &r)
				d := e
				d.ID = events.NewID()
				out = append(out, d, g.Envelope(tb, e.Tenant, events.AggregateUser, e.AggregateID, events.TypeUserDeleted,
					events.UserDeleted{}))
			}
		case 7: // a username taken by an earlier user, by a user deleted at once
			for _, prev := range slices.Backward(envs[:i]) {
				if prev.Type == events.TypeUserRegistered && prev.Tenant == e.Tenant {
					var r events.UserRegistered
					_ = json.Unmarshal(prev.Data, &r)
					id := events.NewID()
					out = append(out,
						g.Envelope(tb, e.Tenant, events.AggregateUser, id, events.TypeUserRegistered,
							events.UserRegistered{Username: r.Username, UsernameKey: r.UsernameKey, Credential: g.Sealed()}),
						g.Envelope(tb, e.Tenant, events.AggregateUser, id, events.TypeUserDeleted,
							events.UserDeleted{}))
					break
				}
			}
		case 8: // a change of a client that does not exist
			out = append(out, g.Envelope(tb, e.Tenant, events.AggregateClient, events.NewID(), events.TypeClientRoleAssigned,
				events.ClientRoleAssigned{Role: "viewer"}))
		case 9: // the same registration again, deleted at once
			if e.Type == events.TypeClientRegistered {
				d := e
				d.ID = events.NewID()
				out = append(out, d, g.Envelope(tb, e.Tenant, events.AggregateClient, e.AggregateID, events.TypeClientDeleted, events.ClientDeleted{}))
			}
		case 12: // a username taken by an earlier user, whose holder is deleted right after
			for _, prev := range slices.Backward(envs[:i]) {
				if prev.Type == events.TypeUserRegistered && prev.Tenant == e.Tenant {
					var r events.UserRegistered
					_ = json.Unmarshal(prev.Data, &r)
					out = append(out,
						g.Envelope(tb, e.Tenant, events.AggregateUser, events.NewID(), events.TypeUserRegistered,
							events.UserRegistered{Username: r.Username, UsernameKey: r.UsernameKey, Credential: g.Sealed()}),
						g.Envelope(tb, e.Tenant, events.AggregateUser, prev.AggregateID, events.TypeUserDeleted, events.UserDeleted{}))
					break
				}
			}
		case 13: // an earlier user erased (deleted before or not): its later events are refused
			for _, prev := range slices.Backward(envs[:i]) {
				if prev.Type == events.TypeUserRegistered && prev.Tenant == e.Tenant {
					out = append(out, g.Envelope(tb, e.Tenant, events.AggregateUser, prev.AggregateID, events.TypeUserErased, events.UserErased{}))
					break
				}
			}
		case 10, 11: // an update to the other type, a secret rotation of a public client
			if e.Aggregate == events.AggregateClient && e.Type != events.TypeClientDeleted {
				for _, prev := range slices.Backward(out) {
					if prev.Type == events.TypeClientRegistered && prev.AggregateID == e.AggregateID {
						var r events.ClientRegistered
						_ = json.Unmarshal(prev.Data, &r)
						other := events.ClientPublic
						if r.Config.Type == other {
							other = events.ClientConfidential
							out = append(out, g.Envelope(tb, e.Tenant, events.AggregateClient, e.AggregateID, events.TypeClientSecretRotated,
								events.ClientSecretRotated{SecretHash: g.SecretHash(), PreviousSecretExpiresAt: e.OccurredAt}))
						}
						out = append(out, g.Envelope(tb, e.Tenant, events.AggregateClient, e.AggregateID, events.TypeClientUpdated,
							events.ClientUpdated{Config: g.ClientConfig(other)}))
						break
					}
				}
			}
		}
	}
	return out
}

// TestTables_Apply_AssignmentNeedsItsUser: user_roles has no foreign key
// to users; a role assigned to a user that does not exist is refused all
// the same (the assignment moves the user's version, which needs the
// row), whether the user never existed or a delete of the same batch took
// it, and a delete takes the user's assignments with it.
func TestTables_Apply_AssignmentNeedsItsUser(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	projectortest.MustScratch(t, pool, "assignees")
	tables, err := accounts.New("assignees")
	if err != nil {
		t.Fatal(err)
	}
	g := projectortest.NewGen(5, "delta")
	ann, bob := events.NewID(), events.NewID()
	register := func(id, name string) events.Envelope {
		return g.Envelope(t, "delta", events.AggregateUser, id, events.TypeUserRegistered,
			events.UserRegistered{Username: events.LegacyPersonal(name), UsernameKey: events.LegacyPersonal(name), Credential: g.Sealed()})
	}
	assign := func(id string) events.Envelope {
		return g.Envelope(t, "delta", events.AggregateUser, id, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "editor"})
	}
	created := g.Envelope(t, "delta", events.AggregateTenant, "delta", events.TypeTenantCreated, events.TenantCreated{Name: "Delta"})
	evs := projectortest.Stored(1, created, register(ann, "ann"), assign(ann), register(bob, "bob"), assign(bob),
		assign(events.NewID()),
		g.Envelope(t, "delta", events.AggregateUser, ann, events.TypeUserDeleted, events.UserDeleted{}))
	if bad := mustApplyEach(t, pool, tables, evs[:5]); len(bad) != 0 {
		t.Fatalf("valid events refused: %v", bad)
	}
	// One batch: an assignment to a user that never existed, then a
	// delete: the first is refused, the events before it applied.
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	n, err := tables.Apply(context.Background(), tx, evs[5:])
	var evErr *accounts.EventError
	if !errors.As(err, &evErr) || n != 0 || evErr.Index != 0 {
		t.Fatalf("assignment to a missing user: applied %d, err %v", n, err)
	}
	if n, err := tables.Apply(context.Background(), tx, evs[6:]); err != nil || n != 1 {
		t.Fatalf("delete: applied %d, err %v", n, err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := projectortest.Count(t, pool, `SELECT count(*) FROM assignees.user_roles WHERE user_id = $1`, ann); got != 0 {
		t.Fatalf("assignments of the deleted user: %d", got)
	}
	if got := projectortest.Count(t, pool, `SELECT count(*) FROM assignees.user_roles WHERE user_id = $1`, bob); got != 1 {
		t.Fatalf("assignments of the other user: %d", got)
	}
	// A delete and an assignment of the same user in one batch: the
	// assignment finds no user.
	again := projectortest.Stored(8, assign(bob), g.Envelope(t, "delta", events.AggregateUser, bob, events.TypeUserDeleted, events.UserDeleted{}), assign(bob))
	tx2, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback(context.Background())
	if n, err := tables.Apply(context.Background(), tx2, again); !errors.As(err, &evErr) || n != 2 {
		t.Fatalf("assignment after the delete in one batch: applied %d, err %v", n, err)
	}
}
