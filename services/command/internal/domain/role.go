package domain

import (
	"fmt"
	"slices"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
)

// MaxRolePermissions is the most permissions one role holds, after
// duplicates are removed. It bounds the size of events and tokens.
const MaxRolePermissions = 256

// MaxDescriptionLen is the longest role description, in characters.
const MaxDescriptionLen = 512

// Role is the role aggregate of a tenant; its id is the role name. A role is
// defined (created or replaced as a whole) and may be deleted and defined
// again later. The built-in role authz.BuiltinAdmin exists in every tenant
// without events, holds every permission, and is never defined or deleted.
type Role struct {
	base
	permissions authz.Set
	description string
	status      Status
	builtin     bool
}

// LoadRole folds a role's history, oldest first, into its state. An empty
// history gives a role that does not exist yet, except for the built-in
// admin role, which always exists. The errors are ErrInvalidRoleName and
// ErrCorruptHistory (also for any event of the built-in role).
func LoadRole(name string, history []events.Envelope) (*Role, error) {
	if err := authz.ValidRoleName(name); err != nil {
		return nil, rebrand(ErrInvalidRoleName, err)
	}
	r := &Role{base: base{kind: events.AggregateRole, id: name}}
	if authz.IsBuiltinRole(name) {
		if len(history) > 0 {
			return nil, corrupt(r.kind, name, 1, "the built-in role has no events")
		}
		r.builtin, r.status, r.permissions = true, StatusActive, authz.AdminPermissions()
		return r, nil
	}
	if err := r.fold(history, r.apply); err != nil {
		return nil, err
	}
	return r, nil
}

// Define records role.defined: it creates the role, replaces the
// permissions and description of an existing one, or defines a deleted one
// again. Permissions are validated (ErrInvalidPermission), stored in
// canonical form ("*" becomes "*:*"), without duplicates and sorted; at most
// MaxRolePermissions, possibly none. description is optional
// (ErrInvalidText). The built-in admin role gives ErrBuiltinRole. Defining a
// role exactly as it is is a no-op.
func (r *Role) Define(permissions []string, description string) error {
	if r.builtin {
		return detail(ErrBuiltinRole, "role %q is built in and cannot be redefined", r.id)
	}
	set, err := authz.ParseSet(permissions)
	if err != nil {
		return rebrand(ErrInvalidPermission, err)
	}
	if len(set) > MaxRolePermissions {
		return detail(ErrInvalidPermission, "a role holds at most %d permissions, got %d", MaxRolePermissions, len(set))
	}
	if problem := checkText(description, MaxDescriptionLen, true); problem != "" {
		return detail(ErrInvalidText, "description %s", problem)
	}
	if r.status == StatusActive && slices.Equal(set, r.permissions) && description == r.description {
		return nil
	}
	r.record(r.apply, events.TypeRoleDefined, events.RoleDefined{Permissions: set.Strings(), Description: description})
	return nil
}

// Delete records role.deleted. The built-in admin role gives ErrBuiltinRole;
// a role that was never defined or is deleted gives ErrRoleNotFound. Users
// keep the role's name but it grants nothing any more.
func (r *Role) Delete() error {
	if r.builtin {
		return detail(ErrBuiltinRole, "role %q is built in and cannot be deleted", r.id)
	}
	if err := r.RequireExists(); err != nil {
		return err
	}
	r.record(r.apply, events.TypeRoleDeleted, events.RoleDeleted{})
	return nil
}

// RequireExists returns ErrRoleNotFound unless the role is defined (or
// built in).
func (r *Role) RequireExists() error {
	if r.status != StatusActive {
		return detail(ErrRoleNotFound, "role %q not found", r.id)
	}
	return nil
}

// Name returns the role name.
func (r *Role) Name() string { return r.id }

// Exists reports whether the role is defined or built in.
func (r *Role) Exists() bool { return r.status == StatusActive }

// Builtin reports whether the role is the built-in admin role.
func (r *Role) Builtin() bool { return r.builtin }

// Status returns StatusAbsent, StatusActive or StatusDeleted.
func (r *Role) Status() Status { return r.status }

// Permissions returns the role's permissions in canonical form and order;
// none when the role does not exist.
func (r *Role) Permissions() []string { return r.permissions.Strings() }

// PermissionSet returns the role's permissions as an authz.Set, for
// coverage checks.
func (r *Role) PermissionSet() authz.Set { return slices.Clone(r.permissions) }

// Description returns the role's description.
func (r *Role) Description() string { return r.description }

// apply is the only place a role's state changes.
func (r *Role) apply(data any) error {
	ev, ok := data.(events.RoleEvent)
	if !ok {
		return fmt.Errorf("role cannot apply %T", data)
	}
	switch e := ev.(type) {
	case events.RoleDefined:
		// History is parsed as strictly as commands: a permission the
		// domain cannot read must not silently grant or deny.
		set, err := authz.ParseSet(e.Permissions)
		if err != nil {
			return err
		}
		r.permissions, r.description, r.status = set, e.Description, StatusActive
	case events.RoleDeleted:
		r.permissions, r.description, r.status = nil, "", StatusDeleted
	}
	return nil
}
