package credentials_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authctl/internal/credentials"
)

func mustStore(tb testing.TB) credentials.Store {
	tb.Helper()
	return credentials.Store{Path: filepath.Join(tb.TempDir(), "authstream", credentials.FileName)}
}

func TestStore_Logins(t *testing.T) {
	t.Parallel()
	s := mustStore(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const a, b = "http://a:8080", "http://b:8080"

	if _, ok, err := s.Latest(a); ok || err != nil {
		t.Fatalf("Latest on no file = %v, %v", ok, err)
	}
	for i, l := range []credentials.Login{
		{QueryURL: a, Tenant: "platform", AccessToken: "p1", LoggedInAt: t0},
		{QueryURL: a, Tenant: "acme", AccessToken: "a1", LoggedInAt: t0.Add(time.Minute)},
		{QueryURL: b, Tenant: "acme", AccessToken: "b1", LoggedInAt: t0.Add(2 * time.Minute)},
		{QueryURL: a, Tenant: "platform", AccessToken: "p2", LoggedInAt: t0.Add(3 * time.Minute)},
	} {
		if err := s.Put(l); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	fi, err := os.Stat(s.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v, mode %v", err, fi.Mode())
	}

	tests := []struct {
		name, url, tenant string
		want              string // access token, "" for none
	}{
		{"replaced by a later login", a, "platform", "p2"},
		{"another tenant", a, "acme", "a1"},
		{"same tenant at another URL", b, "acme", "b1"},
		{"unknown", b, "platform", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok, err := s.Get(tt.url, tt.tenant)
			if err != nil || ok != (tt.want != "") || l.AccessToken != tt.want {
				t.Errorf("Get(%s, %s) = %q, %v, %v; want %q", tt.url, tt.tenant, l.AccessToken, ok, err, tt.want)
			}
		})
	}
	if l, _, _ := s.Latest(a); l.Tenant != "platform" {
		t.Errorf("Latest(a) = %s, want platform", l.Tenant)
	}
	if found, err := s.Delete(a, "platform"); !found || err != nil {
		t.Fatalf("Delete = %v, %v", found, err)
	}
	if found, _ := s.Delete(a, "platform"); found {
		t.Error("Delete found a login twice")
	}
	if l, _, _ := s.Latest(a); l.Tenant != "acme" {
		t.Errorf("Latest(a) after delete = %s, want acme", l.Tenant)
	}
}

func TestStore_Position(t *testing.T) {
	t.Parallel()
	s := mustStore(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.PutPosition(credentials.Position{QueryURL: "http://a", Tenant: "acme", Token: "t1", At: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPosition(credentials.Position{QueryURL: "http://a", Tenant: "acme", Token: "t2", At: now}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tenant string
		age          time.Duration
		want         string
	}{
		{"fresh", "acme", time.Second, "t2"},
		{"too old", "acme", 10 * time.Minute, ""},
		{"other tenant", "other", time.Second, ""},
	}
	for _, tt := range tests {
		got, err := s.Position("http://a", tt.tenant, 5*time.Minute, now.Add(tt.age))
		if err != nil || got != tt.want {
			t.Errorf("%s: Position = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestStore_DamagedFile(t *testing.T) {
	t.Parallel()
	s := mustStore(t)
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get("http://a", "acme"); err == nil {
		t.Error("Get on a damaged file succeeded")
	}
}
