// Package mirror keeps a PostgreSQL table of authstream's users (tenant,
// user id, username, status, roles, profile) up to date from the event log, the way
// any service that wants its own copy of the users would. Each event is
// applied in one transaction together with the stream sequence it came
// from, so an event delivered twice (delivery is at least once) changes
// nothing the second time.
package mirror

import (
	"context"
	"errors"
	"fmt"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/events"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Status values of a mirrored user.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// schema creates the mirror's own tables. They share the database with
// nothing else of authstream's: the read model is the platform's, this copy
// is the subscriber's.
const schema = `
CREATE TABLE IF NOT EXISTS usermirror_users (
	tenant   text   NOT NULL,
	user_id  text   NOT NULL,
	username text   NOT NULL,
	status   text   NOT NULL,
	roles    text[] NOT NULL DEFAULT '{}',
	PRIMARY KEY (tenant, user_id)
);
CREATE TABLE IF NOT EXISTS usermirror_positions (
	consumer      text   PRIMARY KEY,
	last_sequence bigint NOT NULL
);
ALTER TABLE usermirror_users
	ADD COLUMN IF NOT EXISTS email          text    NOT NULL DEFAULT '',
	ADD COLUMN IF NOT EXISTS email_verified boolean NOT NULL DEFAULT false,
	ADD COLUMN IF NOT EXISTS name           text    NOT NULL DEFAULT '',
	ADD COLUMN IF NOT EXISTS locale         text    NOT NULL DEFAULT '',
	ADD COLUMN IF NOT EXISTS attributes     jsonb;`

// User is one mirrored user.
type User struct {
	Tenant   string
	UserID   string
	Username string
	Status   string   // StatusActive or StatusDisabled; deleted users have no row
	Roles    []string // sorted
	Profile  authclient.Profile
}

// Mirror applies user events to the tables. It is safe for concurrent use,
// though events must be applied in stream order (authclient.Consumer does).
type Mirror struct {
	pool     *pgxpool.Pool
	consumer string
}

// New returns a Mirror writing through pool; consumer names the position
// row, the same name as the durable consumer that feeds it.
func New(pool *pgxpool.Pool, consumer string) (*Mirror, error) {
	if pool == nil || consumer == "" {
		return nil, errors.New("mirror needs a pool and a consumer name")
	}
	return &Mirror{pool: pool, consumer: consumer}, nil
}

// Migrate creates the tables if they do not exist.
func (m *Mirror) Migrate(ctx context.Context) error {
	if _, err := m.pool.Exec(ctx, schema); err != nil {
		return fmt.Errorf("create mirror tables: %w", err)
	}
	return nil
}

// Run feeds the mirror from c until ctx ends.
func (m *Mirror) Run(ctx context.Context, c *authclient.Consumer) error {
	return c.Run(ctx, m.Apply)
}

// Apply applies one event and records its sequence, in one transaction.
// An event at or before the recorded sequence was applied already and is
// skipped. Events of other aggregates and user events that change nothing
// mirrored (a password change) only advance the position.
func (m *Mirror) Apply(ctx context.Context, e authclient.Event) error {
	return pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		// The position row is locked first: a second mirror process on the
		// same consumer waits here instead of applying the event twice.
		if _, err := tx.Exec(ctx, `INSERT INTO usermirror_positions (consumer, last_sequence) VALUES ($1, 0)
			ON CONFLICT (consumer) DO NOTHING`, m.consumer); err != nil {
			return fmt.Errorf("position: %w", err)
		}
		// Sequences are uint64 here and bigint in the table: pgx converts
		// them both ways, and refuses (rather than wraps) a value the
		// other side cannot hold.
		var last uint64
		if err := tx.QueryRow(ctx, `SELECT last_sequence FROM usermirror_positions WHERE consumer = $1 FOR UPDATE`,
			m.consumer).Scan(&last); err != nil {
			return fmt.Errorf("position: %w", err)
		}
		if e.Sequence <= last {
			return nil
		}
		if err := apply(ctx, tx, e); err != nil {
			return fmt.Errorf("apply %s %s at sequence %d: %w", e.Type, e.ID, e.Sequence, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE usermirror_positions SET last_sequence = $2 WHERE consumer = $1`,
			m.consumer, e.Sequence); err != nil {
			return fmt.Errorf("position: %w", err)
		}
		return nil
	})
}

// apply changes the users table for one event.
func apply(ctx context.Context, tx pgx.Tx, e authclient.Event) error {
	if e.Aggregate != events.AggregateUser {
		return nil
	}
	var (
		sql  string
		args = []any{e.Tenant, e.AggregateID}
	)
	switch p := e.Payload.(type) {
	case events.UserRegistered:
		var prof authclient.Profile
		prof.Apply(p)
		sql = `INSERT INTO usermirror_users (tenant, user_id, username, status, roles, email, email_verified, name, locale, attributes)
			VALUES ($1, $2, $3, $4, '{}', $5, $6, $7, $8, $9)
			ON CONFLICT (tenant, user_id) DO UPDATE SET username = $3, status = $4, roles = '{}',
				email = $5, email_verified = $6, name = $7, locale = $8, attributes = $9`
		// The username as the consumer opened it (authclient's
		// WithPersonalKeys) or as a legacy event carried it; a sealed one
		// this mirror cannot open is left empty, never stored as
		// ciphertext. The profile likewise (authclient.Profile).
		name, _ := p.Username.Legacy()
		args = append(args, name, StatusActive, prof.Email, prof.EmailVerified, prof.Name, prof.Locale, attributesArg(prof))
	case events.UserProfileUpdated, events.UserEmailVerified:
		// The SDK folds the change into the profile the row holds.
		var prof authclient.Profile
		err := tx.QueryRow(ctx, `SELECT email, email_verified, name, locale, attributes FROM usermirror_users
			WHERE tenant = $1 AND user_id = $2 FOR UPDATE`, e.Tenant, e.AggregateID).
			Scan(&prof.Email, &prof.EmailVerified, &prof.Name, &prof.Locale, &prof.Attributes)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // a user this mirror never saw registered
		}
		if err != nil {
			return err
		}
		if !prof.Apply(p) {
			return nil
		}
		sql = `UPDATE usermirror_users SET email = $3, email_verified = $4, name = $5, locale = $6, attributes = $7
			WHERE tenant = $1 AND user_id = $2`
		args = append(args, prof.Email, prof.EmailVerified, prof.Name, prof.Locale, attributesArg(prof))
	case events.UserDisabled:
		sql = `UPDATE usermirror_users SET status = $3 WHERE tenant = $1 AND user_id = $2`
		args = append(args, StatusDisabled)
	case events.UserEnabled:
		sql = `UPDATE usermirror_users SET status = $3 WHERE tenant = $1 AND user_id = $2`
		args = append(args, StatusActive)
	case events.UserRoleAssigned:
		sql = `UPDATE usermirror_users SET roles = ARRAY(SELECT DISTINCT r FROM unnest(array_append(roles, $3)) AS r ORDER BY r)
			WHERE tenant = $1 AND user_id = $2`
		args = append(args, p.Role)
	case events.UserRoleUnassigned:
		sql = `UPDATE usermirror_users SET roles = array_remove(roles, $3) WHERE tenant = $1 AND user_id = $2`
		args = append(args, p.Role)
	case events.UserDeleted:
		sql = `DELETE FROM usermirror_users WHERE tenant = $1 AND user_id = $2`
	case events.UserErased:
		// The person asked to be forgotten: the mirror forgets them too.
		sql = `DELETE FROM usermirror_users WHERE tenant = $1 AND user_id = $2`
	default:
		// user.password_changed, the second factors' events, or a type
		// added after this build: nothing mirrored changes.
		return nil
	}
	_, err := tx.Exec(ctx, sql, args...)
	return err
}

// attributesArg is a profile's attributes as the jsonb column takes them:
// NULL when there are none.
func attributesArg(p authclient.Profile) any {
	if len(p.Attributes) == 0 {
		return nil
	}
	return string(p.Attributes)
}

// Position returns the stream sequence of the last event applied, 0 before
// the first.
func (m *Mirror) Position(ctx context.Context) (uint64, error) {
	var last uint64
	err := m.pool.QueryRow(ctx, `SELECT last_sequence FROM usermirror_positions WHERE consumer = $1`, m.consumer).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("position: %w", err)
	}
	return last, nil
}

// Users returns every mirrored user, ordered by tenant and user id.
func (m *Mirror) Users(ctx context.Context) ([]User, error) {
	rows, err := m.pool.Query(ctx, `SELECT tenant, user_id, username, status, roles, email, email_verified, name, locale, attributes
		FROM usermirror_users ORDER BY tenant, user_id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) {
		var u User
		err := r.Scan(&u.Tenant, &u.UserID, &u.Username, &u.Status, &u.Roles,
			&u.Profile.Email, &u.Profile.EmailVerified, &u.Profile.Name, &u.Profile.Locale, &u.Profile.Attributes)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}
