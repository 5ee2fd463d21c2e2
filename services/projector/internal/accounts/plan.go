package accounts

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
)

// A plan is the net effect of a run of consecutive events on the tables,
// as a handful of multi-row statements. Planning keeps, per row key, what
// the run knows about the row (unknown, exists, absent) so that executing
// the statements in their fixed order (deletes, inserts, updates,
// assignments) gives the same tables as applying the events one by one.
// When an event would need another order (deleting a row the same run
// inserted, say), planning cuts the run before it and the rest goes into the
// next plan.
type plan struct {
	tenants     map[string]*tenantState
	tenantOrder []string
	users       map[userKey]*userState
	userOrder   []userKey
	roles       map[roleKey]*roleState
	roleOrder   []roleKey
	userRoles   roleAssignments
	clients     map[clientKey]*clientState
	clientOrder []clientKey
	clientRoles roleAssignments

	webhooks     map[webhookKey]*webhookState
	webhookOrder []webhookKey
	// usernames holds the (tenant, username key) pairs registered in this
	// run: a later delete of another user releasing one of them must run
	// after the insert, which the fixed order cannot do.
	usernames map[userKey]bool
	// held holds the (tenant, username key) pairs of the users registered
	// in this run and not deleted since.
	held map[userKey]bool
	// registered are the run's registrations, and deleted the users of the
	// database the run deletes after one of them, each with its event's
	// position in the run: the deletes run before the inserts, so a check
	// makes sure that no registration took a username key that a user
	// deleted after it still held (applying the events one by one would
	// refuse that registration).
	registered, deleted []positioned
	// at is the position in the run of the event being added.
	at int
	// names are the opened usernames of the run's user.registered events,
	// by event id (openNames).
	names map[string]openedName
}

// existence is what a run knows about a row.
type existence int8

const (
	unknown existence = iota // no event of the run touched it; the database knows
	present                  // inserted by the run, or required to exist by an earlier event
	absent                   // deleted by the run
)

type userKey struct{ tenant, id string }

// positioned is a user id or username key of a tenant, and the position
// of the event that names it in the run.
type positioned struct {
	tenant, value string
	at            int64
}

type roleKey struct{ tenant, name string }

// assignKey is a role assignment of a user or of a client (the holder).
type assignKey struct{ tenant, holder, role string }

type tenantRow struct {
	id, name, status string // status "" in a patch: unchanged
	version          int64
	created, updated time.Time
	// settings is the JSON of the settings document as the event holds
	// it (members this build does not know included); nil in a patch:
	// unchanged.
	settings *string
}

type tenantState struct {
	exists existence
	row    *tenantRow // inserted by the run
	patch  *tenantRow // status, version and updated of an existing row
}

type userRow struct {
	tenant, id, username, usernameKey string
	status                            string
	credential                        string // JSON of events.Sealed
	version                           int64
	notBefore                         *time.Time
	created, updated                  time.Time
	profile                           map[string]json.RawMessage // the profile document's members
	emailVerified                     bool
}

// userPatch changes an existing user row; nil fields are left as they are.
type userPatch struct {
	status     *string
	credential *string
	notBefore  *time.Time
	version    int64
	updated    time.Time
	profile    *profileDelta // nil: the profile is unchanged
}

type userState struct {
	exists   existence
	dbDelete bool // the row in the database is deleted first
	// mayBeGone says the row to delete may be gone already: an erasure
	// of a user deleted by an earlier run.
	mayBeGone bool
	row       *userRow
	patch     *userPatch
	// transient says the user was registered and deleted in this run: row
	// is never inserted, but a check makes sure it could have been (its id
	// and username key were free), as applying the events one by one
	// would.
	transient bool
}

type roleRow struct {
	tenant, name     string
	permissions      []string
	description      string
	version          int64
	created, updated time.Time
}

type roleState struct {
	exists   existence
	dbDelete bool
	row      *roleRow // upserted: a row in the database keeps its created_at
}

func newPlan() *plan {
	return &plan{
		tenants:     map[string]*tenantState{},
		users:       map[userKey]*userState{},
		roles:       map[roleKey]*roleState{},
		userRoles:   newRoleAssignments(),
		clients:     map[clientKey]*clientState{},
		clientRoles: newRoleAssignments(),
		webhooks:    map[webhookKey]*webhookState{},
		usernames:   map[userKey]bool{},
		held:        map[userKey]bool{},
	}
}

