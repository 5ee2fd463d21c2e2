package domain

import (
	"fmt"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
)

// MaxTenantNameLen is the longest tenant display name, in characters.
const MaxTenantNameLen = 128

// MaxReasonLen is the longest reason given for disabling a tenant or user,
// in characters.
const MaxReasonLen = 512

// Tenant is the tenant aggregate; its id is the tenant slug. A tenant is
// created once, and then is either active or disabled; it is never deleted,
// since its history (and its users' history) is kept forever. It holds the
// tenant's settings document (ChangeSettings).
type Tenant struct {
	base
	name     string
	status   Status
	reason   string
	settings events.TenantSettings
	// mailTemplates are the tenant's own mail templates by purpose.
	mailTemplates map[string]events.MailTemplate
}

// LoadTenant folds a tenant's history, oldest first, into its state. An
// empty history gives a tenant that does not exist yet. The errors are
// ErrInvalidTenant for a malformed id and ErrCorruptHistory.
func LoadTenant(id string, history []events.Envelope) (*Tenant, error) {
	if err := authz.ValidTenantSlug(id); err != nil {
		return nil, rebrand(ErrInvalidTenant, err)
	}
	t := &Tenant{base: base{kind: events.AggregateTenant, id: id}}
	if err := t.fold(history, t.apply); err != nil {
		return nil, err
	}
	return t, nil
}

// Create records tenant.created. The tenant must not exist (ErrTenantExists)
// and its id must not be reserved (ErrReservedTenant: the platform tenant is
// made by CreatePlatform); name must be a non-empty display name
// (ErrInvalidText).
func (t *Tenant) Create(name string) error {
	if t.id == authz.PlatformTenant {
		return detail(ErrReservedTenant, "tenant id %q is reserved", t.id)
	}
	if err := checkTenantName(name); err != nil {
		return err
	}
	if t.status != StatusAbsent {
		return detail(ErrTenantExists, "tenant %q already exists", t.id)
	}
	t.record(t.apply, events.TypeTenantCreated, events.TenantCreated{Name: name})
	return nil
}

// CreatePlatform records tenant.created for the reserved platform tenant on
// first start. It is a no-op when the platform tenant exists, since the
// bootstrap runs on every start. Any other id gives ErrPlatformTenant.
func (t *Tenant) CreatePlatform(name string) error {
	if t.id != authz.PlatformTenant {
		return detail(ErrPlatformTenant, "only tenant %q is created by the bootstrap", authz.PlatformTenant)
	}
	if err := checkTenantName(name); err != nil {
		return err
	}
	if t.status != StatusAbsent {
		return nil
	}
	t.record(t.apply, events.TypeTenantCreated, events.TenantCreated{Name: name})
	return nil
}

// Disable records tenant.disabled with an optional reason (ErrInvalidText
// when it is too long or holds control characters). The tenant must exist
// (ErrTenantNotFound) and must not be the platform tenant, whose admins
// would lock themselves out (ErrPlatformTenant). Disabling a disabled tenant
// is a no-op, whatever the reason.
func (t *Tenant) Disable(reason string) error {
	if problem := checkText(reason, MaxReasonLen, false); problem != "" {
		return detail(ErrInvalidText, "reason %s", problem)
	}
	if err := t.requireExists(); err != nil {
		return err
	}
	if t.id == authz.PlatformTenant {
		return detail(ErrPlatformTenant, "tenant %q cannot be disabled", authz.PlatformTenant)
	}
	if t.status == StatusDisabled {
		return nil
	}
	t.record(t.apply, events.TypeTenantDisabled, events.TenantDisabled{Reason: reason})
	return nil
}

// Enable records tenant.enabled. The tenant must exist (ErrTenantNotFound);
// enabling an active tenant is a no-op.
func (t *Tenant) Enable() error {
	if err := t.requireExists(); err != nil {
		return err
	}
	if t.status == StatusActive {
		return nil
	}
	t.record(t.apply, events.TypeTenantEnabled, events.TenantEnabled{})
	return nil
}

// RequireActive returns nil if commands may run in the tenant:
// ErrTenantNotFound when it was never created, ErrTenantDisabled when it is
// disabled.
func (t *Tenant) RequireActive() error {
	if err := t.requireExists(); err != nil {
		return err
	}
	if t.status == StatusDisabled {
		return detail(ErrTenantDisabled, "tenant %q is disabled", t.id)
	}
	return nil
}

// RequireErasable returns nil if a user of the tenant may be erased: the
// tenant exists (ErrTenantNotFound), active or disabled. A right to
// erasure does not wait for a tenant to be enabled again, so erasure is
// the one command a disabled tenant admits; RequireActive stops all others.
func (t *Tenant) RequireErasable() error { return t.requireExists() }

// Exists reports whether the tenant was created.
func (t *Tenant) Exists() bool { return t.status != StatusAbsent }

// Name returns the tenant's display name.
func (t *Tenant) Name() string { return t.name }

// Status returns StatusAbsent, StatusActive or StatusDisabled.
func (t *Tenant) Status() Status { return t.status }

// DisabledReason returns the reason of the last disable while the tenant is
// disabled, "" otherwise.
func (t *Tenant) DisabledReason() string { return t.reason }

func (t *Tenant) requireExists() error {
	if t.status == StatusAbsent {
		return detail(ErrTenantNotFound, "tenant %q not found", t.id)
	}
	return nil
}

// apply is the only place a tenant's state changes.
func (t *Tenant) apply(data any) error {
	ev, ok := data.(events.TenantEvent)
	if !ok {
		return fmt.Errorf("tenant cannot apply %T", data)
	}
	switch e := ev.(type) {
	case events.TenantCreated:
		t.name, t.status = e.Name, StatusActive
	case events.TenantDisabled:
		t.status, t.reason = StatusDisabled, e.Reason
	case events.TenantEnabled:
		t.status, t.reason = StatusActive, ""
	case events.TenantSettingsChanged:
		t.settings = e.Settings
	case events.TenantMailTemplateChanged:
		if e.Template.IsZero() {
			delete(t.mailTemplates, e.Purpose)
			break
		}
		if t.mailTemplates == nil {
			t.mailTemplates = map[string]events.MailTemplate{}
		}
		t.mailTemplates[e.Purpose] = e.Template
	}
	return nil
}

func checkTenantName(name string) error {
	if name == "" {
		return detail(ErrInvalidText, "tenant name is empty")
	}
	if problem := checkText(name, MaxTenantNameLen, false); problem != "" {
		return detail(ErrInvalidText, "tenant name %s", problem)
	}
	return nil
}
