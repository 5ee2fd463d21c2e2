package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
)

// FuzzRouter sends arbitrary methods, paths and query strings, with and
// without an admin's bearer token, to the query service's router wired to
// a real read model (PostgreSQL, with a tenant, users and a role) and a real
// event log (NATS, with the tenant's account events): whatever the request,
// the answer is never a 5xx. A request line net/http would refuse before
// routing (a malformed target or method) is skipped. The seed corpus is in
// testdata/fuzz/FuzzRouter.
func FuzzRouter(f *testing.F) {
	fx := mustFixture(f)
	fx.mustRole(f, "acme", "billing", "invoices:*")
	root := fx.mustUser(f, "acme", "root", "admin")
	alice := fx.mustUser(f, "acme", "alice", "billing")
	mustAccountEvents(f, fx, root, alice)
	tok := fx.mustToken(f, "acme", "root")
	h := fx.srv.Config.Handler

	f.Add(http.MethodGet, "/t/acme/users/"+alice, true)
	f.Add(http.MethodGet, "/t/acme/users/"+alice+"/history?as_of=2030-01-01T00:00:00Z", true)
	f.Add(http.MethodGet, "/t/acme/audit/events?format=jsonl", true)
	f.Add(http.MethodPost, "/t/acme/oauth/token", false)

	f.Fuzz(func(t *testing.T, method, target string, authed bool) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !validMethod(method) {
			return
		}
		req := (&http.Request{
			Method: method, URL: u, RequestURI: target, Host: "query.test",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: http.NoBody, RemoteAddr: "192.0.2.1:1234",
		}).WithContext(context.Background())
		if authed {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= http.StatusInternalServerError {
			t.Fatalf("%s %q (token %v) = %d %s", method, target, authed, rec.Code, rec.Body)
		}
	})
}

// validMethod reports whether m is a method net/http accepts in a request
// line: a token (RFC 9110).
func validMethod(m string) bool {
	return m != "" && strings.IndexFunc(m, func(r rune) bool {
		return r > 0x7e || r <= 0x20 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	}) < 0
}

// mustAccountEvents appends the account events of the fixture's tenant acme
// to the log, as the command service would have: its creation, the
// billing role and the registration of root and alice, so that the audit
// routes read real histories.
func mustAccountEvents(tb testing.TB, fx *fixture, root, alice string) {
	tb.Helper()
	ctx := context.Background()
	at := time.Now().Add(-time.Hour)
	sealed := events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: []byte("sealed")}
	for _, e := range []struct {
		aggregate, id, typ string
		data               any
	}{
		{events.AggregateTenant, "acme", events.TypeTenantCreated, events.TenantCreated{Name: "Acme"}},
		{events.AggregateRole, "billing", events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*"}}},
		{events.AggregateUser, root, events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("root"), UsernameKey: events.LegacyPersonal("root"), Credential: sealed}},
		{events.AggregateUser, root, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "admin"}},
		{events.AggregateUser, alice, events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("alice"), UsernameKey: events.LegacyPersonal("alice"), Credential: sealed}},
		{events.AggregateUser, alice, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "billing"}},
	} {
		env, err := events.New(e.typ, e.data, events.Meta{Tenant: "acme", Aggregate: e.aggregate, AggregateID: e.id, OccurredAt: at, Actor: events.System})
		if err != nil {
			tb.Fatal(err)
		}
		last, ok, err := fx.env.Store.Last(ctx, "acme", e.aggregate, e.id)
		if err != nil {
			tb.Fatal(err)
		}
		var after eventstore.Position
		if ok {
			after = last.Position()
		}
		if _, err := fx.env.Store.Append(ctx, eventstore.Events{After: after, Events: []events.Envelope{env}}); err != nil {
			tb.Fatalf("append %s: %v", e.typ, err)
		}
	}
}
