package readmodel_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMigrations(t *testing.T) {
	t.Parallel()
	ms, err := readmodel.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 || ms[0].Name != "0001_projection_state.sql" {
		t.Fatalf("migrations = %+v", ms)
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Errorf("%s not after %s", m.Name, ms[i-1].Name)
		}
	}
	if readmodel.LatestVersion() != ms[len(ms)-1].Version {
		t.Errorf("LatestVersion = %d", readmodel.LatestVersion())
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()

	t.Run("fresh database then again", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := mustOpen(t, pgtest.EmptyURL(t))
		if v, err := readmodel.CurrentVersion(ctx, pool); err != nil || v != 0 {
			t.Fatalf("CurrentVersion before = %d, %v", v, err)
		}
		for i := range 2 {
			if err := readmodel.Migrate(ctx, pool); err != nil {
				t.Fatalf("Migrate #%d: %v", i+1, err)
			}
		}
		if v, err := readmodel.CurrentVersion(ctx, pool); err != nil || v != readmodel.LatestVersion() {
			t.Fatalf("CurrentVersion = %d, %v; want %d", v, err, readmodel.LatestVersion())
		}
		var rows int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&rows); err != nil || rows != len(mustMigrations(t)) {
			t.Errorf("schema_migrations rows = %d, %v", rows, err)
		}
		// The bookkeeping tables exist with their keys.
		if _, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (projection, partition, seq) VALUES ('migrate-test', 3, 42)`); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO projection_tenant_quarantine (projection, tenant, partition, seq, subject, event_id, event_type, error)
			VALUES ('migrate-test', 'acme', 3, 43, 'auth.evt.acme.user.u1.3', 'e1', 'user.registered', 'boom')`); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO projection_skipped_messages (projection, seq, partition, subject, tenant, event_id, event_type, reason, error)
			VALUES ('migrate-test', 44, 3, 'auth.evt.acme.user.u2.3', 'acme', '', '', 'undecodable', 'not json')`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("partition quarantine of an older release", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := mustOpen(t, pgtest.EmptyURL(t))
		// The database of the release before per-tenant quarantine, with a
		// partition stopped at sequence 43 (its checkpoint at 42).
		mustOlderRelease(t, pool, 2, `UPDATE projection_checkpoints SET seq = 42 WHERE projection = 'accounts@1' AND partition = 3;
			INSERT INTO projection_quarantine (projection, partition, seq, subject, event_id, event_type, error)
			VALUES ('accounts@1', 3, 43, 'auth.evt.acme.user.u1.3', '', '', 'invalid event: envelope member id is missing')`)
		if err := readmodel.Migrate(ctx, pool); err != nil {
			t.Fatal(err)
		}
		// The partition goes on from its checkpoint: its worker meets the
		// message again first and records it under the new rules.
		var seq int
		var table *string
		if err := pool.QueryRow(ctx, `SELECT c.seq, to_regclass('projection_quarantine')::text FROM projection_checkpoints c
			WHERE c.projection = 'accounts@1' AND c.partition = 3`).Scan(&seq, &table); err != nil {
			t.Fatal(err)
		}
		if seq != 42 || table != nil {
			t.Fatalf("after the migration: checkpoint %d, old table %v; want 42 and none", seq, table)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM projection_tenant_quarantine) + (SELECT count(*) FROM projection_skipped_messages)`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows after the migration: %d, %v", n, err)
		}
	})

	t.Run("client tables in the generations of an older release", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := mustOpen(t, pgtest.EmptyURL(t))
		// The database of the release before the client tables, with its
		// active generation and a rebuild building the next one.
		mustOlderRelease(t, pool, 4, `SELECT readmodel_accounts_new_generation()`)
		if err := readmodel.Migrate(ctx, pool); err != nil {
			t.Fatal(err)
		}
		// Both generations have the tables, a generation made from now on
		// too, and the views of the active one show them.
		if _, err := pool.Exec(ctx, `SELECT readmodel_accounts_create_tables('rm_accounts_scratch')`); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{
			"rm_accounts_1.clients", "rm_accounts_1.client_roles", "rm_accounts_2.clients", "rm_accounts_2.client_roles",
			"rm_accounts_scratch.clients", "rm_accounts_scratch.client_roles", "rm_accounts_scratch.users", "clients", "client_roles",
		} {
			var found *string
			if err := pool.QueryRow(ctx, `SELECT to_regclass($1)::text`, table).Scan(&found); err != nil || found == nil {
				t.Errorf("%s after the migration: %v, %v", table, found, err)
			}
		}
		if _, err := pool.Exec(ctx, `INSERT INTO rm_accounts_1.clients (tenant_id, client_id, name, type, redirect_uris,
				post_logout_redirect_uris, grant_types, scopes, id_token_alg, version, created_at, updated_at)
			VALUES ('acme', 'c1', 'Web', 'public', '{}', '{}', '{authorization_code}', '{openid}', 'RS256', 1, now(), now());
			INSERT INTO rm_accounts_1.client_roles VALUES ('acme', 'c1', 'reader')`); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM clients JOIN client_roles USING (tenant_id, client_id)`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows through the views: %d, %v", n, err)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := mustOpen(t, pgtest.EmptyURL(t))
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = readmodel.Migrate(ctx, pool) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
		if v, err := readmodel.CurrentVersion(ctx, pool); err != nil || v != readmodel.LatestVersion() {
			t.Fatalf("CurrentVersion = %d, %v", v, err)
		}
	})

	t.Run("refuses a newer schema", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := pgtest.Pool(t)
		newer := readmodel.LatestVersion() + 1
		if _, err := pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future.sql')", newer); err != nil {
			t.Fatal(err)
		}
		err := readmodel.Migrate(ctx, pool)
		if !errors.Is(err, readmodel.ErrSchemaTooNew) {
			t.Fatalf("Migrate = %v, want ErrSchemaTooNew", err)
		}
		t.Log(err)
	})
}

func TestPgtest_ParallelDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	for i := range 4 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := pgtest.Pool(t)
			if v, err := readmodel.CurrentVersion(ctx, pool); err != nil || v != readmodel.LatestVersion() {
				t.Fatalf("CurrentVersion = %d, %v", v, err)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (projection, partition, seq) VALUES ('pgtest', 0, $1)`, i); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM projection_checkpoints WHERE projection = 'pgtest'").Scan(&n); err != nil || n != 1 {
				t.Errorf("rows = %d, %v; another test's rows are visible", n, err)
			}
		})
	}
}

// mustOlderRelease makes pool's database that of a release that knew the
// first n migrations, then runs sql on it.
func mustOlderRelease(tb testing.TB, pool *pgxpool.Pool, n int, sql string) {
	tb.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		tb.Fatal(err)
	}
	for _, m := range mustMigrations(tb)[:n] {
		if _, err := pool.Exec(ctx, m.SQL); err != nil {
			tb.Fatalf("%s: %v", m.Name, err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, sql); err != nil {
		tb.Fatal(err)
	}
}

func mustMigrations(tb testing.TB) []readmodel.Migration {
	tb.Helper()
	ms, err := readmodel.Migrations()
	if err != nil {
		tb.Fatal(err)
	}
	return ms
}
