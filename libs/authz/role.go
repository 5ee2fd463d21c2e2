package authz

import (
	"github.com/authstream/authstream/libs/fault"
)

// BuiltinAdmin is the name of the role every tenant has without defining
// it. It holds every permission of its tenant and cannot be redefined or
// deleted.
const BuiltinAdmin = "admin"

// AdminPermissions returns the permissions of BuiltinAdmin: "*:*".
func AdminPermissions() Set { return Set{All} }

// MaxRoleNameLen is the longest role name, in bytes.
const MaxRoleNameLen = 63

// ValidRoleName returns nil if name is a well-formed role name:
// ^[a-z0-9][a-z0-9_-]{0,62}$. Role names appear as NATS subject tokens,
// hence the narrow alphabet. The error is fault.Invalid with reason
// "invalid-role-name".
func ValidRoleName(name string) error {
	if name == "" {
		return invalidRole("role name is empty")
	}
	if len(name) > MaxRoleNameLen {
		return invalidRole("role name is longer than 63 characters")
	}
	if !lowerAlnum(name[0]) {
		return invalidRole("role name %q must start with a lowercase letter or digit", name)
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !lowerAlnum(c) && c != '_' && c != '-' {
			return invalidRole("role name %q may hold only lowercase letters, digits, '_' and '-'", name)
		}
	}
	return nil
}

// IsBuiltinRole reports whether name is a role that exists in every tenant
// without being defined (BuiltinAdmin).
func IsBuiltinRole(name string) bool { return name == BuiltinAdmin }

// ValidRoleChange returns nil if the role name may be defined, redefined or
// deleted: it is well formed (ValidRoleName) and not built in. A built-in
// name gives fault.Invalid with reason "builtin-role".
func ValidRoleChange(name string) error {
	if err := ValidRoleName(name); err != nil {
		return err
	}
	if IsBuiltinRole(name) {
		return fault.New(fault.Invalid, "builtin-role", "role \"admin\" is built in and cannot be redefined or deleted")
	}
	return nil
}

// Effective returns the permissions that the roles grant together.
// BuiltinAdmin grants AdminPermissions; other roles are looked up with
// lookup, and a role that lookup does not know grants nothing (it may have
// been deleted after it was assigned).
func Effective(roles []string, lookup func(role string) (Set, bool)) Set {
	var out Set
	for _, r := range roles {
		if IsBuiltinRole(r) {
			out = append(out, AdminPermissions()...)
			continue
		}
		if lookup == nil {
			continue
		}
		if perms, ok := lookup(r); ok {
			out = append(out, perms...)
		}
	}
	return out.Normalize()
}

func invalidRole(format string, args ...any) error {
	e := fault.Errorf(fault.Invalid, format, args...)
	e.Reason = "invalid-role-name"
	return e
}
