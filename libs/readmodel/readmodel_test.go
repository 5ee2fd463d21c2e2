package readmodel_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
)

func mustOpen(tb testing.TB, dbURL string) *pgxpool.Pool {
	tb.Helper()
	pool, err := readmodel.Open(context.Background(), dbURL)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A name pgtest would create, dropped through its cleanup: EmptyURL's
	// database is dropped first so EnsureDatabase has to create it.
	dbURL := pgtest.EmptyURL(t)
	admin := mustOpen(t, pgtest.AdminURL())
	name := strings.TrimPrefix(mustParse(t, dbURL).Path, "/")
	if _, err := admin.Exec(ctx, `DROP DATABASE "`+name+`" WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}

	for i := range 2 { // creates, then finds it
		if err := readmodel.EnsureDatabase(ctx, dbURL); err != nil {
			t.Fatalf("EnsureDatabase #%d: %v", i+1, err)
		}
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 1 {
			t.Fatalf("after EnsureDatabase #%d: %d databases named %s (%v)", i+1, n, name, err)
		}
	}
}

func TestEnsureDatabase_Concurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.EmptyURL(t)
	admin := mustOpen(t, pgtest.AdminURL())
	name := strings.TrimPrefix(mustParse(t, dbURL).Path, "/")
	if _, err := admin.Exec(ctx, `DROP DATABASE "`+name+`" WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = readmodel.EnsureDatabase(ctx, dbURL) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent EnsureDatabase: %v", err)
	}
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	const password = "s3cretPW"
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{name: "empty", url: "", wantErr: "DATABASE_URL is not a valid PostgreSQL URL: it is empty"},
		{name: "bad port", url: "postgres://app:" + password + "@localhost:54x2/auth",
			wantErr: "DATABASE_URL is not a valid PostgreSQL URL"},
		{name: "bad escape", url: "postgres://app:" + password + "%zz@localhost:5432/auth",
			wantErr: "DATABASE_URL is not a valid PostgreSQL URL: invalid percent-encoding"},
		{name: "wrong scheme", url: "mysql://app:" + password + "@localhost/auth",
			wantErr: "DATABASE_URL is not a valid PostgreSQL URL: the scheme must be postgres://"},
		{name: "not a URL", url: "app:" + password + "@localhost",
			wantErr: "DATABASE_URL is not a valid PostgreSQL URL"},
		{name: "connection refused", url: "postgres://app:" + password + "@127.0.0.1:1/auth",
			wantErr: "cannot reach PostgreSQL at 127.0.0.1:1: connection refused"},
		{name: "unknown host", url: "postgres://app:" + password + "@no-such-host.invalid:5432/auth?connect_timeout=5",
			wantErr: "cannot reach PostgreSQL at no-such-host.invalid:5432: unknown host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for fn, err := range map[string]error{
				"EnsureDatabase": readmodel.EnsureDatabase(ctx, tt.url),
				"Open":           openErr(ctx, tt.url),
			} {
				if err == nil {
					t.Fatalf("%s(%q) succeeded", fn, tt.url)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("%s error = %q, want it to contain %q", fn, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), password) {
					t.Errorf("%s error leaks the password: %q", fn, err)
				}
			}
		})
	}
}

func TestEnsureDatabase_NoDatabaseName(t *testing.T) {
	t.Parallel()
	err := readmodel.EnsureDatabase(context.Background(), "postgres://app@127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "names no database") {
		t.Errorf("error = %v", err)
	}
}

func TestOpen_Options(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	if _, err := readmodel.Open(context.Background(), dbURL, readmodel.WithMaxConns(0)); err == nil {
		t.Error("WithMaxConns(0) accepted")
	}
	pool, err := readmodel.Open(context.Background(), dbURL, readmodel.WithMaxConns(3), readmodel.WithMinConns(1), readmodel.WithApplicationName("projector"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns = %d", got)
	}
	var app string
	if err := pool.QueryRow(context.Background(), "SELECT current_setting('application_name')").Scan(&app); err != nil || app != "projector" {
		t.Errorf("application_name = %q (%v)", app, err)
	}
}

func openErr(ctx context.Context, dbURL string) error {
	pool, err := readmodel.Open(ctx, dbURL)
	if err == nil {
		pool.Close()
	}
	return err
}

func mustParse(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}
