package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRouter sends arbitrary methods and paths to the projector's router,
// as an anonymous caller, an operator who may look and one who may act,
// over a real operator API (PostgreSQL, NATS, running workers): whatever
// the request, the answer is never a 5xx. The seed corpus is in
// testdata/fuzz/FuzzRouter; `go test` runs it, `go test -fuzz FuzzRouter`
// explores.
func FuzzRouter(f *testing.F) {
	e := mustOpEnv(f)
	for _, seed := range []struct {
		method, path string
		who          uint8
	}{
		{http.MethodGet, "/projections", 1},
		{http.MethodGet, "/projections/jobs/%00", 1},
		{http.MethodPost, "/projections/accounts%00/partitions/1/resume", 2},
		{http.MethodPost, "/projections/accounts/partitions/%00/resume", 2},
	} {
		f.Add(seed.method, seed.path, seed.who)
	}
	users := []string{"", "viewer", "admin"}
	f.Fuzz(func(t *testing.T, method, path string, who uint8) {
		u, err := url.ParseRequestURI(path)
		if err != nil || strings.ContainsAny(path, " \r\n") {
			return // the server refuses it before any route
		}
		req, err := http.NewRequest(method, "http://projector.test", nil)
		if err != nil {
			return // not a method a client can send
		}
		req.URL.Path, req.URL.RawPath, req.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		req.RequestURI = path
		if tok := e.tokens[users[int(who)%len(users)]]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q as %q: %d %s", method, path, users[int(who)%len(users)], rec.Code, rec.Body)
		}
	})
}
