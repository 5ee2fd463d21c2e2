package app_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/domain"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

const (
	tenant   = "acme"
	password = "correct horse battery"
)

func mustLogin(tb testing.TB, e *querytest.Env, username, pw string) app.Tokens {
	tb.Helper()
	t, err := e.App.PasswordLogin(context.Background(), app.PasswordLogin{Tenant: tenant, Username: username, Password: pw})
	if err != nil {
		tb.Fatalf("login %s: %v", username, err)
	}
	return t
}

// isRefusedLogin reports whether err is the one answer of a refused domain.
func isRefusedLogin(err error) bool {
	return fault.CodeOf(err) == fault.Unauthenticated && fault.ReasonOf(err) == "invalid-credentials"
}

func isRefusedRefresh(err error) bool {
	return fault.CodeOf(err) == fault.Unauthenticated && fault.ReasonOf(err) == "invalid-refresh-token"
}

// history returns the event types of an activity aggregate.
func history(tb testing.TB, e *querytest.Env, aggregate, id string) []string {
	tb.Helper()
	h, err := e.Store.Load(context.Background(), tenant, aggregate, id)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, ev := range h.Events {
		out = append(out, ev.Envelope.Type)
	}
	return out
}

func count(types []string, typ string) int {
	n := 0
	for _, t := range types {
		if t == typ {
			n++
		}
	}
	return n
}

func TestApp_PasswordLogin(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	ctx := context.Background()
	alice := e.Users.MustAdd(t, tenant, "Alice", password, "admin")
	bob := e.Users.MustAdd(t, tenant, "bob", password)
	e.Users.Update(tenant, bob, func(u *app.User) { u.Active = false })
	carol := e.Users.MustAdd(t, tenant, "carol", password)
	e.Users.Update(tenant, carol, func(u *app.User) { u.TenantActive = false })

	t.Run("success issues a verifiable token", func(t *testing.T) {
		tok := mustLogin(t, e, "ALICE", password) // usernames are case-insensitive
		claims, err := e.Verifier(t).Verify(ctx, tenant, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if claims.Subject != alice || claims.Tenant != tenant || len(claims.Roles) != 1 || claims.Roles[0] != "admin" ||
			claims.Issuer != querytest.PublicURL+"/t/acme" || len(claims.Audience) != 1 || claims.NotBefore.IsZero() {
			t.Fatalf("claims = %+v", claims)
		}
		if tok.ExpiresIn != app.DefaultAccessTTL || tok.RefreshToken == "" {
			t.Fatalf("tokens = %+v", tok)
		}
		if _, err := e.Verifier(t).Verify(ctx, "globex", tok.AccessToken); err == nil {
			t.Fatal("acme token verified at globex")
		}
		sid, _, err := domain.ParseRefreshToken(tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if got := history(t, e, events.AggregateSession, sid); len(got) != 1 || got[0] != events.TypeSessionStarted {
			t.Fatalf("session history = %v", got)
		}
	})

	refusals := []struct{ name, username, password string }{
		{"wrong password", "alice", "wrong password"},
		{"unknown user", "mallory", password},
		{"malformed username", "a b\x00", password},
		{"disabled user", "bob", password},
		{"disabled tenant", "carol", password},
		{"password over 72 bytes", "alice", string(make([]byte, 100))},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.App.PasswordLogin(ctx, app.PasswordLogin{Tenant: tenant, Username: tt.username, Password: tt.password})
			if !isRefusedLogin(err) {
				t.Fatalf("err = %v, want invalid credentials", err)
			}
			if fault.MessageOf(err) != "invalid username or password" {
				t.Fatalf("message = %q", fault.MessageOf(err))
			}
		})
	}

	t.Run("another tenant does not know the user", func(t *testing.T) {
		_, err := e.App.PasswordLogin(ctx, app.PasswordLogin{Tenant: "globex", Username: "alice", Password: password})
		if !isRefusedLogin(err) {
			t.Fatalf("err = %v, want invalid credentials", err)
		}
	})
}

