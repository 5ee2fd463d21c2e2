package authstreamtest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// seen is what the test server received.
type seen struct {
	method, path, contentType, auth, consistency, body string
}

// echo answers every request with status, the header X-Seen and body, and
// records what it received.
func echo(t *testing.T, status int, body string) (*httptest.Server, *seen) {
	t.Helper()
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		s = seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Header.Get("Consistency-Token"), string(raw)}
		w.Header().Set("X-Seen", "yes")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &s
}

func TestSend_EncodesTheBodyAndHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                    string
		body                    any
		wantType, wantBody      string
		bearer, consistency     string
		wantAuth, wantConsToken string
	}{
		{"no body", nil, "", "", "", "", "", ""},
		{"form", url.Values{"a": {"1 2"}}, "application/x-www-form-urlencoded", "a=1+2", "", "", "", ""},
		{"JSON", map[string]any{"a": 1}, "application/json", `{"a":1}`, "tok", "ct", "Bearer tok", "ct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s := echo(t, http.StatusTeapot, `{"x":"y"}`)
			r, err := authstreamtest.Send(nil, http.MethodPost, srv.URL+"/p", tt.bearer, tt.consistency, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusTeapot || r.Header.Get("X-Seen") != "yes" || string(r.Body) != `{"x":"y"}` {
				t.Errorf("answer = %d %v %s", r.Status, r.Header, r.Body)
			}
			want := seen{http.MethodPost, "/p", tt.wantType, tt.wantAuth, tt.wantConsToken, tt.wantBody}
			if *s != want {
				t.Errorf("server saw %+v, want %+v", *s, want)
			}
		})
	}
}

func TestSend_ReturnsTransportErrors(t *testing.T) {
	t.Parallel()
	srv, _ := echo(t, http.StatusOK, "")
	srv.Close()
	if _, err := authstreamtest.Send(nil, http.MethodGet, srv.URL, "", "", nil); err == nil {
		t.Error("Send to a closed server = nil error")
	}
	if _, err := authstreamtest.Send(nil, http.MethodGet, "http://127.0.0.1:1", "", "", func() {}); err == nil {
		t.Error("Send of a body JSON cannot encode = nil error")
	}
}

func TestPasswordGrant(t *testing.T) {
	t.Parallel()
	t.Run("200 with tokens", func(t *testing.T) {
		srv, s := echo(t, http.StatusOK, `{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"r"}`)
		got, _, err := authstreamtest.PasswordGrant(nil, srv.URL, "acme", "ada", "pw d", "ct")
		if err != nil {
			t.Fatal(err)
		}
		if want := (authstreamtest.Tokens{AccessToken: "a", TokenType: "Bearer", ExpiresIn: 60, RefreshToken: "r"}); got != want {
			t.Errorf("tokens = %+v, want %+v", got, want)
		}
		form, _ := url.ParseQuery(s.body)
		if s.path != "/t/acme/oauth/token" || s.consistency != "ct" || form.Get("grant_type") != "password" ||
			form.Get("username") != "ada" || form.Get("password") != "pw d" {
			t.Errorf("server saw %+v", *s)
		}
	})
	t.Run("an error answer is an error with its body", func(t *testing.T) {
		srv, _ := echo(t, http.StatusBadRequest, `{"error":"invalid_grant"}`)
		_, r, err := authstreamtest.PasswordGrant(nil, srv.URL, "acme", "ada", "pw", "")
		if err == nil || !strings.Contains(err.Error(), "invalid_grant") || r.Status != http.StatusBadRequest {
			t.Errorf("PasswordGrant = %d, %v; want 400 and an invalid_grant error", r.Status, err)
		}
	})
	t.Run("an answer that is not JSON is an error", func(t *testing.T) {
		srv, _ := echo(t, http.StatusOK, `<html>`)
		if _, _, err := authstreamtest.PasswordGrant(nil, srv.URL, "acme", "ada", "pw", ""); err == nil {
			t.Error("PasswordGrant of an HTML answer = nil error")
		}
	})
}

func TestResponse_Decode(t *testing.T) {
	t.Parallel()
	var v struct{ A int }
	authstreamtest.Response{Body: []byte(`{"A":3}`)}.Decode(t, &v)
	if v.A != 3 {
		t.Errorf("decoded %+v", v)
	}
}
