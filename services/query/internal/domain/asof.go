package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
)

// Statuses of the folded states. StatusAbsent is an aggregate that had no
// event yet at the instant asked about.
const (
	StatusAbsent   = "absent"
	StatusActive   = "active"
	StatusDisabled = "disabled"
	StatusDeleted  = "deleted"
	StatusDefined  = "defined"
)

// UserState is a user account as its events describe it at one instant.
// It never holds the credential: an auditor learns that a password
// changed (PasswordChangedAt), never its sealed hash.
type UserState struct {
	ID                string    `json:"id"`
	Username          string    `json:"username,omitempty"`
	Status            string    `json:"status"`
	Reason            string    `json:"reason,omitempty"` // why it is disabled
	Roles             []string  `json:"roles"`
	CreatedAt         time.Time `json:"created_at,omitzero"`
	UpdatedAt         time.Time `json:"updated_at,omitzero"`
	PasswordChangedAt time.Time `json:"password_changed_at,omitzero"`
	// Factors are the second factors the user holds (totp,
	// recovery_codes, webauthn), sorted; never their secrets.
	Factors []string `json:"factors,omitempty"`
	// The profile, each member absent when the user had none then.
	events.Profile
	// Passkeys are the credential ids of the user's passkeys, in the
	// order of their registration.
	Passkeys []string `json:"passkeys,omitempty"`
	// Erased is true once the person was erased (user.erased): their
	// personal members show as events.ErasedText from then on.
	Erased bool `json:"erased,omitempty"`
}

