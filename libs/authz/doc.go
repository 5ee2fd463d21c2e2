// Package authz is the permission domain of authstream: permission strings
// and their wildcard matching, role names and the built-in admin role, and
// tenant slugs. It imports the standard library and libs/fault only, so the
// command, query and client sides all decide with the same rules.
package authz
