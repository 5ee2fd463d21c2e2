// Package accounts is the accounts projection: it turns tenant, user, role
// and client events into the rows of the tenants, users, roles, user_roles,
// clients and client_roles tables (libs/readmodel migrations 0002 and
// 0005). It applies a batch of events with
// a few multi-row statements sent in one round trip, and falls back to one
// event at a time only to find an event the database refuses.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Name is the projection's name in checkpoints, quarantine rows and
// notifications.
const Name = readmodel.ProjectionAccounts

// Tables applies events to one set of accounts tables: the schema of a
// generation, or the scratch schema of a per-tenant rebuild. A Tables is
// immutable and safe for concurrent use.
type Tables struct {
	schema string
	sql    statements
	keys   PersonalKeys
}

// EventError says that one event of a batch cannot be applied, and why.
// The events before it were applied.
type EventError struct {
	Index int   // position of the event in the slice given to Apply
	Err   error // decode error, constraint violation, missing row...
}

// Error implements error.
func (e *EventError) Error() string { return fmt.Sprintf("event %d: %v", e.Index, e.Err) }

// Unwrap returns the cause.
func (e *EventError) Unwrap() error { return e.Err }

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// New returns the Tables of schema, which must be a plain lowercase
// identifier (it is spliced into SQL).
func New(schema string) (*Tables, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("accounts: schema %q is not a plain lowercase identifier", schema)
	}
	return &Tables{schema: schema, sql: newStatements(schema)}, nil
}

// Schema returns the schema the tables live in.
func (t *Tables) Schema() string { return t.schema }

// Apply applies evs, in stream order, inside tx. It returns how many
// events, a prefix of evs, it applied. When it stops early the error is an
// *EventError naming the event that cannot be applied, and tx holds the
// effect of the events before it (the caller commits them and quarantines
// that event). Any other error (connection lost, context done) leaves tx to
// be rolled back.
//
// Each run of events costs one round trip: the planned statements are sent
// as one pgx batch inside a savepoint. Only when the database refuses a
// run (a constraint, a row to change that is missing) does Apply roll the
// savepoint back and apply that run one event at a time to find the event
// at fault.
func (t *Tables) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.Stored) (int, error) {
	payloads := decodeAll(evs)
	names, err := t.openNames(ctx, evs, payloads)
	if err != nil {
		return 0, err
	}
	applied := 0
	for applied < len(evs) {
		p, n, bad := planRun(evs[applied:], payloads[applied:], names)
		if n > 0 {
			err := t.exec(ctx, tx, p)
			switch {
			case err == nil:
				applied += n
			case !isEventError(err):
				return applied, err
			default:
				for range n {
					one, _, ferr := planRun(evs[applied:applied+1], payloads[applied:applied+1], names)
					if ferr != nil {
						return applied, &EventError{Index: applied, Err: ferr}
					}
					if err := t.exec(ctx, tx, one); err != nil {
						if !isEventError(err) {
							return applied, err
						}
						return applied, &EventError{Index: applied, Err: err}
					}
					applied++
				}
			}
		}
		if bad != nil {
			return applied, &EventError{Index: applied, Err: bad}
		}
	}
	return applied, nil
}

// QueueKnownTenants queues on b the lookup of which of tenants have a row
// (their tenant.created was applied), and adds those to known when b is
// sent: the caller sends it with whatever else it needs in that round
// trip. A tenant without a row has no events the projection may apply.
func (t *Tables) QueueKnownTenants(b *pgx.Batch, tenants []string, known map[string]bool) {
	b.Queue(t.sql.knownTenants, tenants).Query(func(rows pgx.Rows) error {
		var id string
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
			known[id] = true
			return nil
		})
		return err
	})
}

// isEventError reports whether err is the database refusing the data (a
// constraint, a row to change that is missing), as opposed to the
// connection or the context failing: only the former quarantines an event.
func isEventError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code[:2] {
	case "21", // cardinality violation
		"22", // data exception
		"23": // integrity constraint violation
		return true
	}
	return pgErr.Code == codeNoDataFound
}

