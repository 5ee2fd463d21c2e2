package commandapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/commandapi"
)

// TestClient_SignUp: each answer of the command service becomes the
// error the hosted page tells apart, and the request carries the form.
func TestClient_SignUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		header    map[string]string
		wantCode  fault.Code
		wantMsg   string
		wantErr   error
		wantRetry time.Duration
	}{
		{name: "accepted", status: http.StatusAccepted, body: `{"status":"accepted"}`},
		{name: "closed", status: http.StatusNotFound, body: `{"reason":"signup-closed"}`, wantErr: app.ErrSignupClosed},
		{name: "invalid address", status: http.StatusBadRequest, body: `{"status":400,"detail":"e-mail address is invalid"}`, wantCode: fault.Invalid, wantMsg: "e-mail address is invalid"},
		{name: "too large", status: http.StatusRequestEntityTooLarge, body: `{}`, wantCode: fault.Invalid},
		{name: "rate limited", status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "7"}, wantCode: fault.TooMany, wantRetry: 7 * time.Second},
		{name: "server error", status: http.StatusInternalServerError, wantCode: fault.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var b map[string]string
				if r.Method != http.MethodPost || r.URL.Path != "/t/acme/users:signup" || json.NewDecoder(r.Body).Decode(&b) != nil ||
					b["email"] != "sam@acme.example" || b["password"] != "user-password" {
					http.Error(w, "unexpected request", http.StatusTeapot)
					return
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := commandapi.New(srv.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			err = c.SignUp(t.Context(), "acme", "sam@acme.example", "user-password")
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("SignUp = %v, want %v", err, tc.wantErr)
				}
			case tc.wantCode == "":
				if err != nil {
					t.Fatalf("SignUp = %v, want nil", err)
				}
			default:
				if fault.CodeOf(err) != tc.wantCode || (tc.wantMsg != "" && fault.MessageOf(err) != tc.wantMsg) {
					t.Fatalf("SignUp = %v (code %s), want code %s, message %q", err, fault.CodeOf(err), tc.wantCode, tc.wantMsg)
				}
				if d, _ := fault.RetryAfterOf(err); d != tc.wantRetry {
					t.Fatalf("Retry-After %s, want %s", d, tc.wantRetry)
				}
			}
		})
	}
}

func TestNew_refusesRelativeURL(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "command:8081", "ftp://command", "/t/acme"} {
		if _, err := commandapi.New(bad); err == nil {
			t.Errorf("New(%q) = nil error", bad)
		}
	}
}