// RoleState is a role as its events describe it at one instant.
type RoleState struct {
	Name        string    `json:"name"`
	Status      string    `json:"status"`
	Permissions []string  `json:"permissions"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// SigninState is the sign-in record of a user at one instant.
type SigninState struct {
	UserID          string    `json:"user_id"`
	Failures        int       `json:"failures"` // consecutive failures since the last success
	LockedUntil     time.Time `json:"locked_until,omitzero"`
	LastSucceededAt time.Time `json:"last_succeeded_at,omitzero"`
	LastFailedAt    time.Time `json:"last_failed_at,omitzero"`
}

// visible returns the prefix of envs that occurred at or before asOf;
// an aggregate's events are in version order, so their times never go
// back.
func visible(envs []events.Envelope, asOf time.Time) []events.Envelope {
	for i, e := range envs {
		if e.OccurredAt.After(asOf) {
			return envs[:i]
		}
	}
	return envs
}

// UserAsOf returns the state of user id after the events of envs (one
// user's history, oldest first) that occurred at or before asOf, and the
// version of the last of them (0 when none did). An event of another
// aggregate or of a type a user does not have gives an error.
func UserAsOf(id string, envs []events.Envelope, asOf time.Time) (UserState, uint64, error) {
	s := UserState{ID: id, Status: StatusAbsent, Roles: []string{}}
	envs = visible(envs, asOf)
	for _, e := range envs {
		if err := s.apply(e); err != nil {
			return UserState{}, 0, err
		}
	}
	return s, lastVersion(envs), nil
}

func (s *UserState) apply(e events.Envelope) error {
	if e.Aggregate != events.AggregateUser {
		return fmt.Errorf("fold user: event %s belongs to a %s", e.ID, e.Aggregate)
	}
	data, err := events.Decode(e)
	if err != nil {
		return fmt.Errorf("fold user: %w", err)
	}
	ev, ok := data.(events.UserEvent)
	if !ok {
		return fmt.Errorf("fold user: event %s has type %s", e.ID, e.Type)
	}
	switch d := ev.(type) {
	case events.UserRegistered:
		// Sealed members show only once opened (events.OpenEnvelope): the
		// fold never shows ciphertext.
		s.Username, _ = d.Username.Legacy()
		s.Status, s.CreatedAt = StatusActive, e.OccurredAt
		s.Profile.Apply(d)
	case events.UserPasswordChanged:
		s.PasswordChangedAt = e.OccurredAt
	case events.UserPasswordRehashed:
		// The same password under a bcrypt hash: not a change.
	case events.UserDisabled:
		s.Status, s.Reason = StatusDisabled, d.Reason
	case events.UserEnabled:
		s.Status, s.Reason = StatusActive, ""
	case events.UserDeleted:
		s.Status, s.Reason, s.Roles = StatusDeleted, "", []string{}
		s.Profile.Apply(d)
	case events.UserErased:
		s.Status, s.Reason, s.Roles, s.Factors = StatusDeleted, "", []string{}, nil
		s.Username, s.Erased = events.ErasedText, true
		s.Profile.Apply(d)
	case events.UserRoleAssigned:
		if !slices.Contains(s.Roles, d.Role) {
			s.Roles = append(s.Roles, d.Role)
			slices.Sort(s.Roles)
		}
	case events.UserRoleUnassigned:
		s.Roles = slices.DeleteFunc(s.Roles, func(r string) bool { return r == d.Role })
	case events.UserMFAEnrolmentStarted:
		// Not a factor until confirmed.
	case events.UserMFAEnrolled:
		if !slices.Contains(s.Factors, d.Factor) {
			s.Factors = append(s.Factors, d.Factor)
			slices.Sort(s.Factors)
		}
	case events.UserMFARemoved:
		s.Factors = slices.DeleteFunc(s.Factors, func(f string) bool { return f == d.Factor })
	case events.UserProfileUpdated, events.UserEmailVerified:
		s.Profile.Apply(d)
	case events.UserInvited:
		// The invitation's address is the registration's.
	case events.UserPasskeyRegistrationStarted:
		// Not a factor until registered.
	case events.UserPasskeyRegistered:
		s.Passkeys = append(s.Passkeys, d.CredentialID)
		if !slices.Contains(s.Factors, events.FactorWebAuthn) {
			s.Factors = append(s.Factors, events.FactorWebAuthn)
			slices.Sort(s.Factors)
		}
	case events.UserPasskeyRemoved:
		s.Passkeys = slices.DeleteFunc(s.Passkeys, func(id string) bool { return id == d.CredentialID })
		if len(s.Passkeys) == 0 {
			s.Factors = slices.DeleteFunc(s.Factors, func(f string) bool { return f == events.FactorWebAuthn })
		}
	}
	s.UpdatedAt = e.OccurredAt
	return nil
}

// RoleAsOf returns the state of role name after the events of envs that
// occurred at or before asOf, and the version of the last of them.
func RoleAsOf(name string, envs []events.Envelope, asOf time.Time) (RoleState, uint64, error) {
	s := RoleState{Name: name, Status: StatusAbsent, Permissions: []string{}}
	envs = visible(envs, asOf)
	for _, e := range envs {
		if err := s.apply(e); err != nil {
			return RoleState{}, 0, err
		}
	}
	return s, lastVersion(envs), nil
}

func (s *RoleState) apply(e events.Envelope) error {
	if e.Aggregate != events.AggregateRole {
		return fmt.Errorf("fold role: event %s belongs to a %s", e.ID, e.Aggregate)
	}
	data, err := events.Decode(e)
	if err != nil {
		return fmt.Errorf("fold role: %w", err)
	}
	ev, ok := data.(events.RoleEvent)
	if !ok {
		return fmt.Errorf("fold role: event %s has type %s", e.ID, e.Type)
	}
	switch d := ev.(type) {
	case events.RoleDefined:
		if s.CreatedAt.IsZero() || s.Status != StatusDefined {
			s.CreatedAt = e.OccurredAt
		}
		s.Status, s.Description = StatusDefined, d.Description
		s.Permissions = append([]string{}, d.Permissions...)
	case events.RoleDeleted:
		s.Status, s.Permissions = StatusDeleted, []string{}
	}
	s.UpdatedAt = e.OccurredAt
	return nil
}

// SigninsAsOf returns the sign-in record of userID after the events of envs
// (the user's signin aggregate) that occurred at or before asOf, and the
// version of the last of them.
func SigninsAsOf(userID string, envs []events.Envelope, asOf time.Time) (SigninState, uint64, error) {
	s := SigninState{UserID: userID}
	envs = visible(envs, asOf)
	for _, e := range envs {
		if e.Aggregate != events.AggregateSignin {
			return SigninState{}, 0, fmt.Errorf("fold sign-ins: event %s belongs to a %s", e.ID, e.Aggregate)
		}
		data, err := events.Decode(e)
		if err != nil {
			return SigninState{}, 0, fmt.Errorf("fold sign-ins: %w", err)
		}
		ev, ok := data.(events.SigninEvent)
		if !ok {
			return SigninState{}, 0, fmt.Errorf("fold sign-ins: event %s has type %s", e.ID, e.Type)
		}
		switch d := ev.(type) {
		case events.SigninSucceeded:
			s.Failures, s.LockedUntil, s.LastSucceededAt = 0, time.Time{}, e.OccurredAt
		case events.SigninFailed:
			s.Failures, s.LastFailedAt = d.Failures, e.OccurredAt
		case events.SigninLocked:
			s.Failures, s.LockedUntil = d.Failures, d.Until.UTC()
		}
	}
	return s, lastVersion(envs), nil
}

func lastVersion(envs []events.Envelope) uint64 {
	if len(envs) == 0 {
		return 0
	}
	return envs[len(envs)-1].Version
}

// Holder is a user who held a permission at an instant.
type Holder struct {
	UserID   string   `json:"user_id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
}

