package login_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/login"
)

const ttl = 24 * time.Hour

// mustSession folds a session started at t0 with token hash "h0", then
// rotated through each of rotations in turn.
func mustSession(tb testing.TB, rotations ...string) login.Session {
	tb.Helper()
	changes := []login.Change{login.StartSession("u1", "h0", t0, ttl)}
	prev := "h0"
	for _, h := range rotations {
		changes = append(changes, login.Change{Type: events.TypeSessionRefreshed, Data: events.SessionRefreshed{PrevHash: prev, TokenHash: h, ExpiresAt: t0.Add(ttl)}})
		prev = h
	}
	s, err := login.FoldSession(mustHistory(tb, changes...))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestSession_Refresh(t *testing.T) {
	t.Parallel()
	revokedSession := func(tb testing.TB) login.Session {
		s := mustSession(tb)
		changes, err := s.Revoke("h0", login.RevokeLogout)
		if err != nil {
			tb.Fatal(err)
		}
		s, err = login.FoldSession(mustHistory(tb, append([]login.Change{login.StartSession("u1", "h0", t0, ttl)}, changes...)...))
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name       string
		session    func(testing.TB) login.Session
		req        login.Refresh
		wantErr    error
		wantTypes  []string
		wantReason string
	}{
		{
			name:      "current token rotates",
			session:   func(tb testing.TB) login.Session { return mustSession(tb) },
			req:       login.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0.Add(time.Hour), TTL: ttl},
			wantTypes: []string{events.TypeSessionRefreshed},
		},
		{
			name:      "rotated twice, newest works",
			session:   func(tb testing.TB) login.Session { return mustSession(tb, "h1", "h2") },
			req:       login.Refresh{PresentedHash: "h2", NewHash: "h3", Now: t0.Add(time.Hour), TTL: ttl},
			wantTypes: []string{events.TypeSessionRefreshed},
		},
		{
			name:       "reused token revokes the family",
			session:    func(tb testing.TB) login.Session { return mustSession(tb, "h1", "h2") },
			req:        login.Refresh{PresentedHash: "h0", NewHash: "hx", Now: t0.Add(time.Hour), TTL: ttl},
			wantErr:    login.ErrTokenReused,
			wantTypes:  []string{events.TypeSessionRevoked},
			wantReason: login.RevokeReuse,
		},
		{
			name:    "foreign token records nothing",
			session: func(tb testing.TB) login.Session { return mustSession(tb) },
			req:     login.Refresh{PresentedHash: "nope", NewHash: "h1", Now: t0, TTL: ttl},
			wantErr: login.ErrTokenMismatch,
		},
		{
			name:    "empty hash is foreign",
			session: func(tb testing.TB) login.Session { return mustSession(tb) },
			req:     login.Refresh{PresentedHash: "", NewHash: "h1", Now: t0, TTL: ttl},
			wantErr: login.ErrTokenMismatch,
		},
		{
			name:    "unknown session",
			session: func(testing.TB) login.Session { return login.Session{} },
			req:     login.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0, TTL: ttl},
			wantErr: login.ErrUnknownSession,
		},
		{
			name:    "expired",
			session: func(tb testing.TB) login.Session { return mustSession(tb) },
			req:     login.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0.Add(ttl), TTL: ttl},
			wantErr: login.ErrSessionExpired,
		},
		{
			name:    "revoked",
			session: revokedSession,
			req:     login.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0, TTL: ttl},
			wantErr: login.ErrSessionRevoked,
		},
		{
			name:       "user changed after start",
			session:    func(tb testing.TB) login.Session { return mustSession(tb) },
			req:        login.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0.Add(time.Hour), TTL: ttl, UserNotBefore: t0.Add(time.Minute)},
			wantErr:    login.ErrUserChanged,
			wantTypes:  []string{events.TypeSessionRevoked},
			wantReason: login.RevokeUserChanged,
		},
		{
			name:      "user changed before start",
			session:   func(tb testing.TB) login.Session { return mustSession(tb) },
			req:       login.Refresh{PresentedHash: "h0", NewHash: "h1", Now: t0.Add(time.Hour), TTL: ttl, UserNotBefore: t0.Add(-time.Minute)},
			wantTypes: []string{events.TypeSessionRefreshed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			changes, err := tt.session(t).Refresh(tt.req)
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
		s         login.Session
		hash      string
		wantErr   error
		wantTypes []string
	}{
		{"current token", s, "h1", nil, []string{events.TypeSessionRevoked}},
		{"rotated token of the family", s, "h0", nil, []string{events.TypeSessionRevoked}},
		{"platform, no token", s, "", nil, []string{events.TypeSessionRevoked}},
		{"foreign token", s, "zz", login.ErrTokenMismatch, nil},
		{"unknown session", login.Session{}, "h0", login.ErrUnknownSession, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			changes, err := tt.s.Revoke(tt.hash, login.RevokeLogout)
			if !errors.Is(err, tt.wantErr) || !slices.Equal(types(changes), tt.wantTypes) {
				t.Fatalf("Revoke = %v, %v; want %v, %v", types(changes), err, tt.wantTypes, tt.wantErr)
			}
		})
	}

	t.Run("twice records once", func(t *testing.T) {
		t.Parallel()
		first, err := s.Revoke("h1", login.RevokeLogout)
		if err != nil {
			t.Fatal(err)
		}
		hist := append([]login.Change{login.StartSession("u1", "h0", t0, ttl)}, first...)
		after, err := login.FoldSession(mustHistory(t, hist...))
		if err != nil {
			t.Fatal(err)
		}
		if !after.Revoked || after.RevokeReason != login.RevokeLogout {
			t.Fatalf("state = %+v, want revoked by logout", after)
		}
		again, err := after.Revoke("h0", login.RevokeLogout)
		if err != nil || again != nil {
			t.Fatalf("second Revoke = %v, %v; want nil, nil", again, err)
		}
	})
}

