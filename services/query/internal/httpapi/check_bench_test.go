package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkCheck measures the service's own work for POST /check, without
// the network: an admin's bearer token and a check of another user of a
// tenant with ten roles, served by the handlers in process, the permission
// cache and verifier warm. What it leaves out (TCP, net/http's connection
// handling, the router's middleware) is the HTTP floor that GET /healthz
// measures in tools/bench.
func BenchmarkCheck(b *testing.B) {
	f := mustFixture(b)
	var roles []string
	for r := range 10 {
		name := "role-" + string(rune('a'+r))
		f.mustRole(b, "acme", name, "res"+string(rune('a'+r))+":read", "res"+string(rune('a'+r))+":write")
		roles = append(roles, name)
	}
	f.mustUser(b, "acme", "boss", "admin")
	user := f.mustUser(b, "acme", "clerk", roles...)
	tok := f.mustToken(b, "acme", "boss")
	body := `{"user_id":"` + user + `","permission":"resj:write"}`
	h := f.srv.Config.Handler
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/t/acme/check", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"allowed":true`) {
		b.Fatalf("check: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if rec := serve(); rec.Code != http.StatusOK {
			b.Fatalf("check: %d %s", rec.Code, rec.Body)
		}
	}
}