// codeNoDataFound is raised by readmodel_expect_rows.
const codeNoDataFound = "P0002"

// exec sends the plan's statements in one batch inside a savepoint, and
// rolls the savepoint back when the database refuses one of them. The
// statements that must change an exact number of rows check it themselves
// (readmodel_expect_rows), so a refusal aborts the rest of the batch on
// the server.
func (t *Tables) exec(ctx context.Context, tx pgx.Tx, p *plan) error {
	if p.empty() {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT apply")
	t.queue(b, p)
	b.Queue("RELEASE SAVEPOINT apply")
	err := tx.SendBatch(ctx, b).Close()
	if err != nil && isEventError(err) {
		if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT apply"); rerr != nil {
			return fmt.Errorf("roll back to savepoint: %w", rerr)
		}
	}
	return err
}

// queue adds the plan's statements to b in the order that makes their
// effect equal to applying the events one by one.
func (t *Tables) queue(b *pgx.Batch, p *plan) {
	// add queues a statement; rows >= 0 makes it fail unless it changes
	// exactly that many rows.
	add := func(what string, rows int, sql string, args ...any) {
		if rows >= 0 {
			sql = "WITH x AS (" + sql + " RETURNING 1) SELECT readmodel_expect_rows((SELECT count(*) FROM x), " +
				strconv.Itoa(rows) + ", '" + what + "')"
		}
		b.Queue(sql, args...)
	}

	// Deletes first: a username or role name freed by a delete may be taken
	// again by an insert of the same run.
	var du, de [2][]string // rows that must exist, rows that may be gone
	var dr [2][]string
	for _, k := range p.userOrder {
		switch s := p.users[k]; {
		case s.dbDelete && s.mayBeGone:
			de[0], de[1] = append(de[0], k.tenant), append(de[1], k.id)
		case s.dbDelete:
			du[0], du[1] = append(du[0], k.tenant), append(du[1], k.id)
		}
	}
	for _, k := range p.roleOrder {
		if p.roles[k].dbDelete {
			dr[0], dr[1] = append(dr[0], k.tenant), append(dr[1], k.name)
		}
	}
	if len(p.deleted) > 0 {
		var d, r deletedCols
		d.add(p.deleted)
		r.add(p.registered)
		b.Queue(t.sql.checkDeletedKeys, d.tenant, d.value, d.at, r.tenant, r.value, r.at)
	}
	// A deleted user's assignments go with it (user_roles has no foreign
	// key to cascade the delete: see the assignments below).
	if len(du[0])+len(de[0]) > 0 {
		b.Queue(t.sql.deleteUserRoles, append(du[0][:len(du[0]):len(du[0])], de[0]...), append(du[1][:len(du[1]):len(du[1])], de[1]...))
	}
	if len(du[0]) > 0 {
		add("delete users", len(du[0]), t.sql.deleteUsers, du[0], du[1])
	}
	if len(de[0]) > 0 {
		add("erase users", -1, t.sql.deleteUsers, de[0], de[1])
	}
	if len(dr[0]) > 0 {
		add("delete roles", -1, t.sql.deleteRoles, dr[0], dr[1])
	}

	// Tenants.
	var ti tenantCols
	var tu tenantCols
	for _, id := range p.tenantOrder {
		s := p.tenants[id]
		if s.row != nil {
			ti.add(s.row)
		} else if s.patch != nil {
			tu.add(s.patch)
		}
	}
	if len(ti.id) > 0 {
		add("insert tenants", -1, t.sql.insertTenants, ti.id, ti.name, ti.status, ti.version, ti.created, ti.updated, ti.settings)
	}
	if len(tu.id) > 0 {
		add("update tenants", len(tu.id), t.sql.updateTenants, tu.id, tu.status, tu.version, tu.updated, tu.settings)
	}

	// Users. Those registered and deleted in the run are not inserted;
	// their ids and username keys must be free all the same (after the
	// deletes, before the inserts: planRun cuts a run where an earlier event
	// would need another order, and the check before the deletes refuses a
	// registration of a username a user deleted after it held).
	var ui userCols
	var uu patchCols
	var tr [3][]string
	for _, k := range p.userOrder {
		switch s := p.users[k]; {
		case s.transient:
			tr[0], tr[1], tr[2] = append(tr[0], k.tenant), append(tr[1], k.id), append(tr[2], s.row.usernameKey)
		case s.row != nil:
			ui.add(s.row)
		case s.patch != nil:
			uu.add(k, s.patch)
		}
	}
	if len(tr[0]) > 0 {
		b.Queue(t.sql.checkFree, tr[0], tr[1], tr[2])
	}
	if len(ui.tenant) > 0 {
		add("insert users", -1, t.sql.insertUsers, ui.tenant, ui.id, ui.username, ui.usernameKey, ui.status,
			ui.credential, ui.version, ui.notBefore, ui.created, ui.updated, ui.profile, ui.emailVerified)
	}
	if len(uu.tenant) > 0 {
		add("update users", len(uu.tenant), t.sql.updateUsers, uu.tenant, uu.id, uu.status, uu.credential,
			uu.notBefore, uu.version, uu.updated, uu.profile.set, uu.profile.removed, uu.profile.verified, uu.profile.emailChanged)
	}

	// Roles.
	var rc roleCols
	for _, k := range p.roleOrder {
		if s := p.roles[k]; s.row != nil {
			rc.add(s.row)
		}
	}
	if len(rc.tenant) > 0 {
		add("upsert roles", -1, t.sql.upsertRoles, rc.tenant, rc.name, rc.permissions, rc.description, rc.version, rc.created, rc.updated)
	}

	// Assignments, after the users they refer to.
	on, off := p.userRoles.columns()
	if len(off[0]) > 0 {
		add("unassign roles", -1, t.sql.unassign, off[0], off[1], off[2])
	}
	if len(on[0]) > 0 {
		// user_roles has no foreign key to users (migration 0010): every
		// assignment also moves its user's version, so the run either
		// inserted the user or updates its row with the exact count
		// checked above, and a missing user refuses the run there.
		add("assign roles", -1, t.sql.assign, on[0], on[1], on[2])
	}

	t.queueClients(add, p)
	t.queueWebhooks(add, p)
}

