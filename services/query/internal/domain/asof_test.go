package domain_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// histStart is when the test histories begin; event i occurs histStart + i minutes.
var histStart = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)

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

// mustUserHistory is alice's account: registered (histStart), assigned billing
// (histStart+1m), password changed (histStart+2m), disabled (histStart+3m), enabled (histStart+4m),
// unassigned billing (histStart+5m), deleted (histStart+6m).
func mustUserHistory(tb testing.TB, id string) []events.Envelope {
	tb.Helper()
	c := &chain{tenant: "acme", aggregate: events.AggregateUser, id: id, at: histStart}
	sealed := events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: []byte("sealed bytes")}
	c.add(tb, events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("alice"), UsernameKey: events.LegacyPersonal("alice"), Credential: sealed}).
		add(tb, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "billing"}).
		add(tb, events.TypeUserPasswordChanged, events.UserPasswordChanged{Credential: sealed}).
		add(tb, events.TypeUserDisabled, events.UserDisabled{Reason: "left"}).
		add(tb, events.TypeUserEnabled, events.UserEnabled{}).
		add(tb, events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: "billing"}).
		add(tb, events.TypeUserDeleted, events.UserDeleted{})
	return c.envs
}

func TestUserAsOf(t *testing.T) {
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
		{"before registration", histStart.Add(-time.Second), 0, domain.StatusAbsent, []string{}, ""},
		{"at registration", histStart, 1, domain.StatusActive, []string{}, ""},
		{"between registration and assignment", histStart.Add(59 * time.Second), 1, domain.StatusActive, []string{}, ""},
		{"after assignment", histStart.Add(time.Minute), 2, domain.StatusActive, []string{"billing"}, ""},
		{"disabled", histStart.Add(3*time.Minute + time.Second), 4, domain.StatusDisabled, []string{"billing"}, "left"},
		{"enabled again", histStart.Add(4 * time.Minute), 5, domain.StatusActive, []string{"billing"}, ""},
		{"unassigned", histStart.Add(5 * time.Minute), 6, domain.StatusActive, []string{}, ""},
		{"deleted", histStart.Add(time.Hour), 7, domain.StatusDeleted, []string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, v, err := domain.UserAsOf(id, envs, tc.asOf)
			if err != nil {
				t.Fatal(err)
			}
			if v != tc.wantVersion || s.Status != tc.wantStatus || !slices.Equal(s.Roles, tc.wantRoles) || s.Reason != tc.wantReason {
				t.Errorf("UserAsOf = %+v version %d, want status %s roles %v reason %q version %d",
					s, v, tc.wantStatus, tc.wantRoles, tc.wantReason, tc.wantVersion)
			}
			if v > 0 && (s.Username != "alice" || !s.CreatedAt.Equal(histStart)) {
				t.Errorf("username %q created %v", s.Username, s.CreatedAt)
			}
			if v >= 3 && !s.PasswordChangedAt.Equal(histStart.Add(2*time.Minute)) {
				t.Errorf("password changed at %v", s.PasswordChangedAt)
			}
		})
	}
}

func TestUserAsOf_refusesOtherAggregates(t *testing.T) {
	t.Parallel()
	role := (&chain{tenant: "acme", aggregate: events.AggregateRole, id: "billing", at: histStart}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*"}}).envs
	if _, _, err := domain.UserAsOf("x", role, histStart.Add(time.Hour)); err == nil {
		t.Error("UserAsOf folded a role's events")
	}
}

func TestRoleAsOf(t *testing.T) {
	t.Parallel()
	envs := (&chain{tenant: "acme", aggregate: events.AggregateRole, id: "billing", at: histStart}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:read"}, Description: "billing staff"}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*", "reports:read"}}).
		add(t, events.TypeRoleDeleted, events.RoleDeleted{}).envs
	for _, tc := range []struct {
		name       string
		asOf       time.Time
		wantStatus string
		wantPerms  []string
	}{
		{"before", histStart.Add(-time.Minute), domain.StatusAbsent, []string{}},
		{"defined", histStart, domain.StatusDefined, []string{"invoices:read"}},
		{"redefined", histStart.Add(90 * time.Second), domain.StatusDefined, []string{"invoices:*", "reports:read"}},
		{"deleted", histStart.Add(2 * time.Minute), domain.StatusDeleted, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _, err := domain.RoleAsOf("billing", envs, tc.asOf)
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != tc.wantStatus || !slices.Equal(s.Permissions, tc.wantPerms) {
				t.Errorf("RoleAsOf = %+v, want %s %v", s, tc.wantStatus, tc.wantPerms)
			}
		})
	}
}

