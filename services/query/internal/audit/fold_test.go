package audit_test

import (
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/audit"
)

// t0 is the start of the test histories; event i occurs at t0 + i minutes.
var t0 = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)

// chain builds one aggregate's history: the payloads in order, chained,
// one minute apart from at.
type chain struct {
	tenant, aggregate, id string
	at                    time.Time
	envs                  []events.Envelope
}

func (c *chain) add(tb testing.TB, typ string, data any) *chain {
	tb.Helper()
	e, err := events.New(typ, data, events.Meta{
		Tenant: c.tenant, Aggregate: c.aggregate, AggregateID: c.id,
		OccurredAt: c.at.Add(time.Duration(len(c.envs)) * time.Minute), Actor: events.System,
	})
	if err != nil {
		tb.Fatal(err)
	}
	prev := ""
	if n := len(c.envs); n > 0 {
		prev = c.envs[n-1].Hash
	}
	if err := events.Chain(prev, uint64(len(c.envs))+1, &e); err != nil {
		tb.Fatal(err)
	}
	c.envs = append(c.envs, e)
	return c
}

// mustUserHistory is alice's account: registered (t0), assigned billing
// (t0+1m), password changed (t0+2m), disabled (t0+3m), enabled (t0+4m),
// unassigned billing (t0+5m), deleted (t0+6m).
func mustUserHistory(tb testing.TB, id string) []events.Envelope {
	tb.Helper()
	c := &chain{tenant: "acme", aggregate: events.AggregateUser, id: id, at: t0}
	sealed := events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: []byte("sealed bytes")}
	c.add(tb, events.TypeUserRegistered, events.UserRegistered{Username: "alice", UsernameKey: "alice", Credential: sealed}).
		add(tb, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "billing"}).
		add(tb, events.TypeUserPasswordChanged, events.UserPasswordChanged{Credential: sealed}).
		add(tb, events.TypeUserDisabled, events.UserDisabled{Reason: "left"}).
		add(tb, events.TypeUserEnabled, events.UserEnabled{}).
		add(tb, events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: "billing"}).
		add(tb, events.TypeUserDeleted, events.UserDeleted{UsernameKey: "alice"})
	return c.envs
}

func TestFoldUser(t *testing.T) {
	t.Parallel()
	id := events.NewID()
	envs := mustUserHistory(t, id)
	for _, tc := range []struct {
		name        string
		asOf        time.Time
		wantVersion uint64
		wantStatus  string
		wantRoles   []string
		wantReason  string
	}{
		{"before registration", t0.Add(-time.Second), 0, audit.StatusAbsent, []string{}, ""},
		{"at registration", t0, 1, audit.StatusActive, []string{}, ""},
		{"between registration and assignment", t0.Add(59 * time.Second), 1, audit.StatusActive, []string{}, ""},
		{"after assignment", t0.Add(time.Minute), 2, audit.StatusActive, []string{"billing"}, ""},
		{"disabled", t0.Add(3*time.Minute + time.Second), 4, audit.StatusDisabled, []string{"billing"}, "left"},
		{"enabled again", t0.Add(4 * time.Minute), 5, audit.StatusActive, []string{"billing"}, ""},
		{"unassigned", t0.Add(5 * time.Minute), 6, audit.StatusActive, []string{}, ""},
		{"deleted", t0.Add(time.Hour), 7, audit.StatusDeleted, []string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, v, err := audit.FoldUser(id, envs, tc.asOf)
			if err != nil {
				t.Fatal(err)
			}
			if v != tc.wantVersion || s.Status != tc.wantStatus || !slices.Equal(s.Roles, tc.wantRoles) || s.Reason != tc.wantReason {
				t.Errorf("FoldUser = %+v version %d, want status %s roles %v reason %q version %d",
					s, v, tc.wantStatus, tc.wantRoles, tc.wantReason, tc.wantVersion)
			}
			if v > 0 && (s.Username != "alice" || !s.CreatedAt.Equal(t0)) {
				t.Errorf("username %q created %v", s.Username, s.CreatedAt)
			}
			if v >= 3 && !s.PasswordChangedAt.Equal(t0.Add(2*time.Minute)) {
				t.Errorf("password changed at %v", s.PasswordChangedAt)
			}
		})
	}
}