// deletedCols are positioned values as columns.
type deletedCols struct {
	tenant, value []string
	at            []int64
}

func (c *deletedCols) add(ps []positioned) {
	for _, p := range ps {
		c.tenant, c.value, c.at = append(c.tenant, p.tenant), append(c.value, p.value), append(c.at, p.at)
	}
}

type tenantCols struct {
	id, name, status []string
	version          []int64
	created, updated []time.Time
	settings         []*string
}

func (c *tenantCols) add(r *tenantRow) {
	c.id, c.name, c.status = append(c.id, r.id), append(c.name, r.name), append(c.status, r.status)
	c.version = append(c.version, r.version)
	c.created, c.updated = append(c.created, r.created), append(c.updated, r.updated)
	c.settings = append(c.settings, r.settings)
}

type userCols struct {
	tenant, id, username, usernameKey, status, credential []string
	version                                               []int64
	notBefore                                             []*time.Time
	created, updated                                      []time.Time
	profile                                               []string
	emailVerified                                         []bool
}

func (c *userCols) add(r *userRow) {
	// The profile's members are JSON values decoded or marshalled before:
	// they always encode.
	profile, _ := profileJSON(r.profile)
	c.profile, c.emailVerified = append(c.profile, profile), append(c.emailVerified, r.emailVerified)
	c.tenant, c.id = append(c.tenant, r.tenant), append(c.id, r.id)
	c.username, c.usernameKey = append(c.username, r.username), append(c.usernameKey, r.usernameKey)
	c.status, c.credential = append(c.status, r.status), append(c.credential, r.credential)
	c.version, c.notBefore = append(c.version, r.version), append(c.notBefore, r.notBefore)
	c.created, c.updated = append(c.created, r.created), append(c.updated, r.updated)
}

