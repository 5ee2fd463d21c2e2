package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

// FuzzParseForm sends arbitrary bodies and content types to the three
// endpoints that parse a request body (token, login and revoke). Whatever
// the client sends, the answer is a client error or a success, never a
// panic or a 500: a malformed body is the client's fault. The seed corpus
// is in testdata/fuzz/FuzzParseForm.
func FuzzParseForm(f *testing.F) {
	e := querytest.MustEnv(f)
	e.Users.MustAdd(f, "acme", "alice", password)
	r := newRouter(e.App)

	f.Add(uint8(0), form, "grant_type=password&username=alice&password=correct+horse+battery")
	f.Add(uint8(1), "application/json", `{"username":"alice","password":"wrong"}`)
	f.Add(uint8(2), form, "token=abc")

	// The endpoint is chosen by the first byte, so every input reaches one.
	paths := []string{"/t/acme/oauth/token", "/t/acme/login", "/t/acme/oauth/revoke"}
	f.Fuzz(func(t *testing.T, endpoint uint8, contentType, body string) {
		req := httptest.NewRequest(http.MethodPost, paths[int(endpoint)%len(paths)], strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code >= http.StatusInternalServerError && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for content type %q, body %q: %s", rec.Code, contentType, body, rec.Body)
		}
		if rec.Code != http.StatusOK {
			var eb httpapi.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" {
				t.Fatalf("status %d with a body that is not an OAuth error: %q", rec.Code, rec.Body)
			}
		}
	})
}
