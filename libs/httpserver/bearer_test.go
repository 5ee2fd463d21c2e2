package httpserver_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
)

type callerKey struct{}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	verify := func(r *http.Request, token string) (*http.Request, error) {
		if token != "good" {
			return r, fault.New(fault.Unauthenticated, httpserver.ReasonInvalidToken, "invalid or expired token")
		}
		return r.WithContext(context.WithValue(r.Context(), callerKey{}, "alice")), nil
	}
	h := httpserver.Authenticate(slog.New(slog.DiscardHandler), verify)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.Context().Value(callerKey{}).(string)))
	}))
	tests := []struct {
		name, header, wantReason, wantAuth string
		wantStatus                         int
	}{
		{"good token", "Bearer good", "", "", 200},
		{"bad token", "Bearer bad", httpserver.ReasonInvalidToken, `Bearer realm="authstream", error="invalid_token", error_description="invalid or expired token"`, 401},
		{"no header", "", httpserver.ReasonMissingToken, `Bearer realm="authstream"`, 401},
		{"basic", "Basic YWxpY2U6cHc=", httpserver.ReasonMissingToken, "", 401},
		{"empty bearer", "Bearer ", httpserver.ReasonMissingToken, "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/t/acme/me", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus == 200 {
				if w.Body.String() != "alice" {
					t.Errorf("body = %q, want the caller verify put in the context", w.Body)
				}
				return
			}
			var p struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if !strings.HasSuffix(p.Type, "/"+tt.wantReason) {
				t.Errorf("type = %q, want one ending in %q", p.Type, tt.wantReason)
			}
			if got := w.Header().Get("WWW-Authenticate"); tt.wantAuth != "" && got != tt.wantAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantAuth)
			}
		})
	}
}