func TestApp_PasswordLogin_lockout(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	ctx := context.Background()
	id := e.Users.MustAdd(t, tenant, "alice", password)

	// 20 parallel guesses: every one is refused, and at most MaxFailures of
	// them are recorded as failures before the lock.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := e.App.PasswordLogin(ctx, app.PasswordLogin{Tenant: tenant, Username: "alice", Password: "guess"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !isRefusedLogin(err) {
			t.Fatalf("guess answered %v, want invalid credentials", err)
		}
	}
	got := history(t, e, events.AggregateSignin, id)
	if count(got, events.TypeSigninFailed) != 5 || count(got, events.TypeSigninLocked) != 1 {
		t.Fatalf("sign-in history = %v, want 5 failures and a lock", got)
	}

	// The right password is refused while locked, and the lock is not
	// extended by the attempt.
	if _, err := e.App.PasswordLogin(ctx, app.PasswordLogin{Tenant: tenant, Username: "alice", Password: password}); !isRefusedLogin(err) {
		t.Fatalf("right password while locked: %v, want invalid credentials", err)
	}
	if after := history(t, e, events.AggregateSignin, id); len(after) != len(got) {
		t.Fatalf("a locked attempt recorded %v", after[len(got):])
	}

	// After the lock (one minute) the right password works.
	e.Advance(time.Minute + time.Second)
	mustLogin(t, e, "alice", password)
}

func TestApp_PasswordLogin_concurrentSuccesses(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	ctx := context.Background()
	id := e.Users.MustAdd(t, tenant, "alice", password)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := e.App.PasswordLogin(ctx, app.PasswordLogin{Tenant: tenant, Username: "alice", Password: password})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent login: %v", err)
		}
	}
	if got := history(t, e, events.AggregateSignin, id); count(got, events.TypeSigninSucceeded) != n {
		t.Fatalf("sign-in history = %v, want %d successes", got, n)
	}
}

