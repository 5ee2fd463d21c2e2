package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

const ttl = 24 * time.Hour

// mustSession folds a session started at t0 with token hash "h0", then
// rotated through each of rotations in turn.
func mustSession(tb testing.TB, rotations ...string) *domain.Session {
	tb.Helper()
	recorded := []domain.Pending{started("u1", "h0", ttl)}
	prev := "h0"
	for _, h := range rotations {
		recorded = append(recorded, domain.Pending{Type: events.TypeSessionRefreshed, Data: events.SessionRefreshed{PrevHash: prev, TokenHash: h, ExpiresAt: t0.Add(ttl)}})
		prev = h
	}
	return mustLoadSession(tb, recorded...)
}

// mustLoadSession folds the session whose history is recorded.
func mustLoadSession(tb testing.TB, recorded ...domain.Pending) *domain.Session {
	tb.Helper()
	s, err := domain.LoadSession(aggID, mustHistory(tb, recorded...))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestSession_Refresh(t *testing.T) {
	t.Parallel()
	revokedSession := func(tb testing.TB) *domain.Session {
		s := mustSession(tb)
		if err := s.Revoke("h0", domain.RevokeLogout, t0); err != nil {
			tb.Fatal(err)
		}
		return mustLoadSession(tb, append([]domain.Pending{started("u1", "h0", ttl)}, s.Pending()...)...)
	}
	tests := []struct {
		name       string
		session    func(testing.TB) *domain.Session
		req        domain.Refresh
		wantErr    error
		wantTypes  []string
		wantReason string
	}{
		{
			name:      "current token rotates",
			session:   func(tb testing.TB) *domain.Session { return mustSession(tb) },
			req:       domain.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0.Add(time.Hour), TTL: ttl},
			wantTypes: []string{events.TypeSessionRefreshed},
		},
		{
			name:      "rotated twice, newest works",
			session:   func(tb testing.TB) *domain.Session { return mustSession(tb, "h1", "h2") },
			req:       domain.Refresh{PresentedHash: "h2", NewHash: "h3", Now: t0.Add(time.Hour), TTL: ttl},
			wantTypes: []string{events.TypeSessionRefreshed},
		},
		{
			name:       "reused token revokes the family",
			session:    func(tb testing.TB) *domain.Session { return mustSession(tb, "h1", "h2") },
			req:        domain.Refresh{PresentedHash: "h0", NewHash: "hx", Now: t0.Add(time.Hour), TTL: ttl},
			wantErr:    domain.ErrTokenReused,
			wantTypes:  []string{events.TypeSessionRevoked},
			wantReason: domain.RevokeReuse,
		},
		{
			name:    "foreign token records nothing",
			session: func(tb testing.TB) *domain.Session { return mustSession(tb) },
			req:     domain.Refresh{PresentedHash: "nope", NewHash: "h1", Now: t0, TTL: ttl},
			wantErr: domain.ErrTokenMismatch,
		},
		{
			name:    "empty hash is foreign",
			session: func(tb testing.TB) *domain.Session { return mustSession(tb) },
			req:     domain.Refresh{PresentedHash: "", NewHash: "h1", Now: t0, TTL: ttl},
			wantErr: domain.ErrTokenMismatch,
		},
		{
			name:    "unknown session",
			session: func(tb testing.TB) *domain.Session { return mustLoadSession(tb) },
			req:     domain.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0, TTL: ttl},
			wantErr: domain.ErrUnknownSession,
		},
		{
			name:    "expired",
			session: func(tb testing.TB) *domain.Session { return mustSession(tb) },
			req:     domain.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0.Add(ttl), TTL: ttl},
			wantErr: domain.ErrSessionExpired,
		},
		{
			name:    "revoked",
			session: revokedSession,
			req:     domain.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0, TTL: ttl},
			wantErr: domain.ErrSessionRevoked,
		},
		{
			name:       "user changed after start",
			session:    func(tb testing.TB) *domain.Session { return mustSession(tb) },
			req:        domain.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0.Add(time.Hour), TTL: ttl, UserNotBefore: t0.Add(time.Minute)},
			wantErr:    domain.ErrUserChanged,
			wantTypes:  []string{events.TypeSessionRevoked},
			wantReason: domain.RevokeUserChanged,
		},
		{
			name:      "user changed before start",
			session:   func(tb testing.TB) *domain.Session { return mustSession(tb) },
			req:       domain.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0.Add(time.Hour), TTL: ttl, UserNotBefore: t0.Add(-time.Minute)},
			wantTypes: []string{events.TypeSessionRefreshed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.session(t)
			err := s.Refresh(tt.req)
			changes := s.Pending()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(types(changes), tt.wantTypes) {
				t.Fatalf("events = %v, want %v", types(changes), tt.wantTypes)
			}
			if tt.wantReason != "" {
				if got := changes[0].Data.(events.SessionRevoked).Reason; got != tt.wantReason {
					t.Fatalf("reason = %q, want %q", got, tt.wantReason)
				}
			}
			if tt.wantErr == nil {
				r := changes[0].Data.(events.SessionRefreshed)
				if r.PrevHash != tt.req.PresentedHash || r.TokenHash != tt.req.NewHash || !r.ExpiresAt.Equal(tt.req.Now.Add(ttl)) {
					t.Fatalf("refreshed = %+v", r)
				}
			}
		})
	}
}

