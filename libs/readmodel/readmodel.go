// Package readmodel owns the PostgreSQL read schema that the projector
// writes and the query service reads: creating the database, opening a pool,
// and applying the embedded migrations. Errors name the server and the user
// but never the password.
package readmodel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultConnectTimeout bounds each connection attempt when the URL sets no
// connect_timeout, so an unreachable server fails fast with a clear error.
const DefaultConnectTimeout = 5 * time.Second

// PostgreSQL error codes this package acts on.
const (
	codeDuplicateDatabase   = "42P04"
	codeUniqueViolation     = "23505"
	codeInvalidCatalogName  = "3D000"
	codeInvalidPassword     = "28P01"
	codeInvalidAuthSpec     = "28000"
	codeInsufficientPrivs   = "42501"
	codeUndefinedTable      = "42P01"
	codeCannotConnectNow    = "57P03"
	codeTooManyConnections  = "53300"
	maintenanceDatabase     = "postgres"
	fallbackMaintenanceBase = "template1"
)

// ParseURL parses a PostgreSQL URL (or key=value connection string). Its
// error is always "DATABASE_URL is not a valid PostgreSQL URL" followed by a
// hint that never repeats any part of the input, which may hold a password.
func ParseURL(dbURL string) (*pgx.ConnConfig, error) {
	if strings.TrimSpace(dbURL) == "" {
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL URL: it is empty")
	}
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %s", parseHint(dbURL))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	return cfg, nil
}

// parseHint says what is likely wrong with a connection string that did not
// parse, from fixed phrases only.
func parseHint(s string) string {
	if !strings.Contains(s, "://") {
		return "expected postgres://user:password@host:port/database"
	}
	scheme, _, _ := strings.Cut(s, "://")
	if scheme != "postgres" && scheme != "postgresql" {
		return "the scheme must be postgres:// or postgresql://"
	}
	if _, err := url.Parse(s); err != nil {
		var esc url.EscapeError
		if errors.As(err, &esc) || strings.Contains(err.Error(), "invalid URL escape") {
			return "invalid percent-encoding (percent-encode special characters in the user name and password)"
		}
		if strings.Contains(err.Error(), "invalid port") {
			return "invalid port"
		}
		if strings.Contains(err.Error(), "invalid userinfo") {
			return "invalid user name or password (percent-encode special characters)"
		}
		return "malformed URL (percent-encode special characters in the user name and password)"
	}
	return "invalid settings (check the host, port and query parameters)"
}

// where names the server of cfg as host:port for messages.
func where(cfg *pgconn.Config) string {
	if strings.HasPrefix(cfg.Host, "/") {
		return fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// connectError explains a failure to connect to or talk with the server of
// cfg. The result keeps err in its chain for errors.Is/As, and its text has
// the password masked even if a driver message ever held it.
func connectError(cfg *pgconn.Config, err error) error {
	at := where(cfg)
	var msg string
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == codeInvalidPassword || pgErr.Code == codeInvalidAuthSpec):
		msg = fmt.Sprintf("PostgreSQL at %s rejected user %q: authentication failed (check the user name and password)", at, cfg.User)
	case errors.As(err, &pgErr) && pgErr.Code == codeInvalidCatalogName:
		msg = fmt.Sprintf("database %q does not exist on PostgreSQL at %s", cfg.Database, at)
	case errors.As(err, &pgErr) && (pgErr.Code == codeCannotConnectNow || pgErr.Code == codeTooManyConnections):
		msg = fmt.Sprintf("PostgreSQL at %s refuses connections for now: %s", at, pgErr.Message)
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("cannot reach PostgreSQL at %s: connection refused", at)
	case isDNSError(err):
		msg = fmt.Sprintf("cannot reach PostgreSQL at %s: unknown host", at)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		msg = fmt.Sprintf("cannot reach PostgreSQL at %s: timed out", at)
	case errors.Is(err, context.Canceled):
		msg = fmt.Sprintf("connecting to PostgreSQL at %s: canceled", at)
	case errors.As(err, &pgErr):
		msg = fmt.Sprintf("PostgreSQL at %s: %v", at, err)
	default:
		msg = fmt.Sprintf("cannot connect to PostgreSQL at %s as %q: %v", at, cfg.User, err)
	}
	return &redactedError{msg: redact(msg, cfg.Password), err: err}
}

func isDNSError(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// redactedError shows a message with the password masked and keeps the
// cause for errors.Is/As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(s, password string) string {
	if password == "" {
		return s
	}
	s = strings.ReplaceAll(s, password, "xxxxx")
	if esc := url.QueryEscape(password); esc != password {
		s = strings.ReplaceAll(s, esc, "xxxxx")
	}
	return s
}

