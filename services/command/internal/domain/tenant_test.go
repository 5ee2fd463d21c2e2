package domain_test

import (
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

var (
	tenantCreated  = ev(events.TypeTenantCreated, events.TenantCreated{Name: "Acme"})
	tenantDisabled = ev(events.TypeTenantDisabled, events.TenantDisabled{Reason: "unpaid"})
	tenantEnabled  = ev(events.TypeTenantEnabled, events.TenantEnabled{})
)

type tenantState struct {
	Exists  bool
	Name    string
	Status  domain.Status
	Reason  string
	Version uint64
}

func stateOfTenant(t *domain.Tenant) tenantState {
	return tenantState{t.Exists(), t.Name(), t.Status(), t.DisabledReason(), t.Version()}
}

func TestTenant_Commands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		id      string
		history []domain.Pending
		cmd     func(*domain.Tenant) error
		wantErr error
		want    []domain.Pending
	}{
		{name: "create", cmd: func(x *domain.Tenant) error { return x.Create("Acme") }, want: []domain.Pending{tenantCreated}},
		{name: "create twice", history: []domain.Pending{tenantCreated}, cmd: func(x *domain.Tenant) error { return x.Create("Acme") }, wantErr: domain.ErrTenantExists},
		{name: "create disabled", history: []domain.Pending{tenantCreated, tenantDisabled}, cmd: func(x *domain.Tenant) error { return x.Create("Acme") }, wantErr: domain.ErrTenantExists},
		{name: "create platform", id: "platform", cmd: func(x *domain.Tenant) error { return x.Create("Platform") }, wantErr: domain.ErrReservedTenant},
		{name: "create empty name", cmd: func(x *domain.Tenant) error { return x.Create("") }, wantErr: domain.ErrInvalidText},
		{name: "create long name", cmd: func(x *domain.Tenant) error { return x.Create(strings.Repeat("é", domain.MaxTenantNameLen+1)) }, wantErr: domain.ErrInvalidText},
		{name: "create longest name", cmd: func(x *domain.Tenant) error { return x.Create(strings.Repeat("é", domain.MaxTenantNameLen)) }, want: []domain.Pending{ev(events.TypeTenantCreated, events.TenantCreated{Name: strings.Repeat("é", domain.MaxTenantNameLen)})}},
		{name: "create name with newline", cmd: func(x *domain.Tenant) error { return x.Create("Ac\nme") }, wantErr: domain.ErrInvalidText},
		{name: "create name with surrounding space", cmd: func(x *domain.Tenant) error { return x.Create(" Acme") }, wantErr: domain.ErrInvalidText},
		{name: "create name not utf-8", cmd: func(x *domain.Tenant) error { return x.Create("Ac\xffme") }, wantErr: domain.ErrInvalidText},

		{name: "bootstrap platform", id: "platform", cmd: func(x *domain.Tenant) error { return x.CreatePlatform("Platform") }, want: []domain.Pending{ev(events.TypeTenantCreated, events.TenantCreated{Name: "Platform"})}},
		{name: "bootstrap platform again", id: "platform", history: []domain.Pending{ev(events.TypeTenantCreated, events.TenantCreated{Name: "Platform"})}, cmd: func(x *domain.Tenant) error { return x.CreatePlatform("Other") }},
		{name: "bootstrap other tenant", cmd: func(x *domain.Tenant) error { return x.CreatePlatform("Acme") }, wantErr: domain.ErrPlatformTenant},
		{name: "bootstrap empty name", id: "platform", cmd: func(x *domain.Tenant) error { return x.CreatePlatform("") }, wantErr: domain.ErrInvalidText},

		{name: "disable", history: []domain.Pending{tenantCreated}, cmd: func(x *domain.Tenant) error { return x.Disable("unpaid") }, want: []domain.Pending{tenantDisabled}},
		{name: "disable without reason", history: []domain.Pending{tenantCreated}, cmd: func(x *domain.Tenant) error { return x.Disable("") }, want: []domain.Pending{ev(events.TypeTenantDisabled, events.TenantDisabled{})}},
		{name: "disable disabled is a no-op", history: []domain.Pending{tenantCreated, tenantDisabled}, cmd: func(x *domain.Tenant) error { return x.Disable("another reason") }},
		{name: "disable absent", cmd: func(x *domain.Tenant) error { return x.Disable("") }, wantErr: domain.ErrTenantNotFound},
		{name: "disable platform", id: "platform", history: []domain.Pending{tenantCreated}, cmd: func(x *domain.Tenant) error { return x.Disable("") }, wantErr: domain.ErrPlatformTenant},
		{name: "disable long reason", history: []domain.Pending{tenantCreated}, cmd: func(x *domain.Tenant) error { return x.Disable(strings.Repeat("x", domain.MaxReasonLen+1)) }, wantErr: domain.ErrInvalidText},
		{name: "disable reason with control", history: []domain.Pending{tenantCreated}, cmd: func(x *domain.Tenant) error { return x.Disable("a\x00b") }, wantErr: domain.ErrInvalidText},

		{name: "enable disabled", history: []domain.Pending{tenantCreated, tenantDisabled}, cmd: (*domain.Tenant).Enable, want: []domain.Pending{tenantEnabled}},
		{name: "enable active is a no-op", history: []domain.Pending{tenantCreated}, cmd: (*domain.Tenant).Enable},
		{name: "enable re-enabled is a no-op", history: []domain.Pending{tenantCreated, tenantDisabled, tenantEnabled}, cmd: (*domain.Tenant).Enable},
		{name: "enable absent", cmd: (*domain.Tenant).Enable, wantErr: domain.ErrTenantNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := tc.id
			if id == "" {
				id = "acme"
			}
			tenant := mustLoadTenant(t, id, tc.history...)
			checkErr(t, tc.cmd(tenant), tc.wantErr)
			checkRecorded(t, tenant, len(tc.history), tc.want)
			// The state a command leaves is the state its events fold into.
			reloaded := mustLoadTenant(t, id, append(tc.history, tenant.Pending()...)...)
			if got, want := stateOfTenant(reloaded), stateOfTenant(tenant); got != want {
				t.Fatalf("reloaded state %+v, want %+v", got, want)
			}
		})
	}
}

