package check_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/accounts"
	"github.com/authstream/authstream/services/query/internal/check"
)

// source is an in-memory check.Source that counts its reads, so that the
// tests see what the cache serves without asking.
type source struct {
	mu          sync.Mutex
	grants      map[string]accounts.Grant
	grantReads  int
	rolesReads  int
	permissions map[string][]string
}

func (s *source) Grant(_ context.Context, _, userID string) (accounts.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grantReads++
	return s.grants[userID], nil
}

func (s *source) RolePermissions(context.Context, string) (map[string][]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rolesReads++
	return s.permissions, nil
}

func (s *source) set(userID string, g accounts.Grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[userID] = g
}

func (s *source) reads() (grants, roles int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grantReads, s.rolesReads
}

func TestCache_NotBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cut := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src := &source{
		grants: map[string]accounts.Grant{
			"alice": {Exists: true, Active: true, Roles: []string{"billing"}, NotBefore: cut},
			"bob":   {Exists: true, Active: false},
		},
		permissions: map[string][]string{"billing": {"invoices:read"}},
	}
	c := check.New(src)

	tests := []struct {
		name    string
		user    string
		want    time.Time
		wantErr error
	}{
		{name: "active user", user: "alice", want: cut},
		{name: "disabled user", user: "bob", wantErr: accounts.ErrInactive},
		{name: "unknown user", user: "carol", wantErr: accounts.ErrInactive},
	}
	for _, tt := range tests {
		got, err := c.NotBefore(ctx, "acme", tt.user)
		if !errors.Is(err, tt.wantErr) || !got.Equal(tt.want) {
			t.Errorf("%s: NotBefore = %v, %v; want %v, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}

	// A second request is served from the cache, and a token check alone
	// does not load the roles.
	if _, err := c.NotBefore(ctx, "acme", "alice"); err != nil {
		t.Fatal(err)
	}
	if grants, roles := src.reads(); grants != 3 || roles != 0 {
		t.Fatalf("reads after repeated NotBefore: %d grants, %d roles; want 3, 0", grants, roles)
	}
	// A check reuses the grant NotBefore loaded and adds the roles.
	s, err := c.Subject(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Active || len(s.Roles) != 1 {
		t.Fatalf("subject = %+v", s)
	}
	if grants, roles := src.reads(); grants != 3 || roles != 1 {
		t.Fatalf("reads after Subject: %d grants, %d roles; want 3, 1", grants, roles)
	}

	// A disable is seen once the partition's advance is announced, not before.
	src.set("alice", accounts.Grant{Exists: true, Active: false})
	if _, err := c.NotBefore(ctx, "acme", "alice"); err != nil {
		t.Fatalf("before the announcement: %v", err)
	}
	c.Invalidate(events.Partition("acme"), 1)
	if _, err := c.NotBefore(ctx, "acme", "alice"); !errors.Is(err, accounts.ErrInactive) {
		t.Fatalf("after the announcement: %v, want ErrInactive", err)
	}
}