func TestSession_Revoke(t *testing.T) {
	t.Parallel()
	s := mustSession(t, "h1")
	tests := []struct {
		name      string
		s         *domain.Session
		hash      string
		wantErr   error
		wantTypes []string
	}{
		{"current token", s, "h1", nil, []string{events.TypeSessionRevoked}},
		{"rotated token of the family", s, "h0", nil, []string{events.TypeSessionRevoked}},
		{"platform, no token", s, "", nil, []string{events.TypeSessionRevoked}},
		{"foreign token", s, "zz", domain.ErrTokenMismatch, nil},
		{"unknown session", mustLoadSession(t), "h0", domain.ErrUnknownSession, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.s.Clone()
			err := s.Revoke(tt.hash, domain.RevokeLogout, t0)
			changes := s.Pending()
			if !errors.Is(err, tt.wantErr) || !slices.Equal(types(changes), tt.wantTypes) {
				t.Fatalf("Revoke = %v, %v; want %v, %v", types(changes), err, tt.wantTypes, tt.wantErr)
			}
		})
	}

	t.Run("twice records once", func(t *testing.T) {
		t.Parallel()
		first := s.Clone()
		if err := first.Revoke("h1", domain.RevokeLogout, t0); err != nil {
			t.Fatal(err)
		}
		hist := append([]domain.Pending{started("u1", "h0", ttl)}, first.Pending()...)
		after := mustLoadSession(t, hist...)
		if !after.Revoked() || after.RevokeReason() != domain.RevokeLogout {
			t.Fatalf("state = %+v, want revoked by logout", after)
		}
		err := after.Revoke("h0", domain.RevokeLogout, t0)
		if again := after.Pending(); err != nil || again != nil {
			t.Fatalf("second Revoke = %v, %v; want nil, nil", again, err)
		}
	})
}

func TestLoadSession(t *testing.T) {
	t.Parallel()
	s := mustSession(t, "h1")
	if s.UserID() != "u1" || s.TokenHash() != "h1" || !s.StartedAt().Equal(t0) || s.Version() != 2 || !s.Owns("h0") || !s.Owns("h1") || s.Owns("h2") {
		t.Fatalf("state = %+v", s)
	}
	if _, err := domain.LoadSession(aggID, []events.Envelope{{Type: "session.mystery", Aggregate: events.AggregateSession, AggregateID: aggID, Version: 1, Data: []byte(`{}`)}}); err == nil {
		t.Fatal("unknown type folded without error")
	}
}

