package config

import (
	"log/slog"
	"strings"
)

// Secret holds a value that must never be printed: a password, a database
// URL with credentials. Formatting it with fmt, logging it with slog or
// marshalling it gives "[redacted]"; Reveal returns the value for the one
// place that uses it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

// String hides the value from fmt's %v and %s.
func (s Secret) String() string { return redacted }

// GoString hides the value from fmt's %#v.
func (s Secret) GoString() string { return redacted }

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText hides the value from encoding/json and friends.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Line returns err's message on one line: multi-error messages
// (errors.Join separates with newlines) are joined with "; ". Every binary
// prints its fatal error with it, so a failed start is exactly one line on
// stderr.
func Line(err error) string {
	if err == nil {
		return ""
	}
	lines := strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' || r == '\r' })
	return strings.Join(lines, "; ")
}
