package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/postgres"
	"github.com/authstream/authstream/services/query/internal/querytest"
	"golang.org/x/oauth2"
)

const password = "correct horse battery"

// newRouter serves the API of a.
func newRouter(a *app.App) http.Handler {
	return httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: a})
}

// mustServer serves the API of e.
func mustServer(tb testing.TB, e *querytest.Env) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(newRouter(e.App))
	tb.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func mustPost(tb testing.TB, rawURL, contentType, body string) answer {
	tb.Helper()
	res, err := http.Post(rawURL, contentType, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	a := answer{status: res.StatusCode, header: res.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			tb.Fatalf("body %q: %v", raw, err)
		}
	}
	return a
}

const form = "application/x-www-form-urlencoded"

func TestPasswordGrant_golangOAuth2(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	srv := mustServer(t, e)
	ctx := context.Background()

	for name, style := range map[string]oauth2.AuthStyle{
		"params":      oauth2.AuthStyleInParams,
		"header":      oauth2.AuthStyleInHeader,
		"auto detect": oauth2.AuthStyleAutoDetect,
	} {
		t.Run(name, func(t *testing.T) {
			conf := oauth2.Config{ClientID: "my-app", ClientSecret: "ignored", Scopes: []string{"openid"},
				Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/t/acme/oauth/token", AuthStyle: style}}
			tok, err := conf.PasswordCredentialsToken(ctx, "alice", password)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Type() != "Bearer" || time.Until(tok.Expiry) < 10*time.Minute {
				t.Fatalf("token = %+v", tok)
			}
			if _, err := e.Verifier(t).Verify(ctx, "acme", tok.AccessToken); err != nil {
				t.Fatal(err)
			}

			// The refresh grant through the library's token source.
			tok.Expiry = time.Now().Add(-time.Minute)
			next, err := conf.TokenSource(ctx, tok).Token()
			if err != nil {
				t.Fatal(err)
			}
			if next.AccessToken == tok.AccessToken || next.RefreshToken == tok.RefreshToken {
				t.Fatal("refresh did not rotate")
			}

			_, err = conf.PasswordCredentialsToken(ctx, "alice", "wrong password")
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || re.Response.StatusCode != http.StatusBadRequest {
				t.Fatalf("wrong password: %v, want invalid_grant", err)
			}
		})
	}
}

func TestTokenEndpoint_refusalsLookAlike(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	bob := e.Users.MustAdd(t, "acme", "bob", password)
	e.Users.Update("acme", bob, func(u *app.User) { u.Active = false })
	e.Users.MustAdd(t, "acme", "locked", password)
	srv := mustServer(t, e)
	token := srv.URL + "/t/acme/oauth/token"
	for range 5 {
		mustPost(t, token, form, "grant_type=password&username=locked&password=nope")
	}

	want := map[string]any{"error": "invalid_grant", "error_description": "invalid username or password"}
	for name, body := range map[string]string{
		"wrong password":  "grant_type=password&username=alice&password=nope",
		"unknown user":    "grant_type=password&username=mallory&password=" + url.QueryEscape(password),
		"disabled user":   "grant_type=password&username=bob&password=" + url.QueryEscape(password),
		"locked account":  "grant_type=password&username=locked&password=" + url.QueryEscape(password),
		"other tenant":    "grant_type=password&username=alice&password=" + url.QueryEscape(password),
		"refresh garbage": "grant_type=refresh_token&refresh_token=abc",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			at := token
			if name == "other tenant" {
				at = srv.URL + "/t/globex/oauth/token"
			}
			a := mustPost(t, at, form, body)
			if a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" {
				t.Fatalf("answer = %d %v", a.status, a.body)
			}
			if name != "refresh garbage" && (len(a.body) != 2 || a.body["error_description"] != want["error_description"]) {
				t.Fatalf("body = %v, want %v", a.body, want)
			}
			if a.header.Get("Cache-Control") != "no-store" || a.header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers = %v", a.header)
			}
		})
	}
}

// TestTokenEndpoint_unknownTenant asks the password grant of a tenant the
// read model does not know (one not projected yet, or none at all), with
// the tenant settings read from the read model as the service reads them:
// the answer is the one of an unknown user, not a server error.
func TestTokenEndpoint_unknownTenant(t *testing.T) {
	t.Parallel()
	f := mustFixtureWith(t, func(store *postgres.Store) []app.Option { return []app.Option{app.WithTenantSettings(store)} })
	a := mustPost(t, f.srv.URL+"/t/initech/oauth/token", form, "grant_type=password&username=alice&password="+url.QueryEscape(password))
	if a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" || a.body["error_description"] != "invalid username or password" {
		t.Fatalf("answer = %d %v, want invalid_grant", a.status, a.body)
	}
}

