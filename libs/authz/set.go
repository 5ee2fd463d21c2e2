package authz

import (
	"slices"
	"strings"
)

// Set is a collection of granted permissions, such as the permissions of a
// role or the union of a user's roles. The zero value is the empty set,
// which allows nothing.
type Set []Permission

// ParseSet parses each string with Parse and returns the set, with
// duplicates removed and in canonical order. The first invalid string's
// error is returned (fault.Invalid).
func ParseSet(perms []string) (Set, error) {
	s := make(Set, 0, len(perms))
	for _, raw := range perms {
		p, err := Parse(raw)
		if err != nil {
			return nil, err
		}
		s = append(s, p)
	}
	return s.Normalize(), nil
}

// Normalize returns s sorted by its string form with duplicates removed, so
// that equal sets compare and serialise the same way.
func (s Set) Normalize() Set {
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b Permission) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// Strings returns the string forms of s, in its order.
func (s Set) Strings() []string {
	out := make([]string, len(s))
	for i, p := range s {
		out[i] = p.String()
	}
	return out
}

// Allows reports whether some permission of s matches required.
func (s Set) Allows(required Permission) bool {
	for _, p := range s {
		if p.Matches(required) {
			return true
		}
	}
	return false
}

// Covers reports whether s allows every permission of other, so that a
// holder of s may grant other without gaining privileges it lacks. Each
// permission of other must be matched by one permission of s: users:read
// and users:write together do not cover users:*, because users:* also
// means actions nobody has named yet.
func (s Set) Covers(other Set) bool {
	for _, p := range other {
		if !s.Allows(p) {
			return false
		}
	}
	return true
}

// Union returns the permissions of s and others together, normalised.
func (s Set) Union(others ...Set) Set {
	out := slices.Clone(s)
	for _, o := range others {
		out = append(out, o...)
	}
	return out.Normalize()
}
