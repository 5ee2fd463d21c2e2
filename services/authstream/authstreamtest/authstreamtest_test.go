package authstreamtest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authstream/authstream/services/authstream"
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

// client returns a client whose every service is srv.
func client(t *testing.T, srv *httptest.Server) *authstreamtest.Client {
	return authstreamtest.NewClient(t, authstream.Endpoints{Query: srv.URL, Command: srv.URL, Projector: srv.URL}, nil)
}

func TestClient_Send(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                    string
		body                    any
		raw, rawType            string
		wantType, wantBody      string
		bearer, consistency     string
		wantAuth, wantConsToken string
	}{
		{"no body", nil, "", "", "", "", "", "", "", ""},
		{"form", url.Values{"a": {"1 2"}}, "", "", "application/x-www-form-urlencoded", "a=1+2", "", "", "", ""},
		{"JSON", map[string]any{"a": 1}, "", "", "application/json", `{"a":1}`, "tok", "ct", "Bearer tok", "ct"},
		{"raw", nil, `{"a":`, "text/plain", "text/plain", `{"a":`, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s := echo(t, http.StatusTeapot, `{"x":"y"}`)
			r, err := client(t, srv).Send(authstreamtest.Request{Method: http.MethodPost, URL: srv.URL + "/p",
				Bearer: tt.bearer, Consistency: tt.consistency, Body: tt.body, Raw: tt.raw, ContentType: tt.rawType})
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

func TestClient_Send_returnsTransportErrors(t *testing.T) {
	t.Parallel()
	srv, _ := echo(t, http.StatusOK, "")
	c := client(t, srv)
	srv.Close()
	if _, err := c.Send(authstreamtest.Request{Method: http.MethodGet, URL: srv.URL}); err == nil {
		t.Error("Send to a closed server = nil error")
	}
	if _, err := c.Send(authstreamtest.Request{Method: http.MethodGet, URL: "http://127.0.0.1:1", Body: func() {}}); err == nil {
		t.Error("Send of a body JSON cannot encode = nil error")
	}
}

func TestClient_Exchange_isObserved(t *testing.T) {
	t.Parallel()
	srv, _ := echo(t, http.StatusTeapot, `{"x":"y"}`)
	c := client(t, srv)
	var seen []string
	c.Observe = func(_ testing.TB, r authstreamtest.Request, res authstreamtest.Response) {
		seen = append(seen, r.Method+" "+res.Str("x"))
	}
	c.Must(t, authstreamtest.Request{Method: http.MethodGet, URL: srv.URL, Header: map[string]string{"X-A": "b"}}, http.StatusTeapot)
	c.Do(t, http.MethodPut, srv.URL, "", "", nil, http.StatusTeapot)
	if len(seen) != 2 || seen[0] != "GET y" || seen[1] != "PUT y" {
		t.Errorf("Observe saw %v", seen)
	}
}

func TestClient_PasswordGrant(t *testing.T) {
	t.Parallel()
	t.Run("200 with tokens", func(t *testing.T) {
		srv, s := echo(t, http.StatusOK, `{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"r"}`)
		got, _, err := client(t, srv).PasswordGrant("acme", "ada", "pw d", "ct")
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
		_, r, err := client(t, srv).PasswordGrant("acme", "ada", "pw", "")
		if err == nil || !strings.Contains(err.Error(), "invalid_grant") || r.Status != http.StatusBadRequest {
			t.Errorf("PasswordGrant = %d, %v; want 400 and an invalid_grant error", r.Status, err)
		}
	})
	t.Run("an answer that is not JSON is an error", func(t *testing.T) {
		srv, _ := echo(t, http.StatusOK, `<html>`)
		if _, _, err := client(t, srv).PasswordGrant("acme", "ada", "pw", ""); err == nil {
			t.Error("PasswordGrant of an HTML answer = nil error")
		}
	})
	t.Run("an incomplete token answer is an error", func(t *testing.T) {
		srv, _ := echo(t, http.StatusOK, `{"access_token":"a","token_type":"Bearer","expires_in":60}`)
		if _, _, err := client(t, srv).PasswordGrant("acme", "ada", "pw", ""); err == nil {
			t.Error("PasswordGrant of an answer without a refresh token = nil error")
		}
	})
}

func TestResponse_Decode(t *testing.T) {
	t.Parallel()
	var v struct{ A int }
	r := authstreamtest.Response{Body: []byte(`{"A":3,"s":"x"}`), Header: http.Header{"Consistency-Token": {"ct"}}}
	r.Decode(t, &v)
	if v.A != 3 || r.Str("s") != "x" || r.Str("A") != "" || r.Token() != "ct" {
		t.Errorf("decoded %+v, s %q, token %q", v, r.Str("s"), r.Token())
	}
	if m := (authstreamtest.Response{Body: []byte(`[1]`)}).JSON(); m != nil {
		t.Errorf("JSON of an array = %v, want nil", m)
	}
}
