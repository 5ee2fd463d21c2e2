package domain_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// verifier is a PKCE verifier of the tests; challenge its S256 challenge.
var (
	verifier  = strings.Repeat("v", 43)
	challenge = domain.S256Challenge(verifier)
)

// issued is the event that issues a code to client c1 for user u1 at t0,
// with PKCE challenge ch ("" for none), living 60 seconds.
func issued(ch string) domain.Pending {
	g := events.AuthCodeIssued{
		ClientID: "c1", UserID: "u1", RedirectURI: "https://app.example/cb", Scopes: []string{"openid"},
		BrowserSession: strings.Repeat("b", 64), AuthTime: t0, AMR: []string{"pwd"}, ExpiresAt: t0.Add(time.Minute),
	}
	if ch != "" {
		g.CodeChallenge, g.CodeChallengeMethod = ch, domain.PKCEMethodS256
	}
	return domain.Pending{Type: events.TypeAuthCodeIssued, Data: g}
}

func mustCode(tb testing.TB, recorded ...domain.Pending) *domain.AuthCode {
	tb.Helper()
	c, err := domain.LoadAuthCode(aggID, mustHistory(tb, recorded...))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestAuthCode_Redeem(t *testing.T) {
	t.Parallel()
	redeemed := domain.Pending{Type: events.TypeAuthCodeRedeemed, Data: events.AuthCodeRedeemed{SessionID: "s1"}}
	replayed := domain.Pending{Type: events.TypeAuthCodeReplayed, Data: events.AuthCodeReplayed{ClientID: "c1", SessionID: "s1"}}
	ok := domain.Redemption{ClientID: "c1", RedirectURI: "https://app.example/cb", CodeVerifier: verifier, SessionID: "s2", Now: t0.Add(time.Second)}
	with := func(edit func(*domain.Redemption)) domain.Redemption { r := ok; edit(&r); return r }
	tests := []struct {
		name      string
		history   []domain.Pending
		req       domain.Redemption
		wantErr   error
		wantTypes []string
	}{
		{"matching redemption", []domain.Pending{issued(challenge)}, ok, nil, []string{events.TypeAuthCodeRedeemed}},
		{"no PKCE, no verifier", []domain.Pending{issued("")}, with(func(r *domain.Redemption) { r.CodeVerifier = "" }), nil, []string{events.TypeAuthCodeRedeemed}},
		{"never issued", nil, ok, domain.ErrUnknownCode, nil},
		{"second redemption records the replay", []domain.Pending{issued(challenge), redeemed}, ok, domain.ErrCodeReused, []string{events.TypeAuthCodeReplayed}},
		{"third redemption records nothing", []domain.Pending{issued(challenge), redeemed, replayed}, ok, domain.ErrCodeReused, nil},
		{"expired", []domain.Pending{issued(challenge)}, with(func(r *domain.Redemption) { r.Now = t0.Add(time.Minute) }), domain.ErrCodeExpired, nil},
		{"another client", []domain.Pending{issued(challenge)}, with(func(r *domain.Redemption) { r.ClientID = "c2" }), domain.ErrCodeClientMismatch, nil},
		{"another redirect uri", []domain.Pending{issued(challenge)}, with(func(r *domain.Redemption) { r.RedirectURI = "https://app.example/cb/" }), domain.ErrCodeRedirectMismatch, nil},
		{"missing verifier", []domain.Pending{issued(challenge)}, with(func(r *domain.Redemption) { r.CodeVerifier = "" }), domain.ErrPKCEMismatch, nil},
		{"wrong verifier", []domain.Pending{issued(challenge)}, with(func(r *domain.Redemption) { r.CodeVerifier = strings.Repeat("w", 43) }), domain.ErrPKCEMismatch, nil},
		{"short verifier", []domain.Pending{issued(domain.S256Challenge("abc"))}, with(func(r *domain.Redemption) { r.CodeVerifier = "abc" }), domain.ErrPKCEMismatch, nil},
		{"verifier without challenge", []domain.Pending{issued("")}, ok, domain.ErrPKCEMismatch, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustCode(t, tt.history...)
			err := c.Redeem(tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Redeem = %v, want %v", err, tt.wantErr)
			}
			if got := types(c.Pending()); !slices.Equal(got, tt.wantTypes) {
				t.Fatalf("recorded %v, want %v", got, tt.wantTypes)
			}
			if tt.wantErr == domain.ErrCodeReused && c.SessionID() != "s1" {
				t.Fatalf("SessionID = %q, want the first redemption's", c.SessionID())
			}
		})
	}
}

func TestAuthCode_Issue(t *testing.T) {
	t.Parallel()
	c := mustCode(t)
	g := issued(challenge).Data.(events.AuthCodeIssued)
	if err := c.Issue(g, t0); err != nil {
		t.Fatal(err)
	}
	if got := c.Grant(); got.ClientID != "c1" || got.CodeChallenge != challenge {
		t.Fatalf("Grant = %+v", got)
	}
	if err := mustCode(t, issued("")).Issue(g, t0); !errors.Is(err, domain.ErrCodeExists) {
		t.Fatalf("Issue of an issued code = %v", err)
	}
}

