// Package config reads a service's configuration from environment variables
// and reports every problem at once, one clear sentence per variable
// ("AUTH_BCRYPT_COST: must be an integer between 4 and 31, got "abc""), so an
// operator fixes the whole environment in one go instead of one restart per
// mistake. Values of secret variables never appear in a message.
//
// The lookup function is injected (os.LookupEnv in main, a map in tests):
// nothing below main reads the process environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Lookup returns the value of an environment variable and whether it is set.
// os.LookupEnv has this signature.
type Lookup func(name string) (string, bool)

// Map returns a Lookup over m, for tests and for callers that assemble an
// environment by hand.
func Map(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// Problem is one thing wrong with one variable.
type Problem struct {
	Var     string // the environment variable, e.g. "AUTH_BCRYPT_COST"
	Message string // what is wrong, without the variable name
}

func (p Problem) String() string { return p.Var + ": " + p.Message }

// Error is returned by Reader.Err when at least one variable is wrong. Its
// message fits on one line: the problems joined by "; ".
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// Join merges the problems of several errors returned by Reader.Err (or
// other errors, kept as they are), dropping exact duplicates: the all-in-one
// binary reads each service's configuration from one environment and must
// not report a bad DATABASE_URL twice. It returns nil when every err is nil.
func Join(errs ...error) error {
	var (
		merged Error
		seen   = map[Problem]bool{}
		others []error
	)
	for _, err := range errs {
		if err == nil {
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) {
			others = append(others, err)
			continue
		}
		for _, p := range ce.Problems {
			if !seen[p] {
				seen[p] = true
				merged.Problems = append(merged.Problems, p)
			}
		}
	}
	switch {
	case len(merged.Problems) == 0 && len(others) == 0:
		return nil
	case len(others) == 0:
		return &merged
	case len(merged.Problems) == 0:
		return errors.Join(others...)
	}
	return errors.Join(append([]error{&merged}, others...)...)
}

// Reader reads variables through a Lookup and collects problems. Each getter
// returns the default (or zero value) when the variable is wrong, so the
// caller can read everything and check Err once at the end.
type Reader struct {
	lookup   Lookup
	problems []Problem
}

// NewReader returns a Reader over lookup. A nil lookup reads nothing (every
// variable is unset).
func NewReader(lookup Lookup) *Reader {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	return &Reader{lookup: lookup}
}

// Problemf records a problem with a variable. Callers use it for checks the
// getters do not cover (a value that is valid alone but not with another).
func (r *Reader) Problemf(name, format string, args ...any) {
	r.problems = append(r.problems, Problem{Var: name, Message: fmt.Sprintf(format, args...)})
}

// Err returns an *Error listing every problem recorded so far, or nil.
func (r *Reader) Err() error {
	if len(r.problems) == 0 {
		return nil
	}
	return &Error{Problems: append([]Problem(nil), r.problems...)}
}

// value returns the trimmed value of name, and whether it is set and not
// blank: an empty variable means "use the default", as in most shells'
// ${VAR:-default}.
func (r *Reader) value(name string) (string, bool) {
	v, ok := r.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// Lookup returns the raw value of name and whether it is set and not blank,
// for variables whose validation belongs to another package (AUTH_KEK is
// parsed by the events keyring).
func (r *Reader) Lookup(name string) (string, bool) { return r.value(name) }

// String returns name's value, or def when unset.
func (r *Reader) String(name, def string) string {
	if v, ok := r.value(name); ok {
		return v
	}
	return def
}

// Required returns name's value and records a problem ("required (meaning)")
// when it is unset.
func (r *Reader) Required(name, meaning string) string {
	v, ok := r.value(name)
	if !ok {
		r.Problemf(name, "required (%s)", meaning)
	}
	return v
}

// OneOf returns name's value (lower-cased) when it is one of allowed, def
// when unset, and records a problem otherwise.
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	lv := strings.ToLower(v)
	for _, a := range allowed {
		if lv == a {
			return lv
		}
	}
	r.Problemf(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return def
}

// Int returns name's value as an integer in [min, max], or def when unset.
func (r *Reader) Int(name string, def, min, max int) int {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.Problemf(name, "must be an integer between %d and %d, got %q", min, max, v)
		return def
	}
	return n
}

// Bool returns name's value as a boolean (1/0, true/false, yes/no, on/off),
// or def when unset.
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	r.Problemf(name, "must be true or false, got %q", v)
	return def
}

// Duration returns name's value as a Go duration ("15m", "90s") in
// [min, max], or def when unset.
func (r *Reader) Duration(name string, def, min, max time.Duration) time.Duration {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		r.Problemf(name, "must be a duration between %s and %s (like \"30s\" or \"15m\"), got %q", min, max, v)
		return def
	}
	return d
}

// Addr returns name's value as a TCP listen address host:port (port 0 picks a
// free port), or def when unset.
func (r *Reader) Addr(name, def string) string {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	if err := CheckAddr(v); err != nil {
		r.Problemf(name, "%v, got %q", err, v)
		return def
	}
	return v
}

// CheckAddr reports whether addr is a usable listen address host:port with a
// numeric port in [0, 65535]. An empty host means every interface.
func CheckAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be a listen address host:port like 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("must have a numeric port between 0 and 65535")
	}
	return nil
}

// URL returns name's value as an absolute URL whose scheme is one of schemes,
// or def when unset. Credentials in the URL are never echoed in a problem.
func (r *Reader) URL(name, def string, schemes ...string) string {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	if err := CheckURL(v, schemes...); err != nil {
		r.Problemf(name, "%v", err)
		return def
	}
	return v
}

// CheckURL reports whether raw is an absolute URL with a host and one of
// schemes. Its messages show the URL with any password replaced.
func CheckURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("must be a URL like %s://host:port, got an unparsable value", schemes[0])
	}
	ok := false
	for _, s := range schemes {
		if strings.EqualFold(u.Scheme, s) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("must be a URL with scheme %s, got %q", strings.Join(schemes, " or "), Redact(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("must name a host, got %q", Redact(raw))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("must have a port between 1 and 65535, got %q", Redact(raw))
		}
	}
	return nil
}

// URLList returns name's value as a comma-separated list of URLs (a NATS
// cluster's seed servers), or nil when unset.
func (r *Reader) URLList(name string, schemes ...string) []string {
	v, ok := r.value(name)
	if !ok {
		return nil
	}
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if err := CheckURL(part, schemes...); err != nil {
			r.Problemf(name, "%v", err)
			return nil
		}
		out = append(out, part)
	}
	return out
}

// Redact returns raw with the password of its user info (if any) replaced by
// "xxxxx", for messages and logs. A value that does not parse as a URL is
// replaced entirely, since it may be a secret typed in the wrong variable.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// HostPort returns the host:port a URL points at, filling in defaultPort when
// the URL has none. It is what error messages name ("cannot reach PostgreSQL
// at 127.0.0.1:5432"): the address without credentials or database.
func HostPort(raw, defaultPort string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unknown address)"
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defaultPort)
	}
	return u.Host
}