// empty reports whether the plan changes nothing (a run of ignored events).
func (p *plan) empty() bool {
	return len(p.tenantOrder) == 0 && len(p.userOrder) == 0 && len(p.roleOrder) == 0 && len(p.userRoles.order) == 0 &&
		len(p.clientOrder) == 0 && len(p.clientRoles.order) == 0 && len(p.webhookOrder) == 0
}

// errCut tells planRun that an event must start the next plan.
var errCut = errors.New("cut")

// planRun adds events to a new plan until the end, a cut, or an event that
// cannot be applied. It returns the plan, how many events it took, and the
// error of evs[n] when that event cannot be applied whatever the database
// holds (undecodable, an unknown type or schema, a row the run itself
// deleted). It takes at least one event unless the first is bad.
func planRun(evs []eventstore.Stored, payloads []decoded, names map[string]openedName) (p *plan, n int, bad error) {
	p = newPlan()
	p.names = names
	for i := range evs {
		p.at = i
		if err := p.add(evs[i], payloads[i]); err != nil {
			if errors.Is(err, errCut) {
				return p, i, nil
			}
			return p, i, err
		}
	}
	return p, len(evs), nil
}

// decoded is the payload of an event, decoded once for openNames and
// planning, or why it does not decode.
type decoded struct {
	payload any
	err     error
}

// decodeAll decodes the payloads of evs.
func decodeAll(evs []eventstore.Stored) []decoded {
	out := make([]decoded, len(evs))
	for i := range evs {
		out[i].payload, out[i].err = events.Decode(evs[i].Envelope)
	}
	return out
}

