package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// FuzzRouter sends arbitrary methods, paths, bodies, content types,
// Idempotency-Keys and callers (none, a tenant admin, the platform admin,
// a garbage token) to the command service's router on a real JetStream:
// whatever the request, the answer is never a 5xx, and every error is a
// problem body. In a path, "{admin}" stands for the tenant admin's user id,
// so that seeds reach the handlers of existing users. The seed corpus is
// testdata/fuzz/FuzzRouter; go test -fuzz FuzzRouter -fuzzminimizetime 5x
// explores further (a command takes milliseconds, so the default
// minimisation of a minute per new input stalls the run).
func FuzzRouter(f *testing.F) {
	s := mustServer(f)
	acme := s.mustTenant(f, "acme")
	router := httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: s.App})
	tokens := []string{"", acme.AdminToken, s.PlatformToken(f), "not.a.jwt"}
	contentTypes := []string{"application/json", "application/merge-patch+json", "application/x-www-form-urlencoded", ""}

	f.Fuzz(func(t *testing.T, method, path string, body []byte, who, contentType byte, key string) {
		target := strings.ReplaceAll(path, "{admin}", acme.AdminID)
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: target} // routed as it is, bytes chi may never see from a real server included
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Method, req.URL, req.RequestURI = method, u, target
		if ct := contentTypes[int(contentType)%len(contentTypes)]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if tok := tokens[int(who)%len(tokens)]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if key != "" {
			req.Header.Set(httpapi.HeaderIdempotencyKey, key)
		}
		w := httptest.NewRecorder()
		router.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%q %q answered %d: %s", method, target, w.Code, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != httpserver.ProblemContentType {
			t.Fatalf("%q %q answered %d without a problem body: %q", method, target, w.Code, w.Body)
		}
	})
}