// TenantAsOf folds a tenant's account events, in stream order, into the
// users, roles and standing of the tenant at one instant: the replay behind
// "who held permission P at T". Feed it every event of the tenant with
// Apply; events that occurred after the instant are ignored. The zero value
// is not usable: call NewTenantAsOf.
type TenantAsOf struct {
	at     time.Time
	status string
	users  map[string]*UserState
	roles  map[string]*RoleState
}

// NewTenantAsOf returns an empty replay of a tenant as of at.
func NewTenantAsOf(at time.Time) *TenantAsOf {
	return &TenantAsOf{at: at, status: StatusAbsent, users: map[string]*UserState{}, roles: map[string]*RoleState{}}
}

// Apply folds one event of the tenant. Key events are ignored; an event
// that cannot be decoded gives an error.
func (t *TenantAsOf) Apply(e events.Envelope) error {
	if e.OccurredAt.After(t.at) {
		return nil
	}
	switch e.Aggregate {
	case events.AggregateUser:
		u := t.users[e.AggregateID]
		if u == nil {
			u = &UserState{ID: e.AggregateID, Status: StatusAbsent, Roles: []string{}}
			t.users[e.AggregateID] = u
		}
		return u.apply(e)
	case events.AggregateRole:
		r := t.roles[e.AggregateID]
		if r == nil {
			r = &RoleState{Name: e.AggregateID, Status: StatusAbsent, Permissions: []string{}}
			t.roles[e.AggregateID] = r
		}
		return r.apply(e)
	case events.AggregateTenant:
		switch e.Type {
		case events.TypeTenantCreated, events.TypeTenantEnabled:
			t.status = StatusActive
		case events.TypeTenantDisabled:
			t.status = StatusDisabled
		}
	}
	return nil
}

// Status returns the tenant's standing at the instant: active, disabled,
// or absent when it did not exist yet.
func (t *TenantAsOf) Status() string { return t.status }

// Holders returns the users who held p at the instant, by username: active
// users of an active tenant whose roles (the built-in admin, or defined
// roles that were not deleted) allow p. Disabled and deleted users hold
// nothing.
func (t *TenantAsOf) Holders(p authz.Permission) []Holder {
	out := []Holder{}
	if t.status != StatusActive {
		return out
	}
	lookup := func(name string) (authz.Set, bool) {
		r := t.roles[name]
		if r == nil || r.Status != StatusDefined {
			return nil, false
		}
		// Stored permissions were validated when the role was defined.
		set, err := authz.ParseSet(r.Permissions)
		return set, err == nil
	}
	for _, u := range t.users {
		if u.Status != StatusActive {
			continue
		}
		if authz.Effective(u.Roles, lookup).Allows(p) {
			out = append(out, Holder{UserID: u.ID, Username: u.Username, Roles: slices.Clone(u.Roles)})
		}
	}
	slices.SortFunc(out, func(a, b Holder) int {
		if c := strings.Compare(a.Username, b.Username); c != 0 {
			return c
		}
		return strings.Compare(a.UserID, b.UserID)
	})
	return out
}

// clearOf is the clear value of a personal member opened by
// events.OpenEnvelope (or written before sealing); "" for an absent or
// still sealed one.
func clearOf(p events.Personal) string {
	v, _ := p.Legacy()
	return v
}
