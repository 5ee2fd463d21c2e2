package accounts

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// The OpenID Connect clients of the projection: what planning keeps of a
// run's client events, and the statements that write them to the clients
// and client_roles tables. A client's rows go with its client.deleted.
//
// The projection refuses what the client aggregate's own history refuses
// (services/command/internal/domain/client.go): a change of a client that
// does not exist, a registration of one that does, an update that changes
// the type, a secret rotation of a public client.

type clientKey struct{ tenant, id string }

// clientRow is a client row as a run inserts it, or (as a patch) the
// change a run makes to a row it did not insert.
type clientRow struct {
	// config is the JSON of the client's events.ClientConfig, lists never
	// null; nil in a patch: unchanged.
	config *string
	// typ is the client's type; in a patch, the type the run's events
	// require the row to have ("": any).
	typ string
	// secrets are the client's secret hashes: nil in a row for a client
	// without a secret, nil in a patch when unchanged.
	secrets          *clientSecrets
	version          int64
	created, updated time.Time
}

// clientSecrets are the hashes of the secrets that authenticate a client:
// the current one and the one before the last rotation, with the instant
// it stops working (nil and zero before any rotation).
type clientSecrets struct {
	current, previous *string
	previousUntil     *time.Time
}

type clientState struct {
	exists   existence
	dbDelete bool       // the row in the database is deleted first
	row      *clientRow // inserted by the run
	patch    *clientRow
}

func (p *plan) client(env events.Envelope) *clientState {
	return entry(p.clients, &p.clientOrder, clientKey{env.Tenant, env.AggregateID})
}

// registerClient records client.registered.
func (p *plan) registerClient(env events.Envelope, e events.ClientRegistered, version int64, at time.Time) error {
	s := p.client(env)
	if s.exists == present {
		return fmt.Errorf("client %s already exists", env.AggregateID)
	}
	cfg, err := clientConfig(e.Config)
	if err != nil {
		return err
	}
	s.exists = present
	s.row = &clientRow{config: &cfg, typ: e.Config.Type, version: version, created: at, updated: at}
	if e.SecretHash != "" {
		s.row.secrets = &clientSecrets{current: &e.SecretHash}
	}
	return nil
}

// updateClient records client.updated: the whole configuration, of a
// client of the same type.
func (p *plan) updateClient(env events.Envelope, e events.ClientUpdated, version int64, at time.Time) error {
	cfg, err := clientConfig(e.Config)
	if err != nil {
		return err
	}
	return p.clientChange(env, e.Config.Type, version, at, func(r *clientRow) { r.config = &cfg })
}

// rotateClientSecret records client.secret_rotated, of a confidential
// client.
func (p *plan) rotateClientSecret(env events.Envelope, e events.ClientSecretRotated, version int64, at time.Time) error {
	until := e.PreviousSecretExpiresAt.UTC()
	secrets := &clientSecrets{current: &e.SecretHash, previous: &e.PreviousSecretHash, previousUntil: &until}
	return p.clientChange(env, events.ClientConfidential, version, at, func(r *clientRow) { r.secrets = secrets })
}

// assignClientRole records client.role_assigned (on) or
// client.role_unassigned.
func (p *plan) assignClientRole(env events.Envelope, role string, on bool, version int64, at time.Time) error {
	if err := p.clientChange(env, "", version, at, nil); err != nil {
		return err
	}
	p.clientRoles.set(assignKey{env.Tenant, env.AggregateID, role}, on)
	return nil
}

// deleteClient records client.deleted: the row and its roles go.
func (p *plan) deleteClient(env events.Envelope) error {
	s := p.client(env)
	switch {
	case s.exists == absent:
		return fmt.Errorf("client %s does not exist", env.AggregateID)
	case s.row != nil:
		// Registered in this run: its insert runs (and meets a row already
		// there, as one event at a time would) before its delete, in the
		// next run.
		return errCut
	}
	s.exists, s.dbDelete, s.patch = absent, true, nil
	p.clientRoles.drop(env.Tenant, env.AggregateID)
	return nil
}

// clientChange records a change of an existing client: its version and
// updated_at always, the rest as set sets it. typ, when not "", is the
// type the event requires the client to have.
func (p *plan) clientChange(env events.Envelope, typ string, version int64, at time.Time, set func(*clientRow)) error {
	s := p.client(env)
	if s.exists == absent {
		return fmt.Errorf("client %s does not exist", env.AggregateID)
	}
	r := s.row
	switch {
	case r != nil && typ != "" && r.typ != typ:
		return fmt.Errorf("%s of client %s, which is %s", env.Type, env.AggregateID, r.typ)
	case r == nil && s.patch == nil:
		s.patch = &clientRow{}
		r = s.patch
	case r == nil:
		r = s.patch
		if typ != "" && r.typ != "" && r.typ != typ {
			// One of the two events requires the wrong type: the next run
			// checks this one against the row the first one left.
			return errCut
		}
	}
	s.exists = present
	if s.row == nil && typ != "" {
		r.typ = typ
	}
	if set != nil {
		set(r)
	}
	r.version, r.updated = version, at
	return nil
}