// add adds one event, its payload decoded, to the plan.
func (p *plan) add(st eventstore.Stored, d decoded) error {
	env := st.Envelope
	if err := checkSubject(st.Subject, env); err != nil {
		return err
	}
	payload, err := d.payload, d.err
	if err != nil {
		return err
	}
	at := env.OccurredAt.UTC()
	if env.Version > math.MaxInt64 {
		return fmt.Errorf("version %d is past the range of the version columns", env.Version)
	}
	version := int64(env.Version)
	ev, ok := payload.(events.AccountEvent)
	if !ok {
		// Sign-ins, sessions, codes and browser sessions live on
		// AUTH_ACTIVITY, which this projection does not read.
		return nil
	}
	switch e := ev.(type) {
	case events.TenantCreated:
		s := p.tenant(env.AggregateID)
		if s.exists == present {
			return fmt.Errorf("tenant %s already exists", env.AggregateID)
		}
		s.exists = present
		s.row = &tenantRow{id: env.AggregateID, name: e.Name, status: statusActive, version: version, created: at, updated: at, settings: &emptySettings}
	case events.TenantDisabled:
		return p.tenantStatus(env.AggregateID, statusDisabled, version, at)
	case events.TenantEnabled:
		return p.tenantStatus(env.AggregateID, statusActive, version, at)
	case events.TenantSettingsChanged:
		doc, err := settingsDocument(env.Data)
		if err != nil {
			return err
		}
		p.tenantSettings(env.AggregateID, doc, version, at)
	case events.TenantMailTemplateChanged:
		// The mailer follows the templates in the log and the query
		// service reads them there (ADR 0020): the row only moves on.
		p.tenantVersion(env.AggregateID, version, at)

	case events.UserRegistered:
		opened, err := p.name(env, e)
		if err != nil {
			return err
		}
		k, name := userKey{env.Tenant, env.AggregateID}, userKey{env.Tenant, opened.key}
		if p.held[name] {
			// Another user of this run holds the key: the next run's insert
			// fails on it, so that this event is the one quarantined.
			return errCut
		}
		s := p.user(k)
		switch {
		case s.exists == present:
			return fmt.Errorf("user %s already exists", env.AggregateID)
		case s.row != nil:
			return errCut // registered, deleted and registered again: one row per run
		}
		cred, err := credential(e.Credential)
		if err != nil {
			return err
		}
		email, pname, locale, attrs, err := p.clearProfile(env, e.Email, e.Name, e.Locale, e.Attributes)
		if err != nil {
			return err
		}
		profile, err := profileMembers(email, pname, locale, attrs)
		if err != nil {
			return err
		}
		s.exists = present
		s.row = &userRow{
			tenant: env.Tenant, id: env.AggregateID, username: opened.username, usernameKey: opened.key,
			status: statusActive, credential: cred, version: version, created: at, updated: at, profile: profile,
		}
		p.usernames[name], p.held[name] = true, true
		p.registered = append(p.registered, positioned{env.Tenant, opened.key, int64(p.at)})
	case events.UserPasswordChanged:
		cred, err := credential(e.Credential)
		if err != nil {
			return err
		}
		return p.userChange(env, version, at, func(status, c **string, nb **time.Time) {
			*c, *nb = &cred, &at
		})
	case events.UserPasswordRehashed:
		// The same password, hashed anew: no not-before, nothing revoked.
		cred, err := credential(e.Credential)
		if err != nil {
			return err
		}
		return p.userChange(env, version, at, func(status, c **string, nb **time.Time) {
			*c = &cred
		})
	case events.UserDisabled:
		return p.userChange(env, version, at, func(status, c **string, nb **time.Time) {
			s := statusDisabled
			*status, *nb = &s, &at
		})
	case events.UserEnabled:
		return p.userChange(env, version, at, func(status, c **string, nb **time.Time) {
			s := statusActive
			*status = &s
		})
	case events.UserRoleAssigned:
		if err := p.userChange(env, version, at, nil); err != nil {
			return err
		}
		p.userRoles.set(assignKey{env.Tenant, env.AggregateID, e.Role}, true)
	case events.UserRoleUnassigned:
		if err := p.userChange(env, version, at, nil); err != nil {
			return err
		}
		p.userRoles.set(assignKey{env.Tenant, env.AggregateID, e.Role}, false)
	case events.UserProfileUpdated:
		return p.userProfile(env, version, at, e, nil)
	case events.UserEmailVerified:
		email, err := p.member(env, events.ProfileEmail, e.Email)
		if err != nil {
			return err
		}
		return p.userProfile(env, version, at, events.UserProfileUpdated{}, &email)
	case events.UserInvited:
		// The invitation is the mailer's; the row only moves to the
		// event's version.
		return p.userChange(env, version, at, nil)
	case events.UserMFAEnrolmentStarted, events.UserMFAEnrolled:
		// The login reads a user's factors from the log itself; the row
		// only moves to the event's version.
		return p.userChange(env, version, at, nil)
	case events.UserMFARemoved, events.UserPasskeyRemoved:
		// Removing a factor ends the user's sessions, as a password
		// change does.
		return p.userChange(env, version, at, func(status, c **string, nb **time.Time) {
			*nb = &at
		})
	case events.UserPasskeyRegistrationStarted, events.UserPasskeyRegistered:
		// As for the other factors: the login reads passkeys from the log.
		return p.userChange(env, version, at, nil)
	case events.UserDeleted:
		k := userKey{env.Tenant, env.AggregateID}
		s := p.user(k)
		switch {
		case s.exists == absent:
			return fmt.Errorf("user %s does not exist", env.AggregateID)
		case s.row != nil:
			// Registered in this run: it never reaches the table.
			s.exists, s.transient = absent, true
			delete(p.held, userKey{env.Tenant, s.row.usernameKey})
		default:
			// The event no longer names the username it releases, and the
			// delete runs before the run's inserts: when a user registered
			// earlier in the run took that username, a check refuses the
			// run (queue), and it is applied one event at a time.
			s.exists, s.dbDelete, s.patch = absent, true, nil
			if len(p.usernames) > 0 {
				p.deleted = append(p.deleted, positioned{env.Tenant, env.AggregateID, int64(p.at)})
			}
		}
		p.userRoles.drop(env.Tenant, env.AggregateID)
	case events.UserErased:
		// The person is forgotten: the row goes, whether or not the user
		// was deleted before (ADR 0015).
		k := userKey{env.Tenant, env.AggregateID}
		s := p.user(k)
		switch {
		case s.row != nil:
			s.exists, s.transient = absent, true
			delete(p.held, userKey{env.Tenant, s.row.usernameKey})
		default:
			// A user deleted before is erased too: its row is gone already,
			// so the delete does not require it (unless this run deletes
			// it). The username it releases is checked as a delete's.
			if !s.dbDelete {
				s.mayBeGone = true
			}
			s.exists, s.dbDelete, s.patch = absent, true, nil
			if len(p.usernames) > 0 {
				p.deleted = append(p.deleted, positioned{env.Tenant, env.AggregateID, int64(p.at)})
			}
		}
		p.userRoles.drop(env.Tenant, env.AggregateID)

	case events.RoleDefined:
		set, err := authz.ParseSet(e.Permissions)
		if err != nil {
			return fmt.Errorf("role %s: %w", env.AggregateID, err)
		}
		perms := set.Strings()
		s := p.role(roleKey{env.Tenant, env.AggregateID})
		s.exists = present
		if s.row != nil {
			s.row.permissions, s.row.description, s.row.version, s.row.updated = perms, e.Description, version, at
			return nil
		}
		s.row = &roleRow{
			tenant: env.Tenant, name: env.AggregateID, permissions: perms, description: e.Description,
			version: version, created: at, updated: at,
		}
	case events.RoleDeleted:
		// The row in the database is deleted first and the run's own
		// definitions are dropped: the net effect of defining and deleting.
		// A definition after this one inserts a fresh row.
		s := p.role(roleKey{env.Tenant, env.AggregateID})
		s.exists, s.dbDelete, s.row = absent, true, nil

	case events.ClientRegistered:
		return p.registerClient(env, e, version, at)
	case events.ClientUpdated:
		return p.updateClient(env, e, version, at)
	case events.ClientSecretRotated:
		return p.rotateClientSecret(env, e, version, at)
	case events.ClientRoleAssigned:
		return p.assignClientRole(env, e.Role, true, version, at)
	case events.ClientRoleUnassigned:
		return p.assignClientRole(env, e.Role, false, version, at)
	case events.ClientDeleted:
		return p.deleteClient(env)

	case events.WebhookRegistered, events.WebhookUpdated, events.WebhookSecretRotated, events.WebhookPaused,
		events.WebhookResumed, events.WebhookReplayRequested, events.WebhookDeleted:
		we, _ := e.(events.WebhookEvent) // every one of these is
		return p.webhook(env, we, version, at)

	case events.KeyCreated, events.KeyRetired, events.AuditKeyCreated, events.AuditKeyRetired:
		// Keys are state of the key store, not of this projection: their
		// events are consumed (the checkpoint passes them) without effect.
	}
	return nil
}