type patchCols struct {
	tenant, id         []string
	status, credential []*string
	notBefore          []*time.Time
	version            []int64
	updated            []time.Time
	profile            profileCols
}

func (c *patchCols) add(k userKey, p *userPatch) {
	// A delta's members are JSON values decoded or marshalled before: they
	// always encode.
	_ = c.profile.add(p.profile)
	c.tenant, c.id = append(c.tenant, k.tenant), append(c.id, k.id)
	c.status, c.credential = append(c.status, p.status), append(c.credential, p.credential)
	c.notBefore, c.version, c.updated = append(c.notBefore, p.notBefore), append(c.version, p.version), append(c.updated, p.updated)
}

type roleCols struct {
	tenant, name, permissions, description []string
	version                                []int64
	created, updated                       []time.Time
}

func (c *roleCols) add(r *roleRow) {
	c.tenant, c.name = append(c.tenant, r.tenant), append(c.name, r.name)
	c.permissions, c.description = append(c.permissions, joinPermissions(r.permissions)), append(c.description, r.description)
	c.version = append(c.version, r.version)
	c.created, c.updated = append(c.created, r.created), append(c.updated, r.updated)
}

// statements are the SQL texts for one schema. Every statement takes
// column arrays and unnests them, so a run of any size is one statement
// per table and kind of change.
type statements struct {
	deleteUsers, deleteRoles     string
	insertTenants, updateTenants string
	insertUsers, updateUsers     string
	checkFree, checkDeletedKeys  string
	upsertRoles                  string
	unassign, assign             string
	deleteUserRoles              string
	knownTenants                 string
	clients                      clientStatements
	webhooks                     webhookStatements
}