// clientConfig returns the JSON the statements read a client's
// configuration from, with every list present.
func clientConfig(c events.ClientConfig) (string, error) {
	for _, l := range []*[]string{&c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.GrantTypes, &c.Scopes} {
		if *l == nil {
			*l = []string{}
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("client configuration: %w", err)
	}
	return string(b), nil
}

// queueClients adds the plan's client statements with add (see queue):
// deletes first (a client deleted and registered again in a run), then
// inserts, updates and role assignments.
func (t *Tables) queueClients(add func(what string, rows int, sql string, args ...any), p *plan) {
	var del [2][]string
	var ins, upd clientCols
	for _, k := range p.clientOrder {
		s := p.clients[k]
		if s.dbDelete {
			del[0], del[1] = append(del[0], k.tenant), append(del[1], k.id)
		}
		switch {
		case s.row != nil:
			ins.add(k, s.row)
		case s.patch != nil:
			upd.add(k, s.patch)
		}
	}
	sql := t.sql.clients
	if len(del[0]) > 0 {
		add("delete clients", len(del[0]), sql.delete, del[0], del[1])
	}
	if len(ins.tenant) > 0 {
		add("insert clients", -1, sql.insert, ins.tenant, ins.id, ins.config, ins.secret, ins.previous, ins.previousUntil,
			ins.version, ins.created, ins.updated)
	}
	if len(upd.tenant) > 0 {
		add("update clients", len(upd.tenant), sql.update, upd.tenant, upd.id, upd.config, upd.typ, upd.rotated,
			upd.secret, upd.previous, upd.previousUntil, upd.version, upd.updated)
	}
	on, off := p.clientRoles.columns()
	if len(off[0]) > 0 {
		add("unassign client roles", -1, sql.unassign, off[0], off[1], off[2])
	}
	if len(on[0]) > 0 {
		add("assign client roles", -1, sql.assign, on[0], on[1], on[2])
	}
}

// clientCols are client rows or patches as columns.
type clientCols struct {
	tenant, id       []string
	config, typ      []*string
	rotated          []bool
	secret, previous []*string
	previousUntil    []*time.Time
	version          []int64
	created, updated []time.Time
}

func (c *clientCols) add(k clientKey, r *clientRow) {
	c.tenant, c.id = append(c.tenant, k.tenant), append(c.id, k.id)
	var typ *string
	if r.typ != "" {
		typ = &r.typ
	}
	c.config, c.typ = append(c.config, r.config), append(c.typ, typ)
	s := r.secrets
	if s == nil {
		s = &clientSecrets{}
	}
	c.rotated = append(c.rotated, r.secrets != nil)
	c.secret, c.previous, c.previousUntil = append(c.secret, s.current), append(c.previous, s.previous), append(c.previousUntil, s.previousUntil)
	c.version = append(c.version, r.version)
	c.created, c.updated = append(c.created, r.created), append(c.updated, r.updated)
}

// clientStatements are the SQL texts of the client tables of one schema.
type clientStatements struct {
	delete, insert, update string
	unassign, assign       string
}

// clientLists are the list members of a configuration, each kept in the
// column of its name.
var clientLists = []string{"redirect_uris", "post_logout_redirect_uris", "grant_types", "scopes"}

func newClientStatements(s string) clientStatements {
	var cols, values, sets []string
	for _, l := range clientLists {
		list := fmt.Sprintf("ARRAY(SELECT jsonb_array_elements_text(x.j->'%s'))", l)
		cols, values = append(cols, l), append(values, list)
		sets = append(sets, fmt.Sprintf("%s = CASE WHEN x.j IS NULL THEN c.%[1]s ELSE %s END", l, list))
	}
	return clientStatements{
		delete: fmt.Sprintf(`DELETE FROM %s.clients c USING unnest($1::text[], $2::text[]) AS x(t, c)
			WHERE c.tenant_id = x.t AND c.client_id = x.c`, s),
		insert: fmt.Sprintf(`INSERT INTO %s.clients (tenant_id, client_id, name, type, %s, id_token_alg,
				secret_hash, previous_secret_hash, previous_secret_expires_at, version, created_at, updated_at)
			SELECT x.t, x.c, x.j->>'name', x.j->>'type', %s, x.j->>'id_token_signed_response_alg', x.s, x.ps, x.pe, x.v, x.ca, x.ua
			FROM unnest($1::text[], $2::text[], $3::text[]::jsonb[], $4::text[], $5::text[], $6::timestamptz[], $7::bigint[],
				$8::timestamptz[], $9::timestamptz[]) AS x(t, c, j, s, ps, pe, v, ca, ua)`,
			s, strings.Join(cols, ", "), strings.Join(values, ", ")),
		// The type never changes: an event that requires another than the
		// row's changes no row, and is refused for it.
		update: fmt.Sprintf(`UPDATE %s.clients c SET name = coalesce(x.j->>'name', c.name), %s,
				id_token_alg = coalesce(x.j->>'id_token_signed_response_alg', c.id_token_alg),
				secret_hash = CASE WHEN x.r THEN x.s ELSE c.secret_hash END,
				previous_secret_hash = CASE WHEN x.r THEN x.ps ELSE c.previous_secret_hash END,
				previous_secret_expires_at = CASE WHEN x.r THEN x.pe ELSE c.previous_secret_expires_at END,
				version = x.v, updated_at = x.ua
			FROM unnest($1::text[], $2::text[], $3::text[]::jsonb[], $4::text[], $5::bool[], $6::text[], $7::text[],
				$8::timestamptz[], $9::bigint[], $10::timestamptz[]) AS x(t, cl, j, ty, r, s, ps, pe, v, ua)
			WHERE c.tenant_id = x.t AND c.client_id = x.cl AND (x.ty IS NULL OR c.type = x.ty)`,
			s, strings.Join(sets, ", ")),
		unassign: fmt.Sprintf(`DELETE FROM %s.client_roles r USING unnest($1::text[], $2::text[], $3::text[]) AS x(t, c, r)
			WHERE r.tenant_id = x.t AND r.client_id = x.c AND r.role = x.r`, s),
		assign: fmt.Sprintf(`INSERT INTO %s.client_roles (tenant_id, client_id, role)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`, s),
	}
}