func TestAuthCodeID(t *testing.T) {
	t.Parallel()
	code, id := domain.NewAuthCode()
	if got, err := domain.AuthCodeID(code); err != nil || got != id || len(id) != 64 || !events.ValidToken(id) {
		t.Fatalf("AuthCodeID = %q, %v; want %q", got, err, id)
	}
	if strings.Contains(id, code) {
		t.Fatal("the id reveals the code")
	}
	for _, bad := range []string{"", "short", code + "x", strings.Repeat("!", 43), strings.Repeat("a", 42) + "."} {
		if _, err := domain.AuthCodeID(bad); !errors.Is(err, domain.ErrMalformedCode) {
			t.Errorf("AuthCodeID(%q) = %v", bad, err)
		}
	}
}

func TestBrowser_StartEnd(t *testing.T) {
	t.Parallel()
	cookie, id := domain.NewBrowserCookie()
	if got, err := domain.BrowserID(cookie); err != nil || got != id {
		t.Fatalf("BrowserID = %q, %v", got, err)
	}
	if _, err := domain.BrowserID("nope"); !errors.Is(err, domain.ErrMalformedCookie) {
		t.Fatalf("BrowserID(nope) = %v", err)
	}
	b, err := domain.LoadBrowser(aggID, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.End(domain.BrowserLogout, t0) // nothing to end
	if len(b.Pending()) != 0 || b.Live() {
		t.Fatal("a session never started ended or lives")
	}
	if err := b.Start("u1", []string{"pwd"}, "192.0.2.1", t0); err != nil {
		t.Fatal(err)
	}
	if !b.Live() || b.UserID() != "u1" || !b.AuthTime().Equal(t0) {
		t.Fatalf("started session: live %v user %q at %v", b.Live(), b.UserID(), b.AuthTime())
	}
	if err := b.Start("u1", nil, "", t0); !errors.Is(err, domain.ErrBrowserExists) {
		t.Fatalf("second Start = %v", err)
	}
	b.End(domain.BrowserLogout, t0.Add(time.Minute))
	b.End(domain.BrowserLogout, t0.Add(time.Minute))
	if got := types(b.Pending()); !slices.Equal(got, []string{events.TypeBrowserStarted, events.TypeBrowserEnded}) {
		t.Fatalf("recorded %v", got)
	}
	// Its last event alone says it is over, as the whole history does.
	h := mustHistory(t, b.Pending()...)
	resumed, err := domain.ResumeBrowser(aggID, h[len(h)-1])
	if err != nil || resumed.Live() {
		t.Fatalf("ResumeBrowser = live %v, %v", resumed != nil && resumed.Live(), err)
	}
	resumed, err = domain.ResumeBrowser(aggID, h[0])
	if err != nil || !resumed.Live() || resumed.UserID() != "u1" || !slices.Equal(resumed.AMR(), []string{"pwd"}) {
		t.Fatalf("ResumeBrowser of the start = %+v, %v", resumed, err)
	}
}

// TestSession_boundToItsClient checks that a session started for a client
// rotates for that client only, and that a presentation by another client
// (or by no client) records nothing: it cannot revoke the family either.
func TestSession_boundToItsClient(t *testing.T) {
	t.Parallel()
	g := domain.Grant{ClientID: "c1", Scopes: []string{"openid", "offline_access"}, AuthTime: t0, AMR: []string{"pwd"}}
	s, err := domain.LoadSession(aggID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StartGrant("u1", g, "h0", t0, ttl); err != nil {
		t.Fatal(err)
	}
	loaded := mustLoadSession(t, s.Pending()...)
	if loaded.ClientID() != "c1" || !slices.Equal(loaded.Grant().Scopes, g.Scopes) || !loaded.Grant().AuthTime.Equal(t0) {
		t.Fatalf("grant = %+v", loaded.Grant())
	}
	for _, client := range []string{"", "c2"} {
		c := loaded.Clone()
		err := c.Refresh(domain.Refresh{ClientID: client, PresentedHash: "h0", NewHash: "h1", Now: t0.Add(time.Minute), TTL: ttl})
		if !errors.Is(err, domain.ErrSessionClientMismatch) || len(c.Pending()) != 0 {
			t.Fatalf("refresh by %q = %v, recorded %v", client, err, types(c.Pending()))
		}
	}
	c := loaded.Clone()
	if err := c.Refresh(domain.Refresh{ClientID: "c1", PresentedHash: "h0", NewHash: "h1", Now: t0.Add(time.Minute), TTL: ttl}); err != nil {
		t.Fatal(err)
	}
	// A rotation decided from the last event keeps the grant of the origin.
	h := mustHistory(t, append(s.Pending(), c.Pending()...)...)
	resumed, ok, err := domain.ResumeSession(aggID, loaded.Origin(), h[1], "h1")
	if err != nil || !ok || resumed.ClientID() != "c1" {
		t.Fatalf("ResumeSession = %v %v, client %q", ok, err, resumed.ClientID())
	}
}
