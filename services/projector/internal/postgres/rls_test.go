package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
)

func TestReadModel_RowLevelSecurity(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	a := &applier{pool: pool, ap: postgres.NewApplier()}
	g := projectortest.NewGen(71, "acme", "beta")
	a.apply(t, g.Many(t, 200)...)
	ctx := context.Background()

	visible := func(tenant string) map[string]int {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE authstream_query`); err != nil {
			t.Fatal(err)
		}
		if tenant != "" {
			if _, err := tx.Exec(ctx, `SELECT set_config('authstream.tenant', $1, true)`, tenant); err != nil {
				t.Fatal(err)
			}
		}
		out := map[string]int{}
		for _, table := range []string{"tenants", "users", "roles", "user_roles", "user_permissions", "clients", "client_roles"} {
			rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT DISTINCT tenant_id FROM %s`, table))
			if err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				out[table+":"+id]++
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
		}
		return out
	}
	for _, tenant := range []string{"acme", "beta"} {
		for k := range visible(tenant) {
			if k[len(k)-len(tenant):] != tenant {
				t.Fatalf("as %s the query role sees %s", tenant, k)
			}
		}
	}
	if got := visible(""); len(got) != 0 {
		t.Fatalf("without a tenant the query role sees %v", got)
	}
	// The role reads no bookkeeping but positions.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE authstream_query`); err != nil {
		t.Fatal(err)
	}
	if n := 0; tx.QueryRow(ctx, `SELECT count(*) FROM projection_positions`).Scan(&n) != nil || n != events.Partitions {
		t.Fatalf("positions visible to the query role: %d", n)
	}
}