func TestLoadTenant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		history []domain.Pending
		want    tenantState
	}{
		{name: "absent", want: tenantState{}},
		{name: "created", history: []domain.Pending{tenantCreated}, want: tenantState{true, "Acme", domain.StatusActive, "", 1}},
		{name: "disabled", history: []domain.Pending{tenantCreated, tenantDisabled}, want: tenantState{true, "Acme", domain.StatusDisabled, "unpaid", 2}},
		{name: "enabled again", history: []domain.Pending{tenantCreated, tenantDisabled, tenantEnabled}, want: tenantState{true, "Acme", domain.StatusActive, "", 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tenant := mustLoadTenant(t, "acme", tc.history...)
			if got := stateOfTenant(tenant); got != tc.want {
				t.Fatalf("state %+v, want %+v", got, tc.want)
			}
			if tenant.ID() != "acme" || tenant.Kind() != events.AggregateTenant || tenant.LoadedVersion() != tc.want.Version || tenant.Pending() != nil {
				t.Fatalf("ID %q Kind %q LoadedVersion %d Pending %v", tenant.ID(), tenant.Kind(), tenant.LoadedVersion(), tenant.Pending())
			}
		})
	}
}

func TestLoadTenant_invalidID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "a", "Acme", "acme.corp", "-acme", "acme*", strings.Repeat("a", 64)} {
		_, err := domain.LoadTenant(id, nil)
		checkErr(t, err, domain.ErrInvalidTenant)
	}
}

func TestTenant_RequireActive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		history []domain.Pending
		wantErr error
	}{
		{name: "absent", wantErr: domain.ErrTenantNotFound},
		{name: "active", history: []domain.Pending{tenantCreated}},
		{name: "disabled", history: []domain.Pending{tenantCreated, tenantDisabled}, wantErr: domain.ErrTenantDisabled},
		{name: "enabled again", history: []domain.Pending{tenantCreated, tenantDisabled, tenantEnabled}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, mustLoadTenant(t, "acme", tc.history...).RequireActive(), tc.wantErr)
		})
	}
}