func TestSigninsAsOf(t *testing.T) {
	t.Parallel()
	id := events.NewID()
	until := histStart.Add(time.Hour)
	envs := (&chain{tenant: "acme", aggregate: events.AggregateSignin, id: id, at: histStart}).
		add(t, events.TypeSigninFailed, events.SigninFailed{Reason: "password", Failures: 1}).
		add(t, events.TypeSigninLocked, events.SigninLocked{Until: until, Failures: 2}).
		add(t, events.TypeSigninSucceeded, events.SigninSucceeded{}).envs
	s, v, err := domain.SigninsAsOf(id, envs, histStart.Add(time.Minute))
	if err != nil || v != 2 || s.Failures != 2 || !s.LockedUntil.Equal(until) || !s.LastFailedAt.Equal(histStart) {
		t.Errorf("locked: %+v version %d, %v", s, v, err)
	}
	s, v, err = domain.SigninsAsOf(id, envs, histStart.Add(time.Hour))
	if err != nil || v != 3 || s.Failures != 0 || !s.LockedUntil.IsZero() || !s.LastSucceededAt.Equal(histStart.Add(2*time.Minute)) {
		t.Errorf("after success: %+v version %d, %v", s, v, err)
	}
}

// TestTenantAsOf_Holders replays a tenant whose permissions change over time
// and asks who held invoices:approve at several instants.
func TestTenantAsOf_Holders(t *testing.T) {
	t.Parallel()
	// Each chain's events are one minute apart from histStart.
	tenant := (&chain{tenant: "acme", aggregate: events.AggregateTenant, id: "acme", at: histStart}).
		add(t, events.TypeTenantCreated, events.TenantCreated{Name: "Acme"}).
		add(t, events.TypeTenantDisabled, events.TenantDisabled{}).
		add(t, events.TypeTenantEnabled, events.TenantEnabled{}).envs
	billing := (&chain{tenant: "acme", aggregate: events.AggregateRole, id: "billing", at: histStart}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*"}}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*", "reports:read"}}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*"}}).
		add(t, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:read"}}).
		add(t, events.TypeRoleDeleted, events.RoleDeleted{}).envs
	user := func(name, role string) *chain {
		return (&chain{tenant: "acme", aggregate: events.AggregateUser, id: events.NewID(), at: histStart}).
			add(t, events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal(name), UsernameKey: events.LegacyPersonal(name)}).
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
		{"before the tenant", histStart.Add(-time.Second), domain.StatusAbsent, nil},
		{"registered, no roles yet", histStart.Add(30 * time.Second), domain.StatusActive, nil},
		{"tenant disabled", histStart.Add(90 * time.Second), domain.StatusDisabled, nil},
		{"tenant enabled", histStart.Add(2*time.Minute + time.Second), domain.StatusActive, []string{"ada", "bob", "carol"}},
		{"billing narrowed, carol disabled", histStart.Add(3*time.Minute + time.Second), domain.StatusActive, []string{"ada"}},
		{"billing deleted", histStart.Add(time.Hour), domain.StatusActive, []string{"ada"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := domain.NewTenantAsOf(tc.at)
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

// TestUserAsOf_profile follows a profile through time: set at
// registration, the address verified, changed (no longer verified) with
// the locale removed, and gone with the user.
func TestUserAsOf_profile(t *testing.T) {
	t.Parallel()
	id := events.NewID()
	c := &chain{tenant: "acme", aggregate: events.AggregateUser, id: id, at: histStart}
	sealed := events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: []byte("sealed bytes")}
	c.add(t, events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("alice"), UsernameKey: events.LegacyPersonal("alice"), Credential: sealed,
		Email: events.LegacyPersonal("alice@acme.example"), Name: events.LegacyPersonal("Alice"), Locale: events.LegacyPersonal("fr"), Attributes: events.LegacyPersonal(string(events.RawJSON(`{"team":"red"}`)))}).
		add(t, events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("alice@acme.example")}).
		add(t, events.TypeUserProfileUpdated, events.UserProfileUpdated{Email: events.LegacyPersonal("ali@acme.example"), Removed: []string{"locale"}}).
		add(t, events.TypeUserDeleted, events.UserDeleted{})
	for _, tc := range []struct {
		version uint64
		want    string // email verified name locale attributes
	}{
		{1, `alice@acme.example false Alice fr {"team":"red"}`},
		{2, `alice@acme.example true Alice fr {"team":"red"}`},
		{3, `ali@acme.example false Alice  {"team":"red"}`},
		{4, `false   `},
	} {
		s, v, err := domain.UserAsOf(id, c.envs[:tc.version], histStart.Add(time.Hour))
		if err != nil || v != tc.version {
			t.Fatalf("version %d: %v (folded %d)", tc.version, err, v)
		}
		if got := strings.TrimSpace(fmt.Sprintf("%s %v %s %s %s", s.Email, s.EmailVerified, s.Name, s.Locale, s.Attributes)); got != strings.TrimSpace(tc.want) {
			t.Errorf("version %d: profile %q, want %q", tc.version, got, tc.want)
		}
	}
}