// EnsureDatabase creates the database named by dbURL when it does not exist,
// connecting with the same credentials to the server's maintenance database
// ("postgres", or "template1" where that is missing). Concurrent callers are
// safe: a database created meanwhile by another is success. Errors say what
// to fix ("cannot reach PostgreSQL at 127.0.0.1:5432: connection refused",
// authentication failure, missing CREATEDB privilege) and never hold the
// password.
func EnsureDatabase(ctx context.Context, dbURL string) error {
	cfg, err := ParseURL(dbURL)
	if err != nil {
		return err
	}
	name := cfg.Database
	if name == "" {
		return errors.New("DATABASE_URL names no database: add one as the path, e.g. postgres://user@host:5432/authstream")
	}
	if name == maintenanceDatabase {
		return nil
	}
	conn, err := connectMaintenance(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return connectError(&cfg.Config, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr) && (pgErr.Code == codeDuplicateDatabase || pgErr.Code == codeUniqueViolation):
		// Another process created it first; a creation racing ours
		// surfaces as a unique violation on pg_database.
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == codeInsufficientPrivs:
		return fmt.Errorf("user %q may not create database %q on PostgreSQL at %s: create it or grant CREATEDB", cfg.User, name, where(&cfg.Config))
	}
	return fmt.Errorf("create database %q: %w", name, connectError(&cfg.Config, err))
}

func connectMaintenance(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	var lastErr error
	for _, db := range []string{maintenanceDatabase, fallbackMaintenanceBase} {
		mcfg := cfg.Copy()
		mcfg.Database = db
		conn, err := pgx.ConnectConfig(ctx, mcfg)
		if err == nil {
			return conn, nil
		}
		lastErr = connectError(&mcfg.Config, err)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != codeInvalidCatalogName {
			break
		}
	}
	return nil, lastErr
}

// Option tunes the pool Open creates.
type Option func(*pgxpool.Config) error

// WithMaxConns sets the most connections the pool opens (default
// DefaultMaxConns). n must be at least 1.
func WithMaxConns(n int32) Option {
	return func(c *pgxpool.Config) error {
		if n < 1 {
			return fmt.Errorf("max connections must be at least 1, got %d", n)
		}
		c.MaxConns = n
		if c.MinConns > n {
			c.MinConns = n
		}
		return nil
	}
}

// WithMinConns sets how many idle connections the pool keeps open (default
// 0). n must be between 0 and the maximum.
func WithMinConns(n int32) Option {
	return func(c *pgxpool.Config) error {
		if n < 0 || n > c.MaxConns {
			return fmt.Errorf("min connections must be between 0 and %d, got %d", c.MaxConns, n)
		}
		c.MinConns = n
		return nil
	}
}

// WithApplicationName sets application_name, which pg_stat_activity shows,
// so operators can tell the projector's connections from the query
// service's.
func WithApplicationName(name string) Option {
	return func(c *pgxpool.Config) error {
		c.ConnConfig.RuntimeParams["application_name"] = name
		return nil
	}
}

// Pool defaults: enough connections for a service's concurrent requests
// without exhausting a small server's max_connections when several
// processes share it; connections are recycled so a failover or a changed
// DNS entry is picked up.
const (
	DefaultMaxConns        = 10
	DefaultMaxConnLifetime = 30 * time.Minute
	DefaultMaxConnIdleTime = 5 * time.Minute
)

// Open returns a connection pool for dbURL after checking the server answers
// (a ping), with the errors of EnsureDatabase. It does not create the
// database or migrate it.
func Open(ctx context.Context, dbURL string, opts ...Option) (*pgxpool.Pool, error) {
	cc, err := ParseURL(dbURL)
	if err != nil {
		return nil, err
	}
	// pgxpool.ParseConfig cannot fail where pgx.ParseConfig succeeded; its
	// error text is not used because it may echo the URL.
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %s", parseHint(dbURL))
	}
	cfg.ConnConfig.ConnectTimeout = cc.ConnectTimeout
	if !strings.Contains(dbURL, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if !strings.Contains(dbURL, "pool_max_conn_lifetime") {
		cfg.MaxConnLifetime = DefaultMaxConnLifetime
	}
	if !strings.Contains(dbURL, "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = DefaultMaxConnIdleTime
	}
	if _, set := cfg.ConnConfig.RuntimeParams["application_name"]; !set {
		cfg.ConnConfig.RuntimeParams["application_name"] = "authstream"
		if exe, err := os.Executable(); err == nil {
			cfg.ConnConfig.RuntimeParams["application_name"] = "authstream/" + lastElem(exe)
		}
	}
	for _, o := range opts {
		if err := o(cfg); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(&cfg.ConnConfig.Config, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, connectError(&cfg.ConnConfig.Config, err)
	}
	return pool, nil
}

func lastElem(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}
