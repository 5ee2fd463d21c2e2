package authz

import (
	"strings"

	"github.com/authstream/authstream/libs/fault"
)

// Wildcard is the segment that matches any resource or any action.
const Wildcard = "*"

// MaxPermissionLen is the longest permission string Parse accepts, in bytes.
const MaxPermissionLen = 128

// Permission is one "resource:action" pair, such as users:read. Either
// segment may be Wildcard. The zero value is not a valid permission.
type Permission struct {
	Resource string
	Action   string
}

// All is the permission that covers every other one: "*:*".
var All = Permission{Resource: Wildcard, Action: Wildcard}

// Parse reads a permission string: "resource:action" with each segment
// either "*" or lowercase [a-z0-9][a-z0-9_.-]*, at most MaxPermissionLen
// bytes in all. A lone "*" means "*:*". Errors are fault.Invalid with reason
// "invalid-permission" and a message that says what is wrong.
func Parse(s string) (Permission, error) {
	if s == "" {
		return Permission{}, invalidPermission("permission is empty")
	}
	if len(s) > MaxPermissionLen {
		return Permission{}, invalidPermission("permission is longer than 128 bytes")
	}
	if s == Wildcard {
		return All, nil
	}
	resource, action, ok := strings.Cut(s, ":")
	if !ok {
		return Permission{}, invalidPermission("permission %q must have the form resource:action", s)
	}
	if strings.Contains(action, ":") {
		return Permission{}, invalidPermission("permission %q has more than one ':'", s)
	}
	if !validSegment(resource) {
		return Permission{}, invalidPermission("permission %q: resource must be '*' or lowercase letters, digits, '_', '.', '-' starting with a letter or digit", s)
	}
	if !validSegment(action) {
		return Permission{}, invalidPermission("permission %q: action must be '*' or lowercase letters, digits, '_', '.', '-' starting with a letter or digit", s)
	}
	return Permission{Resource: resource, Action: action}, nil
}

// MustParse is Parse for permissions written in the source code; it panics
// on an invalid string.
func MustParse(s string) Permission {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the canonical form "resource:action"; All is "*:*".
func (p Permission) String() string { return p.Resource + ":" + p.Action }

// Matches reports whether p, a granted permission, covers required. A
// wildcard segment in p covers any value of that segment; a literal segment
// covers only the same literal. A wildcard in required is covered only by a
// wildcard, so users:read does not cover users:*, and *:read does not cover
// users:* either.
func (p Permission) Matches(required Permission) bool {
	return segmentCovers(p.Resource, required.Resource) && segmentCovers(p.Action, required.Action)
}

func segmentCovers(granted, required string) bool {
	return granted == Wildcard || granted == required
}

// validSegment reports whether s is "*" or matches [a-z0-9][a-z0-9_.-]*.
func validSegment(s string) bool {
	if s == Wildcard {
		return true
	}
	if s == "" || !lowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !lowerAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func lowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func invalidPermission(format string, args ...any) error {
	e := fault.Errorf(fault.Invalid, format, args...)
	e.Reason = "invalid-permission"
	return e
}