func TestSession_Start(t *testing.T) {
	t.Parallel()
	s := mustLoadSession(t)
	if err := s.Start("u1", "h0", t0, ttl); err != nil {
		t.Fatal(err)
	}
	if got := types(s.Pending()); !slices.Equal(got, []string{events.TypeSessionStarted}) || s.UserID() != "u1" || !s.StartedAt().Equal(t0) || s.Version() != 1 || s.LoadedVersion() != 0 {
		t.Fatalf("recorded %v, state %+v", got, s)
	}
	if err := mustSession(t).Start("u2", "hx", t0, ttl); !errors.Is(err, domain.ErrSessionExists) {
		t.Fatalf("starting a started session: %v, want ErrSessionExists", err)
	}
}

func TestResumeSession(t *testing.T) {
	t.Parallel()
	refreshed := func(prev, next string) domain.Pending {
		return domain.Pending{Type: events.TypeSessionRefreshed, Data: events.SessionRefreshed{PrevHash: prev, TokenHash: next, ExpiresAt: t0.Add(ttl)}}
	}
	start := started("u1", "h0", ttl)
	// The history of a session rotated twice, then revoked; each case
	// looks at one of its events as the last one.
	h := mustHistory(t, start, refreshed("h0", "h1"), refreshed("h1", "h2"), domain.Pending{Type: events.TypeSessionRevoked, Data: events.SessionRevoked{Reason: domain.RevokeLogout}})
	origin := domain.SessionOrigin{UserID: "u1", StartedAt: t0}

	tests := []struct {
		name      string
		origin    domain.SessionOrigin
		last      events.Envelope
		presented string
		ok        bool
	}{
		{"started, its token", domain.SessionOrigin{}, h[0], "h0", true},
		{"refreshed, its token, origin known", origin, h[2], "h2", true},
		{"refreshed, origin unknown", domain.SessionOrigin{}, h[2], "h2", false},
		{"refreshed, a rotated token", origin, h[2], "h1", false},
		{"refreshed, a foreign token", origin, h[2], "hx", false},
		{"started, a foreign token", origin, h[0], "hx", false},
		{"revoked", origin, h[3], "h2", false},
		{"no token", origin, h[2], "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := domain.ResumeSession(aggID, tt.origin, tt.last, tt.presented)
			if err != nil || ok != tt.ok {
				t.Fatalf("ResumeSession = %v, %v; want ok %v", ok, err, tt.ok)
			}
			if !ok {
				return
			}
			// What it rebuilt decides the rotation as the whole history does.
			full, err := domain.LoadSession(aggID, h[:tt.last.Version])
			if err != nil {
				t.Fatal(err)
			}
			if got.UserID() != full.UserID() || !got.StartedAt().Equal(full.StartedAt()) || got.TokenHash() != full.TokenHash() ||
				!got.ExpiresAt().Equal(full.ExpiresAt()) || got.Version() != full.Version() || got.Revoked() != full.Revoked() {
				t.Fatalf("resumed %+v, folded %+v", got, full)
			}
			for _, req := range []domain.Refresh{
				{PresentedHash: tt.presented, NewHash: "hn", Now: t0.Add(time.Hour), TTL: ttl},
				{PresentedHash: tt.presented, NewHash: "hn", Now: t0.Add(time.Hour), TTL: ttl, UserNotBefore: t0.Add(time.Minute)},
				{PresentedHash: tt.presented, NewHash: "hn", Now: t0.Add(2 * ttl), TTL: ttl},
			} {
				g, f := got.Clone(), full.Clone()
				gerr, ferr := g.Refresh(req), f.Refresh(req)
				gc, fc := g.Pending(), f.Pending()
				if !errors.Is(gerr, ferr) || !slices.Equal(types(gc), types(fc)) {
					t.Fatalf("Refresh(%+v): resumed %v %v, folded %v %v", req, types(gc), gerr, types(fc), ferr)
				}
			}
		})
	}
}
