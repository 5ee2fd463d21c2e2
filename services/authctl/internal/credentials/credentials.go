// Package credentials keeps authctl's logins between invocations: one file,
// readable by its owner only, holding the token response of each login
// keyed by the query service's URL and the tenant, and the last consistency
// token of each tenant so that a read after a write sees it.
package credentials

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// FileName is the file under the user's configuration folder.
const FileName = "credentials.json"

// DefaultPath returns os.UserConfigDir()/authstream/credentials.json.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration folder for the credentials: %w", err)
	}
	return filepath.Join(dir, "authstream", FileName), nil
}

// Login is one cached login. The tokens are secrets: nothing prints them.
type Login struct {
	QueryURL     string    `json:"query_url"`
	Tenant       string    `json:"tenant"`
	Username     string    `json:"username"`
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	ExpiresAt    time.Time `json:"expires_at"`
	LoggedInAt   time.Time `json:"logged_in_at"`
}

// Position is the consistency token of the last write to a tenant.
type Position struct {
	QueryURL string    `json:"query_url"`
	Tenant   string    `json:"tenant"`
	Token    string    `json:"token"`
	At       time.Time `json:"at"`
}

// file is the JSON form of the credentials file.
type file struct {
	Logins    []Login    `json:"logins"`
	Positions []Position `json:"positions,omitempty"`
}

// Store reads and writes the credentials file at Path. Each method reads
// the file afresh, so concurrent invocations see each other's logins; the
// file is replaced atomically, never written in place.
type Store struct {
	Path string
}

// Get returns the login for tenant at queryURL.
func (s Store) Get(queryURL, tenant string) (Login, bool, error) {
	f, err := s.read()
	if err != nil {
		return Login{}, false, err
	}
	for _, l := range f.Logins {
		if l.QueryURL == queryURL && l.Tenant == tenant {
			return l, true, nil
		}
	}
	return Login{}, false, nil
}

// Latest returns the most recent login at queryURL: the default tenant.
func (s Store) Latest(queryURL string) (Login, bool, error) {
	f, err := s.read()
	if err != nil {
		return Login{}, false, err
	}
	var (
		best  Login
		found bool
	)
	for _, l := range f.Logins {
		if l.QueryURL == queryURL && (!found || l.LoggedInAt.After(best.LoggedInAt)) {
			best, found = l, true
		}
	}
	return best, found, nil
}

// Put stores l, replacing the login for the same URL and tenant.
func (s Store) Put(l Login) error {
	return s.update(func(f *file) {
		f.Logins = slices.DeleteFunc(f.Logins, func(o Login) bool { return o.QueryURL == l.QueryURL && o.Tenant == l.Tenant })
		f.Logins = append(f.Logins, l)
	})
}

// Delete removes the login for tenant at queryURL and reports whether
// there was one.
func (s Store) Delete(queryURL, tenant string) (bool, error) {
	found := false
	err := s.update(func(f *file) {
		n := len(f.Logins)
		f.Logins = slices.DeleteFunc(f.Logins, func(o Login) bool { return o.QueryURL == queryURL && o.Tenant == tenant })
		found = len(f.Logins) < n
	})
	return found, err
}

// Position returns the consistency token of the last write to tenant at
// queryURL, if it is younger than maxAge: an older one is either long
// applied or from a log that no longer exists, and waiting for it would
// only delay reads.
func (s Store) Position(queryURL, tenant string, maxAge time.Duration, now time.Time) (string, error) {
	f, err := s.read()
	if err != nil {
		return "", err
	}
	for _, p := range f.Positions {
		if p.QueryURL == queryURL && p.Tenant == tenant && now.Sub(p.At) < maxAge {
			return p.Token, nil
		}
	}
	return "", nil
}

// PutPosition records the consistency token of a write to tenant.
func (s Store) PutPosition(p Position) error {
	return s.update(func(f *file) {
		f.Positions = slices.DeleteFunc(f.Positions, func(o Position) bool { return o.QueryURL == p.QueryURL && o.Tenant == p.Tenant })
		f.Positions = append(f.Positions, p)
	})
}

func (s Store) read() (file, error) {
	var f file
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read credentials: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("credentials file %s is damaged (%v); delete it and log in again", s.Path, err)
	}
	return f, nil
}

// update reads the file, applies change and writes it back through a
// temporary file in the same folder (mode 0600) renamed over it.
func (s Store) update(change func(*file)) error {
	f, err := s.read()
	if err != nil {
		return err
	}
	change(&f)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	dir := filepath.Dir(s.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // after the rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.Path); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}
