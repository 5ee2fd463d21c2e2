// Package pgtest gives each test a fresh, migrated PostgreSQL database of its
// own, copied from a template so that it costs milliseconds, and drops it
// when the test ends. Tests in parallel and test binaries run at once by go
// test share the template safely.
//
// The server comes from AUTHSTREAM_TEST_DATABASE_URL, else DATABASE_URL,
// else postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable; the
// user must be allowed to create databases. When the server cannot be reached the test is skipped,
// or fails when the CI environment variable is set: in CI a missing database
// is a broken setup, never a reason to pass.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authstream/authstream/libs/readmodel"
)

// DefaultURL is the server tests use when no environment variable names one.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// templateLockKey serialises template creation across test binaries
// ("authtmpl" in ASCII).
const templateLockKey int64 = 0x61757468_746d706c

// setupTimeout bounds the one-time template build and each database copy.
const setupTimeout = 60 * time.Second

type server struct {
	adminURL string
	admin    *pgxpool.Pool
	template string
	err      error // the server is unreachable or the template could not be built
}

var (
	once   sync.Once
	shared server
)

// AdminURL returns the URL of the server tests use, from the environment
// (see the package documentation).
func AdminURL() string {
	for _, k := range []string{"AUTHSTREAM_TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return DefaultURL
}

// URL returns the URL of a new database for this test, at the latest
// schema version. The database is dropped (with FORCE, closing what is still
// connected) when the test ends.
func URL(tb testing.TB) string {
	tb.Helper()
	s := mustServer(tb)
	return newDatabase(tb, s, s.template)
}

// EmptyURL returns the URL of a new database without any migration applied,
// for tests of migrations themselves. It is dropped when the test ends.
func EmptyURL(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, mustServer(tb), "")
}

// Pool returns a pool on a new migrated database (see URL), closed when the
// test ends.
func Pool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	pool, err := readmodel.Open(ctx, URL(tb), readmodel.WithMaxConns(4))
	if err != nil {
		tb.Fatalf("pgtest: open test database: %v", err)
	}
	tb.Cleanup(pool.Close) // runs before the drop registered by URL
	return pool
}

func mustServer(tb testing.TB) *server {
	tb.Helper()
	once.Do(func() { shared = setup() })
	if shared.err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("pgtest: %v", shared.err)
		}
		tb.Skipf("pgtest: %v (set CI to make this a failure)", shared.err)
	}
	return &shared
}

func setup() server {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s := server{adminURL: AdminURL()}
	cfg, err := pgxpool.ParseConfig(s.adminURL)
	if err != nil {
		// Validate through readmodel for an error that hides the password.
		_, perr := readmodel.ParseURL(s.adminURL)
		s.err = fmt.Errorf("test database server: %v", perr)
		return s
	}
	cfg.MaxConns = 4
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = readmodel.DefaultConnectTimeout
	}
	s.admin, err = pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = s.admin.Ping(ctx)
	}
	if err != nil {
		s.err = fmt.Errorf("PostgreSQL for tests is unreachable (set AUTHSTREAM_TEST_DATABASE_URL): %w", unreachable(ctx, s.adminURL, err))
		return s
	}
	s.template, err = ensureTemplate(ctx, s.admin, s.adminURL)
	if err != nil {
		s.err = fmt.Errorf("build the template database: %w", err)
	}
	return s
}

// unreachable rephrases a connection failure with readmodel's messages,
// which name host and port but never the password.
func unreachable(ctx context.Context, adminURL string, err error) error {
	pool, oerr := readmodel.Open(ctx, adminURL, readmodel.WithMaxConns(1))
	if oerr != nil {
		return oerr
	}
	pool.Close()
	return err
}

// templateName is derived from the migrations, so a changed migration gets a
// new template rather than reusing a stale one.
func templateName() (string, error) {
	ms, err := readmodel.Migrations()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00", m.Version, m.Name, m.SQL)
	}
	return "authstream_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ensureTemplate builds the template once per server and migration set.
// A template is complete once it is marked IS_TEMPLATE; one left half-built
// by a killed test binary is dropped and rebuilt. The advisory lock makes
// test binaries started together build it once.
func ensureTemplate(ctx context.Context, admin *pgxpool.Pool, adminURL string) (string, error) {
	name, err := templateName()
	if err != nil {
		return "", err
	}
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return "", fmt.Errorf("take the template lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLockKey); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	var isTemplate *bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&isTemplate)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	if isTemplate != nil && *isTemplate {
		return name, nil
	}
	ident := pgx.Identifier{name}.Sanitize()
	if isTemplate != nil { // half-built
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			return "", err
		}
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", err
	}
	tmplURL, err := withDatabase(adminURL, name)
	if err != nil {
		return "", err
	}
	pool, err := readmodel.Open(ctx, tmplURL, readmodel.WithMaxConns(1))
	if err != nil {
		return "", err
	}
	err = readmodel.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return "", err
	}
	// No connections to a template: CREATE DATABASE ... TEMPLATE fails
	// while anyone is connected to it.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return "", err
	}
	return name, nil
}

func newDatabase(tb testing.TB, s *server, template string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := "authstream_t_" + hex.EncodeToString(rnd[:])
	ident := pgx.Identifier{name}.Sanitize()
	stmt := "CREATE DATABASE " + ident
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := createDatabase(ctx, s.admin, stmt); err != nil {
		tb.Fatalf("pgtest: create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop test database %s: %v", name, err)
		}
	})
	u, err := withDatabase(s.adminURL, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return u
}

// createDatabase retries the one transient failure of copying a template:
// "source database is being accessed by other users" (55006), which a
// connection in the middle of closing can cause.
func createDatabase(ctx context.Context, admin *pgxpool.Pool, stmt string) error {
	for attempt := 0; ; attempt++ {
		_, err := admin.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || attempt == 20 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// withDatabase returns adminURL pointing at database name instead.
func withDatabase(adminURL, name string) (string, error) {
	if !strings.Contains(adminURL, "://") { // key=value form: a later key wins
		return adminURL + " dbname=" + name, nil
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", errors.New("test database URL does not parse")
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}