func TestFoldUser_refusesOtherAggregates(t *testing.T) {
	t.Parallel()
	role := (&chain{tenant: "acme", aggregate: events.AggregateRole, id: "billing", at: t0}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*"}}).envs
	if _, _, err := audit.FoldUser("x", role, t0.Add(time.Hour)); err == nil {
		t.Error("FoldUser folded a role's events")
	}
}

func TestFoldRole(t *testing.T) {
	t.Parallel()
	envs := (&chain{tenant: "acme", aggregate: events.AggregateRole, id: "billing", at: t0}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:read"}, Description: "billing staff"}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*", "reports:read"}}).
		add(t, events.TypeRoleDeleted, events.RoleDeleted{}).envs
	for _, tc := range []struct {
		name       string
		asOf       time.Time
		wantStatus string
		wantPerms  []string
	}{
		{"before", t0.Add(-time.Minute), audit.StatusAbsent, []string{}},
		{"defined", t0, audit.StatusDefined, []string{"invoices:read"}},
		{"redefined", t0.Add(90 * time.Second), audit.StatusDefined, []string{"invoices:*", "reports:read"}},
		{"deleted", t0.Add(2 * time.Minute), audit.StatusDeleted, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _, err := audit.FoldRole("billing", envs, tc.asOf)
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != tc.wantStatus || !slices.Equal(s.Permissions, tc.wantPerms) {
				t.Errorf("FoldRole = %+v, want %s %v", s, tc.wantStatus, tc.wantPerms)
			}
		})
	}
}

func TestFoldSignin(t *testing.T) {
	t.Parallel()
	id := events.NewID()
	until := t0.Add(time.Hour)
	envs := (&chain{tenant: "acme", aggregate: events.AggregateSignin, id: id, at: t0}).
		add(t, events.TypeSigninFailed, events.SigninFailed{Reason: "password", Failures: 1}).
		add(t, events.TypeSigninLocked, events.SigninLocked{Until: until, Failures: 2}).
		add(t, events.TypeSigninSucceeded, events.SigninSucceeded{}).envs
	s, v, err := audit.FoldSignin(id, envs, t0.Add(time.Minute))
	if err != nil || v != 2 || s.Failures != 2 || !s.LockedUntil.Equal(until) || !s.LastFailedAt.Equal(t0) {
		t.Errorf("locked: %+v version %d, %v", s, v, err)
	}
	s, v, err = audit.FoldSignin(id, envs, t0.Add(time.Hour))
	if err != nil || v != 3 || s.Failures != 0 || !s.LockedUntil.IsZero() || !s.LastSucceededAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("after success: %+v version %d, %v", s, v, err)
	}
}

// TestTenant_Holders replays a tenant whose permissions change over time
// and asks who held invoices:approve at several instants.
func TestTenant_Holders(t *testing.T) {
	t.Parallel()
	// Each chain's events are one minute apart from t0.
	tenant := (&chain{tenant: "acme", aggregate: events.AggregateTenant, id: "acme", at: t0}).
		add(t, events.TypeTenantCreated, events.TenantCreated{Name: "Acme"}).
		add(t, events.TypeTenantDisabled, events.TenantDisabled{}).
		add(t, events.TypeTenantEnabled, events.TenantEnabled{}).envs
	billing := (&chain{tenant: "acme", aggregate: events.AggregateRole, id: "billing", at: t0}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*"}}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*", "reports:read"}}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*"}}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:read"}}).
		add(t, events.TypeRoleDeleted, events.RoleDeleted{}).envs
	user := func(name, role string) *chain {
		return (&chain{tenant: "acme", aggregate: events.AggregateUser, id: events.NewID(), at: t0}).
			add(t, events.TypeUserRegistered, events.UserRegistered{Username: name, UsernameKey: name}).
			add(t, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: role})
	}
	ada := user("ada", "admin").envs
	bob := user("bob", "billing").envs
	carol := user("carol", "billing").
		add(t, events.TypeUserPasswordChanged, events.UserPasswordChanged{}).
		add(t, events.TypeUserDisabled, events.UserDisabled{}).envs
	all := slices.Concat(tenant, billing, ada, bob, carol)

	perm := authz.MustParse("invoices:approve")
	for _, tc := range []struct {
		name       string
		at         time.Time
		wantStatus string
		want       []string
	}{
		{"before the tenant", t0.Add(-time.Second), audit.StatusAbsent, nil},
		{"registered, no roles yet", t0.Add(30 * time.Second), audit.StatusActive, nil},
		{"tenant disabled", t0.Add(90 * time.Second), audit.StatusDisabled, nil},
		{"tenant enabled", t0.Add(2*time.Minute + time.Second), audit.StatusActive, []string{"ada", "bob", "carol"}},
		{"billing narrowed, carol disabled", t0.Add(3*time.Minute + time.Second), audit.StatusActive, []string{"ada"}},
		{"billing deleted", t0.Add(time.Hour), audit.StatusActive, []string{"ada"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := audit.NewTenant(tc.at)
			for _, e := range all {
				if err := r.Apply(e); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, h := range r.Holders(perm) {
				got = append(got, h.Username)
			}
			if r.Status() != tc.wantStatus || !slices.Equal(got, tc.want) {
				t.Errorf("status %s holders %v, want %s %v", r.Status(), got, tc.wantStatus, tc.want)
			}
		})
	}
}