func TestFoldSession(t *testing.T) {
	t.Parallel()
	s := mustSession(t, "h1")
	if s.UserID != "u1" || s.TokenHash != "h1" || !s.StartedAt.Equal(t0) || s.Version != 2 || !s.Owns("h0") || !s.Owns("h1") || s.Owns("h2") {
		t.Fatalf("state = %+v", s)
	}
	if _, err := login.FoldSession([]events.Envelope{{Type: "session.mystery", Data: []byte(`{}`)}}); err == nil {
		t.Fatal("unknown type folded without error")
	}
}

func TestResumeSession(t *testing.T) {
	t.Parallel()
	refreshed := func(prev, next string) login.Change {
		return login.Change{Type: events.TypeSessionRefreshed, Data: events.SessionRefreshed{PrevHash: prev, TokenHash: next, ExpiresAt: t0.Add(ttl)}}
	}
	start := login.StartSession("u1", "h0", t0, ttl)
	// The history of a session rotated twice, then revoked; each case
	// looks at one of its events as the last one.
	h := mustHistory(t, start, refreshed("h0", "h1"), refreshed("h1", "h2"), login.Change{Type: events.TypeSessionRevoked, Data: events.SessionRevoked{Reason: login.RevokeLogout}})
	origin := login.SessionOrigin{UserID: "u1", StartedAt: t0}

	tests := []struct {
		name      string
		origin    login.SessionOrigin
		last      events.Envelope
		presented string
		ok        bool
	}{
		{"started, its token", login.SessionOrigin{}, h[0], "h0", true},
		{"refreshed, its token, origin known", origin, h[2], "h2", true},
		{"refreshed, origin unknown", login.SessionOrigin{}, h[2], "h2", false},
		{"refreshed, a rotated token", origin, h[2], "h1", false},
		{"refreshed, a foreign token", origin, h[2], "hx", false},
		{"started, a foreign token", origin, h[0], "hx", false},
		{"revoked", origin, h[3], "h2", false},
		{"no token", origin, h[2], "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := login.ResumeSession(tt.origin, tt.last, tt.presented)
			if err != nil || ok != tt.ok {
				t.Fatalf("ResumeSession = %v, %v; want ok %v", ok, err, tt.ok)
			}
			if !ok {
				return
			}
			// What it rebuilt decides the rotation as the whole history does.
			full, err := login.FoldSession(h[:tt.last.Version])
			if err != nil {
				t.Fatal(err)
			}
			if got.UserID != full.UserID || !got.StartedAt.Equal(full.StartedAt) || got.TokenHash != full.TokenHash ||
				!got.ExpiresAt.Equal(full.ExpiresAt) || got.Version != full.Version || got.Revoked != full.Revoked {
				t.Fatalf("resumed %+v, folded %+v", got, full)
			}
			for _, req := range []login.Refresh{
				{PresentedHash: tt.presented, NewHash: "hn", Now: t0.Add(time.Hour), TTL: ttl},
				{PresentedHash: tt.presented, NewHash: "hn", Now: t0.Add(time.Hour), TTL: ttl, UserNotBefore: t0.Add(time.Minute)},
				{PresentedHash: tt.presented, NewHash: "hn", Now: t0.Add(2 * ttl), TTL: ttl},
			} {
				gc, gerr := got.Refresh(req)
				fc, ferr := full.Refresh(req)
				if !errors.Is(gerr, ferr) || !slices.Equal(types(gc), types(fc)) {
					t.Fatalf("Refresh(%+v): resumed %v %v, folded %v %v", req, types(gc), gerr, types(fc), ferr)
				}
			}
		})
	}
}
