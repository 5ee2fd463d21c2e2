package readmodel

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Prepare is what a service does with DATABASE_URL at start: create the
// database if it is missing, open a pool on it named application, and apply
// the migrations. Its errors start with "DATABASE_URL" so an operator knows
// what to fix, and never contain the password.
func Prepare(ctx context.Context, url, application string) (*pgxpool.Pool, error) {
	if err := EnsureDatabase(ctx, url); err != nil {
		return nil, named(err)
	}
	pool, err := Open(ctx, url, WithApplicationName(application))
	if err != nil {
		return nil, named(err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, named(fmt.Errorf("migrate the read model: %w", err))
	}
	return pool, nil
}

// CheckURL returns what is wrong with url as a PostgreSQL connection string,
// worded to follow "DATABASE_URL: ", or "" when it parses.
func CheckURL(url string) string {
	if _, err := ParseURL(url); err != nil {
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