const (
	statusActive   = "active"
	statusDisabled = "disabled"
)

func (p *plan) tenant(id string) *tenantState { return entry(p.tenants, &p.tenantOrder, id) }

func (p *plan) user(k userKey) *userState { return entry(p.users, &p.userOrder, k) }

func (p *plan) role(k roleKey) *roleState { return entry(p.roles, &p.roleOrder, k) }

// entry returns what the run knows of the row of key k, a new state
// appended to order when it knows nothing yet.
func entry[K comparable, S any](states map[K]*S, order *[]K, k K) *S {
	s, ok := states[k]
	if !ok {
		s = new(S)
		states[k] = s
		*order = append(*order, k)
	}
	return s
}

// roleAssignments are the role assignments of users, or of clients, that
// a run changes: the last change of each, in the order first changed.
type roleAssignments struct {
	on       map[assignKey]bool // true: assigned, false: unassigned
	order    []assignKey
	byHolder map[assignKey][]assignKey // keyed by tenant and holder, role ""
}

func newRoleAssignments() roleAssignments {
	return roleAssignments{on: map[assignKey]bool{}, byHolder: map[assignKey][]assignKey{}}
}

// set records that the run assigns (on) or unassigns a role.
func (a *roleAssignments) set(k assignKey, on bool) {
	if _, ok := a.on[k]; !ok {
		a.order = append(a.order, k)
		h := assignKey{tenant: k.tenant, holder: k.holder}
		a.byHolder[h] = append(a.byHolder[h], k)
	}
	a.on[k] = on
}

// drop forgets the run's changes of a holder that the run deletes: the
// delete takes its rows with it, and the run's changes would outlive it.
func (a *roleAssignments) drop(tenant, holder string) {
	h := assignKey{tenant: tenant, holder: holder}
	for _, k := range a.byHolder[h] {
		delete(a.on, k)
	}
	delete(a.byHolder, h)
}

// columns returns the assignments and the unassignments as columns of
// tenants, holders and roles.
func (a *roleAssignments) columns() (on, off [3][]string) {
	for _, k := range a.order {
		v, ok := a.on[k]
		if !ok {
			continue
		}
		c := &off
		if v {
			c = &on
		}
		c[0], c[1], c[2] = append(c[0], k.tenant), append(c[1], k.holder), append(c[2], k.role)
	}
	return on, off
}

func (p *plan) tenantStatus(id, status string, version int64, at time.Time) error {
	s := p.tenant(id)
	s.exists = present
	switch {
	case s.row != nil:
		s.row.status, s.row.version, s.row.updated = status, version, at
	case s.patch != nil:
		s.patch.status, s.patch.version, s.patch.updated = status, version, at
	default:
		s.patch = &tenantRow{id: id, status: status, version: version, updated: at}
	}
	return nil
}

