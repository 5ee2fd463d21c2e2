package readmodel

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey is the session advisory lock that serialises Migrate
// across processes ("authmigr" in ASCII, so it is recognisable in
// pg_locks).
const migrationLockKey int64 = 0x61757468_6d696772

// Migration is one embedded schema change: migrations/<Version>_<name>.sql.
type Migration struct {
	Version int
	Name    string // the file name, e.g. "0001_projection_state.sql"
	SQL     string
}

// Migrations returns the embedded migrations in version order. It fails when
// a file name has no numeric prefix or two files share a version: both are
// mistakes of a developer adding a migration, caught by this package's
// tests.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number and '_', e.g. 0002_users.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].Name, ms[i].Name, ms[i].Version)
		}
	}
	return ms, nil
}

// LatestVersion is the highest migration version this binary knows: the
// version a database has after Migrate.
func LatestVersion() int {
	ms, err := Migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// ErrSchemaTooNew is returned (wrapped) by Migrate when the database has a
// migration applied that this binary does not know: a newer release ran
// against it, and an older binary must not write to a schema it does not
// understand.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Migrate applies the embedded migrations the database lacks, in version
// order, each in its own transaction together with its row in
// schema_migrations. Processes migrating the same database at once are
// serialised by a session advisory lock; the later ones find nothing to do.
// It returns an error wrapping ErrSchemaTooNew, before changing anything,
// when the database is at a version newer than LatestVersion.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return connectError(&pool.Config().ConnConfig.Config, err)
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// The lock belongs to the session: if it cannot be released (ctx
		// ended mid-query), close the connection instead of returning it
		// to the pool still holding the lock.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", migrationLockKey); err != nil {
			_ = conn.Conn().Close(uctx)
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    int PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, _ := conn.Query(ctx, "SELECT version FROM schema_migrations")
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].Version
	}
	for _, v := range versions {
		applied[v] = true
		if v > latest {
			return fmt.Errorf("%w: the database is at version %d, this binary knows up to %d; run a newer release", ErrSchemaTooNew, slices.Max(versions), latest)
		}
	}

	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if err := apply(ctx, conn.Conn(), m); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, conn *pgx.Conn, m Migration) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
		return err
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Position > 0 {
			line := 1 + strings.Count(m.SQL[:min(int(pgErr.Position)-1, len(m.SQL))], "\n")
			return fmt.Errorf("migration %s failed at line %d: %w", m.Name, line, err)
		}
		return fmt.Errorf("migration %s failed: %w", m.Name, err)
	}
	return nil
}

// CurrentVersion returns the highest migration version applied to the
// database, 0 for a database never migrated.
func CurrentVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var v int
	err := pool.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM schema_migrations").Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUndefinedTable {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
