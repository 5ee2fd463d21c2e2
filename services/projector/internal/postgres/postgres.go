// Package postgres opens the read model database for the service. Its
// errors start with "DATABASE_URL" so an operator knows what to fix; the
// readmodel library has already worded them (server address, cause, never
// the password).
package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/authstream/authstream/libs/readmodel"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Open creates the read model database named in url if it is missing, opens
// a pool on it and applies the migrations.
func Open(ctx context.Context, url, application string) (*pgxpool.Pool, error) {
	if err := readmodel.EnsureDatabase(ctx, url); err != nil {
		return nil, named(err)
	}
	pool, err := readmodel.Open(ctx, url, readmodel.WithApplicationName(application))
	if err != nil {
		return nil, named(err)
	}
	if err := readmodel.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, named(fmt.Errorf("migrate the read model: %w", err))
	}
	return pool, nil
}

// CheckURL returns what is wrong with url as a PostgreSQL connection string,
// worded to follow "DATABASE_URL: ", or "" when it parses.
func CheckURL(url string) string {
	if _, err := readmodel.ParseURL(url); err != nil {
		return strings.TrimPrefix(err.Error(), "DATABASE_URL is ")
	}
	return ""
}

func named(err error) error {
	if strings.HasPrefix(err.Error(), "DATABASE_URL") {
		return err
	}
	return fmt.Errorf("DATABASE_URL: %w", err)
}