// tenantVersion records a tenant event that changes nothing of its row
// but the version.
func (p *plan) tenantVersion(id string, version int64, at time.Time) {
	s := p.tenant(id)
	s.exists = present
	switch {
	case s.row != nil:
		s.row.version, s.row.updated = version, at
	case s.patch != nil:
		s.patch.version, s.patch.updated = version, at
	default:
		s.patch = &tenantRow{id: id, version: version, updated: at}
	}
}

// emptySettings is the settings document of a tenant that never changed
// its settings.
var emptySettings = "{}"

// tenantSettings records a tenant's new settings document.
func (p *plan) tenantSettings(id, doc string, version int64, at time.Time) {
	s := p.tenant(id)
	s.exists = present
	switch {
	case s.row != nil:
		s.row.settings, s.row.version, s.row.updated = &doc, version, at
	case s.patch != nil:
		s.patch.settings, s.patch.version, s.patch.updated = &doc, version, at
	default:
		s.patch = &tenantRow{id: id, version: version, updated: at, settings: &doc}
	}
}

// settingsDocument returns the settings document of a tenant.settings_changed
// payload as the event holds it, so that members a newer writer added stay
// in the read model for a reader that knows them.
func settingsDocument(data []byte) (string, error) {
	var p struct {
		Settings json.RawMessage `json:"settings"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return "", fmt.Errorf("settings document: %w", err)
	}
	if len(p.Settings) == 0 || p.Settings[0] != '{' {
		return "", errors.New("settings document: not an object")
	}
	return string(p.Settings), nil
}

// userChange records a change of an existing user: its version and
// updated_at always, the other fields as set sets them.
func (p *plan) userChange(env events.Envelope, version int64, at time.Time, set func(status, cred **string, notBefore **time.Time)) error {
	s := p.user(userKey{env.Tenant, env.AggregateID})
	if s.exists == absent {
		return fmt.Errorf("user %s does not exist", env.AggregateID)
	}
	s.exists = present
	if s.row != nil {
		var status, cred *string
		var nb *time.Time
		if set != nil {
			set(&status, &cred, &nb)
		}
		if status != nil {
			s.row.status = *status
		}
		if cred != nil {
			s.row.credential = *cred
		}
		if nb != nil {
			s.row.notBefore = nb
		}
		s.row.version, s.row.updated = version, at
		return nil
	}
	if s.patch == nil {
		s.patch = &userPatch{}
	}
	if set != nil {
		set(&s.patch.status, &s.patch.credential, &s.patch.notBefore)
	}
	s.patch.version, s.patch.updated = version, at
	return nil
}

// credential returns the JSON the users table keeps of a sealed password
// hash: the value as the event carries it.
func credential(s events.Sealed) (string, error) {
	if s.IsZero() {
		return "", errors.New("credential is missing")
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	return string(b), nil
}

// checkSubject makes sure an event is stored where its envelope says it
// belongs: a message copied to another subject must not change another
// tenant's rows.
func checkSubject(subject string, env events.Envelope) error {
	if storedOn(subject, env) {
		return nil
	}
	want := events.StoredSubject(env.Tenant, env.Aggregate, env.AggregateID)
	if want == "" {
		return fmt.Errorf("event %s is of aggregate %q, which this projector does not know", env.ID, env.Aggregate)
	}
	return fmt.Errorf("event %s is stored on %q, its envelope belongs on %q", env.ID, subject, want)
}

// storedOn reports whether subject is events.StoredSubject of the
// envelope's tenant, aggregate and id, without building that string: it
// is checked for every event applied.
func storedOn(subject string, env events.Envelope) bool {
	var prefix string
	switch events.StreamFor(env.Aggregate) {
	case events.StreamEvents:
		prefix = events.SubjectPrefixEvents
	case events.StreamActivity:
		prefix = events.SubjectPrefixActivity
	default:
		return false
	}
	rest, ok := strings.CutPrefix(subject, prefix)
	for _, token := range [...]string{env.Tenant, env.Aggregate, env.AggregateID} {
		if !ok {
			return false
		}
		if rest, ok = strings.CutPrefix(rest, "."); ok {
			rest, ok = strings.CutPrefix(rest, token)
		}
	}
	return ok && len(rest) > 1 && rest[0] == '.' && rest[1:] == strconv.Itoa(events.Partition(env.Tenant))
}

// joinPermissions packs canonical permissions into one text value for a
// multi-row statement; canonical permissions never contain a comma.
func joinPermissions(perms []string) string { return strings.Join(perms, ",") }