func TestApp_Refresh(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	ctx := context.Background()
	alice := e.Users.MustAdd(t, tenant, "alice", password)

	t.Run("rotation", func(t *testing.T) {
		first := mustLogin(t, e, "alice", password)
		second, err := e.App.Refresh(ctx, tenant, first.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if second.RefreshToken == first.RefreshToken || second.AccessToken == "" {
			t.Fatalf("refresh gave %+v", second)
		}
		if _, err := e.Verifier(t).Verify(ctx, tenant, second.AccessToken); err != nil {
			t.Fatal(err)
		}
		third, err := e.App.Refresh(ctx, tenant, second.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.App.Refresh(ctx, tenant, third.RefreshToken); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("reuse revokes the family", func(t *testing.T) {
		first := mustLogin(t, e, "alice", password)
		second, err := e.App.Refresh(ctx, tenant, first.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.App.Refresh(ctx, tenant, first.RefreshToken); !isRefusedRefresh(err) || !errors.Is(err, domain.ErrTokenReused) {
			t.Fatalf("reuse: %v, want refused for reuse", err)
		}
		if _, err := e.App.Refresh(ctx, tenant, second.RefreshToken); !isRefusedRefresh(err) || !errors.Is(err, domain.ErrSessionRevoked) {
			t.Fatalf("newest token after reuse: %v, want refused as revoked", err)
		}
	})

	t.Run("concurrent refreshes have at most one winner", func(t *testing.T) {
		tok := mustLogin(t, e, "alice", password)
		const n = 8
		var wg sync.WaitGroup
		results := make(chan error, n)
		for range n {
			wg.Go(func() {
				_, err := e.App.Refresh(ctx, tenant, tok.RefreshToken)
				results <- err
			})
		}
		wg.Wait()
		close(results)
		wins := 0
		for err := range results {
			switch {
			case err == nil:
				wins++
			case !isRefusedRefresh(err):
				t.Fatalf("refresh: %v", err)
			}
		}
		if wins > 1 {
			t.Fatalf("%d concurrent refreshes won, want at most 1", wins)
		}
	})

	t.Run("malformed, foreign and other tenant's tokens", func(t *testing.T) {
		tok := mustLogin(t, e, "alice", password)
		sid, _, _ := domain.ParseRefreshToken(tok.RefreshToken)
		forged, _ := domain.NewRefreshToken(sid)
		for name, tc := range map[string]struct{ tenant, token string }{
			"malformed":     {tenant, "nope"},
			"forged secret": {tenant, forged},
			"other tenant":  {"globex", tok.RefreshToken},
			"unknown":       {tenant, func() string { s, _ := domain.NewRefreshToken(events.NewID()); return s }()},
		} {
			if _, err := e.App.Refresh(ctx, tc.tenant, tc.token); !isRefusedRefresh(err) {
				t.Errorf("%s: %v, want refused", name, err)
			}
		}
		// None of them hurt the session.
		if _, err := e.App.Refresh(ctx, tenant, tok.RefreshToken); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("expired", func(t *testing.T) {
		e := querytest.MustEnv(t, app.WithRefreshTTL(time.Hour))
		e.Users.MustAdd(t, tenant, "alice", password)
		tok := mustLogin(t, e, "alice", password)
		e.Advance(time.Hour)
		if _, err := e.App.Refresh(ctx, tenant, tok.RefreshToken); !errors.Is(err, domain.ErrSessionExpired) {
			t.Fatalf("err = %v, want expired", err)
		}
	})

	t.Run("standing changed after a refresh, as announced", func(t *testing.T) {
		// Each case refreshes once (the user's standing now cached), changes
		// the user, then refreshes again.
		tests := []struct {
			name         string
			change, undo func(*app.User)
			wantRefused  bool
			sessionLasts bool // the session still refreshes once undone
		}{
			{"tenant disabled", func(u *app.User) { u.TenantActive = false }, func(u *app.User) { u.TenantActive = true }, true, true},
			{"user disabled", func(u *app.User) { u.Active = false }, func(u *app.User) { u.Active = true }, true, false},
			{"roles changed", func(u *app.User) { u.Roles = []string{"billing"} }, func(u *app.User) { u.Roles = nil }, false, true},
		}
		for _, tt := range tests {
			tok := mustLogin(t, e, "alice", password)
			next, err := e.App.Refresh(ctx, tenant, tok.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			e.Advance(time.Millisecond) // a disable ends sessions started before it
			e.Users.Update(tenant, alice, tt.change)
			after, err := e.App.Refresh(ctx, tenant, next.RefreshToken)
			if refused := isRefusedRefresh(err); refused != tt.wantRefused || (!refused && err != nil) {
				t.Errorf("%s: %v, want refused %v", tt.name, err, tt.wantRefused)
			}
			if err == nil {
				c, err := e.Verifier(t).Verify(ctx, tenant, after.AccessToken)
				if err != nil || !slices.Equal(c.Roles, []string{"billing"}) {
					t.Errorf("%s: access token roles %v, %v; want the new ones", tt.name, c.Roles, err)
				}
			}
			e.Users.Update(tenant, alice, tt.undo)
			if tt.wantRefused {
				_, err := e.App.Refresh(ctx, tenant, next.RefreshToken)
				if lasts := err == nil; lasts != tt.sessionLasts {
					t.Errorf("%s: once undone, refresh = %v; want the session lasting %v", tt.name, err, tt.sessionLasts)
				}
			}
		}
	})

	t.Run("user changed after the session started", func(t *testing.T) {
		tok := mustLogin(t, e, "alice", password)
		e.Users.Update(tenant, alice, func(u *app.User) { u.NotBefore = e.Now().Add(time.Millisecond) })
		t.Cleanup(func() { e.Users.Update(tenant, alice, func(u *app.User) { u.NotBefore = time.Time{} }) })
		if _, err := e.App.Refresh(ctx, tenant, tok.RefreshToken); !errors.Is(err, domain.ErrUserChanged) {
			t.Fatalf("err = %v, want user changed", err)
		}
	})
}

// TestService_Refresh_longSession rotates one session 200 times, which a
// refresh decides from the session's last event, and checks that the
// decisions that need more than that still hold at the end: another
// instance (which never saw the session start) rotates it, a token from
// the middle of the chain is recognised as reuse and revokes the family,
// and a user change counts only if it came after the session's start.
func TestApp_Refresh_longSession(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	ctx := context.Background()
	alice := e.Users.MustAdd(t, tenant, "alice", password)
	const rotations = 200

	first := mustLogin(t, e, "alice", password)
	sid, _, err := domain.ParseRefreshToken(first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	chain := []string{first.RefreshToken}
	for i := range rotations {
		next, err := e.App.Refresh(ctx, tenant, chain[len(chain)-1])
		if err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		if _, err := e.Verifier(t).Verify(ctx, tenant, next.AccessToken); err != nil {
			t.Fatalf("access token of rotation %d: %v", i+1, err)
		}
		chain = append(chain, next.RefreshToken)
	}
	if got := count(history(t, e, events.AggregateSession, sid), events.TypeSessionRefreshed); got != rotations {
		t.Fatalf("%d refreshed events, want %d", got, rotations)
	}

	// Another instance of the service, with nothing remembered of the
	// session, continues the chain.
	other, err := app.New(e.Store, e.Users, e.Keys, e.Hasher, e.Keyring, querytest.PublicURL, app.WithClock(e.Now), app.WithPasswordPool(app.NewPool(1, 4)))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		next, err := other.Refresh(ctx, tenant, chain[len(chain)-1])
		if err != nil {
			t.Fatalf("rotation on another instance: %v", err)
		}
		chain = append(chain, next.RefreshToken)
	}

	// A password change before a session starts does not end it, however
	// long it runs; one after its start does.
	e.Users.Update(tenant, alice, func(u *app.User) { u.NotBefore = e.Now() })
	e.Advance(time.Millisecond)
	second := mustLogin(t, e, "alice", password)
	tok := second.RefreshToken
	for i := range 20 {
		next, err := e.App.Refresh(ctx, tenant, tok)
		if err != nil {
			t.Fatalf("second session, rotation %d: %v", i+1, err)
		}
		tok = next.RefreshToken
	}
	e.Advance(time.Millisecond)
	e.Users.Update(tenant, alice, func(u *app.User) { u.NotBefore = e.Now() })
	if _, err := e.App.Refresh(ctx, tenant, tok); !errors.Is(err, domain.ErrUserChanged) {
		t.Fatalf("after a password change: %v, want refused as changed", err)
	}

	// Reuse of a token rotated away long ago revokes the first family.
	if _, err := e.App.Refresh(ctx, tenant, chain[rotations/2]); !isRefusedRefresh(err) || !errors.Is(err, domain.ErrTokenReused) {
		t.Fatalf("reuse of rotation %d: %v, want refused for reuse", rotations/2, err)
	}
	if _, err := e.App.Refresh(ctx, tenant, chain[len(chain)-1]); !isRefusedRefresh(err) || !errors.Is(err, domain.ErrSessionRevoked) {
		t.Fatalf("newest token after reuse: %v, want refused as revoked", err)
	}
	types := history(t, e, events.AggregateSession, sid)
	if count(types, events.TypeSessionRevoked) != 1 || types[len(types)-1] != events.TypeSessionRevoked {
		t.Fatalf("history ends %v, want one session.revoked at the end", types[len(types)-3:])
	}
}

func TestApp_Refresh_disabledOrDeletedUser(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	ctx := context.Background()
	bob := e.Users.MustAdd(t, tenant, "bob", password)
	carol := e.Users.MustAdd(t, tenant, "carol", password)
	bobTok := mustLogin(t, e, "bob", password)
	carolTok := mustLogin(t, e, "carol", password)
	e.Advance(time.Millisecond)
	e.Users.Update(tenant, bob, func(u *app.User) { u.Active = false })
	e.Users.Delete(tenant, carol)
	for name, tok := range map[string]string{"disabled": bobTok.RefreshToken, "deleted": carolTok.RefreshToken} {
		if _, err := e.App.Refresh(ctx, tenant, tok); !errors.Is(err, domain.ErrUserChanged) {
			t.Errorf("%s user: %v, want refused as changed", name, err)
		}
	}
}

func TestApp_Revoke(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	ctx := context.Background()
	e.Users.MustAdd(t, tenant, "alice", password)
	tok := mustLogin(t, e, "alice", password)

	for name, s := range map[string]string{"garbage": "x", "access token": tok.AccessToken, "unknown session": func() string { s, _ := domain.NewRefreshToken(events.NewID()); return s }()} {
		if err := e.App.Revoke(ctx, tenant, s); err != nil {
			t.Errorf("revoke %s: %v, want nil", name, err)
		}
	}
	if err := e.App.Revoke(ctx, "globex", tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.Refresh(ctx, tenant, tok.RefreshToken); err != nil {
		t.Fatalf("another tenant's revoke ended the session: %v", err)
	}
	tok = mustLogin(t, e, "alice", password)
	for range 2 { // idempotent
		if err := e.App.Revoke(ctx, tenant, tok.RefreshToken); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.App.Refresh(ctx, tenant, tok.RefreshToken); !errors.Is(err, domain.ErrSessionRevoked) {
		t.Fatalf("refresh after revoke: %v, want revoked", err)
	}
}

func TestPool(t *testing.T) {
	t.Parallel()
	p := app.NewPool(1, 1)
	hold, release := make(chan struct{}), make(chan struct{})
	go func() { _ = p.Do(context.Background(), func() { close(hold); <-release }) }()
	<-hold
	queued := make(chan error, 1)
	go func() {
		for { // the probes below may hold the queue's place for a moment
			err := p.Do(context.Background(), func() {})
			if fault.ReasonOf(err) != "busy" {
				queued <- err
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	// Once the waiter holds the queue's one place, a third caller is shed
	// at once.
	var err error
	for range 1000 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err = p.Do(ctx, func() {})
		cancel()
		if fault.ReasonOf(err) == "busy" {
			break
		}
		time.Sleep(2 * time.Millisecond) // let the waiter take the place
	}
	if fault.CodeOf(err) != fault.Unavailable || fault.ReasonOf(err) != "busy" {
		t.Fatalf("third caller: %v, want busy", err)
	}
	close(release)
	if err := <-queued; err != nil {
		t.Fatalf("queued caller: %v", err)
	}
}