func newStatements(s string) statements {
	q := func(format string) string { return fmt.Sprintf(format, s) }
	return statements{
		deleteUsers: q(`DELETE FROM %s.users u USING unnest($1::text[], $2::text[]) AS x(t, u)
			WHERE u.tenant_id = x.t AND u.user_id = x.u`),
		deleteRoles: q(`DELETE FROM %s.roles r USING unnest($1::text[], $2::text[]) AS x(t, n)
			WHERE r.tenant_id = x.t AND r.name = x.n`),
		insertTenants: q(`INSERT INTO %s.tenants (tenant_id, name, status, version, created_at, updated_at, settings)
			SELECT t, n, s, v, ca, ua, st::jsonb
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::timestamptz[], $7::text[])
				AS x(t, n, s, v, ca, ua, st)`),
		updateTenants: q(`UPDATE %s.tenants t SET status = coalesce(nullif(x.s, ''), t.status), version = x.v, updated_at = x.ua,
				settings = coalesce(x.st::jsonb, t.settings)
			FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::text[]) AS x(t, s, v, ua, st)
			WHERE t.tenant_id = x.t`),
		insertUsers: q(`INSERT INTO %s.users (tenant_id, user_id, username, username_key, status, credential,
				version, not_before, created_at, updated_at, profile, email, email_verified)
			SELECT t, u, n, k, s, c::jsonb, v, nb, ca, ua, pr::jsonb, pr::jsonb->>'email', ev
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
				$8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::boolean[])
				AS x(t, u, n, k, s, c, v, nb, ca, ua, pr, ev)`),
		checkFree: q(`SELECT readmodel_expect_rows(
			(SELECT count(*) FROM %[1]s.users u JOIN unnest($1::text[], $2::text[]) AS x(t, u)
				ON u.tenant_id = x.t AND u.user_id = x.u) +
			(SELECT count(*) FROM %[1]s.users u JOIN unnest($1::text[], $3::text[]) AS x(t, k)
				ON u.tenant_id = x.t AND u.username_key = x.k),
			0, 'register users')`),
		// Users of the database deleted by a run ($1-$3: tenant, id,
		// position) whose username key a registration earlier in the run
		// ($4-$6: tenant, key, position) took: none, or the run is refused.
		// The deleted users' keys are read first, one primary-key probe
		// each, and only then matched with the registrations (OFFSET 0
		// keeps the planner from merging the two): joined the other way,
		// on the tenant alone, every pair of a registration and a later
		// delete of its tenant cost a probe of the username index.
		checkDeletedKeys: q(`SELECT readmodel_expect_rows(
			(SELECT count(*) FROM (
				SELECT d.t, u.username_key AS k, d.at
				  FROM unnest($1::text[], $2::text[], $3::bigint[]) AS d(t, u, at)
				  JOIN %[1]s.users u ON u.tenant_id = d.t AND u.user_id = d.u
				OFFSET 0) AS dk
				JOIN unnest($4::text[], $5::text[], $6::bigint[]) AS r(t, k, at)
					ON r.t = dk.t AND r.k = dk.k AND r.at < dk.at),
			0, 'register users')`),
		// The profile: (profile - removed) || set, when the patch has one
		// (x.ps not NULL); see profiles.go.
		updateUsers: q(`UPDATE %s.users u SET status = coalesce(x.s, u.status), credential = coalesce(x.c::jsonb, u.credential),
				not_before = coalesce(x.nb, u.not_before), version = x.v, updated_at = x.ua,
				profile = CASE WHEN x.ps IS NULL THEN u.profile
					ELSE (u.profile - ARRAY(SELECT jsonb_array_elements_text(x.pr::jsonb))) || x.ps::jsonb END,
				email = CASE WHEN x.ps IS NULL THEN u.email
					ELSE ((u.profile - ARRAY(SELECT jsonb_array_elements_text(x.pr::jsonb))) || x.ps::jsonb)->>'email' END,
				email_verified = CASE
					WHEN x.pv IS NOT NULL THEN coalesce(((u.profile - ARRAY(SELECT jsonb_array_elements_text(x.pr::jsonb))) || x.ps::jsonb)->>'email' = x.pv, false)
					WHEN x.pe THEN false
					ELSE u.email_verified END
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::timestamptz[],
				$8::text[], $9::text[], $10::text[], $11::boolean[])
				AS x(t, u, s, c, nb, v, ua, ps, pr, pv, pe)
			WHERE u.tenant_id = x.t AND u.user_id = x.u`),
		upsertRoles: q(`INSERT INTO %s.roles (tenant_id, name, permissions, description, version, created_at, updated_at)
			SELECT t, n, string_to_array(p, ','), d, v, ca, ua
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::timestamptz[])
				AS x(t, n, p, d, v, ca, ua)
			ON CONFLICT (tenant_id, name) DO UPDATE SET permissions = excluded.permissions,
				description = excluded.description, version = excluded.version, updated_at = excluded.updated_at`),
		unassign: q(`DELETE FROM %s.user_roles r USING unnest($1::text[], $2::text[], $3::text[]) AS x(t, u, r)
			WHERE r.tenant_id = x.t AND r.user_id = x.u AND r.role = x.r`),
		assign: q(`INSERT INTO %s.user_roles (tenant_id, user_id, role)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`),
		deleteUserRoles: q(`DELETE FROM %s.user_roles r USING unnest($1::text[], $2::text[]) AS x(t, u)
			WHERE r.tenant_id = x.t AND r.user_id = x.u`),
		knownTenants: q(`SELECT tenant_id FROM %s.tenants WHERE tenant_id = ANY($1::text[])`),
		clients:      newClientStatements(s),
		webhooks:     newWebhookStatements(s),
	}
}