func TestTokenEndpoint_badRequests(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	srv := mustServer(t, e)
	tests := []struct {
		name, path, contentType, body string
		status                        int
		err                           string
	}{
		{"no grant type", "/t/acme/oauth/token", form, "username=a&password=b", 400, "invalid_request"},
		{"unsupported grant", "/t/acme/oauth/token", form, "grant_type=client_credentials", 400, "unsupported_grant_type"},
		{"missing password", "/t/acme/oauth/token", form, "grant_type=password&username=a", 400, "invalid_request"},
		{"missing refresh token", "/t/acme/oauth/token", form, "grant_type=refresh_token", 400, "invalid_request"},
		{"json body", "/t/acme/oauth/token", "application/json", `{"grant_type":"password"}`, 400, "invalid_request"},
		{"repeated parameter", "/t/acme/oauth/token", form, "grant_type=password&username=a&username=b&password=c", 400, "invalid_request"},
		{"malformed form", "/t/acme/oauth/token", form, "grant_type=%zz", 400, "invalid_request"},
		{"huge body", "/t/acme/oauth/token", form, "grant_type=password&username=" + strings.Repeat("a", 20000), 400, "invalid_request"},
		{"login: bad json", "/t/acme/login", "application/json", `{"username":`, 400, "invalid_request"},
		{"login: two objects", "/t/acme/login", "application/json", `{} {}`, 400, "invalid_request"},
		{"login: other grant", "/t/acme/login", form, "grant_type=refresh_token&refresh_token=x", 400, "unsupported_grant_type"},
		{"revoke: no token", "/t/acme/oauth/revoke", form, "", 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := mustPost(t, srv.URL+tt.path, tt.contentType, tt.body)
			if a.status != tt.status || a.body["error"] != tt.err {
				t.Fatalf("answer = %d %v, want %d %s", a.status, a.body, tt.status, tt.err)
			}
		})
	}

	t.Run("malformed tenant", func(t *testing.T) {
		t.Parallel()
		a := mustPost(t, srv.URL+"/t/ACME!/oauth/token", form, "grant_type=password&username=a&password=b")
		if a.status != http.StatusNotFound || a.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("answer = %d %v", a.status, a.header)
		}
	})
}

func TestLoginAndRevoke(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	srv := mustServer(t, e)

	check := func(t *testing.T, a answer) string {
		t.Helper()
		if a.status != http.StatusOK || a.body["token_type"] != "Bearer" || a.body["expires_in"] != float64(900) ||
			a.body["access_token"] == nil || a.body["refresh_token"] == nil || a.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("answer = %d %v %v", a.status, a.body, a.header)
		}
		return a.body["refresh_token"].(string)
	}
	check(t, mustPost(t, srv.URL+"/t/acme/login", "application/json", `{"username":"alice","password":"`+password+`"}`))
	check(t, mustPost(t, srv.URL+"/t/acme/login", "application/json; charset=utf-8", `{"username":"alice","password":"`+password+`"}`))
	rt := check(t, mustPost(t, srv.URL+"/t/acme/login", form, "username=alice&password="+url.QueryEscape(password)))

	for _, tok := range []string{"unknown", rt, rt} { // unknown and repeated revocations are 200 too
		if a := mustPost(t, srv.URL+"/t/acme/oauth/revoke", form, "token="+url.QueryEscape(tok)+"&token_type_hint=refresh_token"); a.status != http.StatusOK {
			t.Fatalf("revoke: %d %v", a.status, a.body)
		}
	}
	a := mustPost(t, srv.URL+"/t/acme/oauth/token", form, "grant_type=refresh_token&refresh_token="+url.QueryEscape(rt))
	if a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" {
		t.Fatalf("refresh after revoke: %d %v", a.status, a.body)
	}
}

func TestTokenEndpoint_busy(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	// A service whose bcrypt pool has no queue and one slot held.
	pool := app.NewPool(1, 0)
	busy, err := app.New(e.Store, e.Users, e.Keys, e.Hasher, e.Keyring, querytest.PublicURL, app.WithPasswordPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	release, held := make(chan struct{}), make(chan struct{})
	go func() { _ = pool.Do(context.Background(), func() { close(held); <-release }) }()
	<-held
	defer close(release)
	srv := httptest.NewServer(newRouter(busy))
	defer srv.Close()
	a := mustPost(t, srv.URL+"/t/acme/oauth/token", form, "grant_type=password&username=alice&password=x")
	if a.status != http.StatusServiceUnavailable || a.body["error"] != "temporarily_unavailable" || a.header.Get("Retry-After") != "1" {
		t.Fatalf("answer = %d %v %v", a.status, a.body, a.header)
	}
}
