package authn_test

import (
	"net/http/httptest"
	"testing"

	"github.com/authstream/authstream/libs/authn"
)

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, header, want string
		ok                 bool
	}{
		{"bearer", "Bearer abc.def", "abc.def", true},
		{"scheme in other case", "bEaReR abc", "abc", true},
		{"spaces around the token", "Bearer   abc  ", "abc", true},
		{"no header", "", "", false},
		{"basic", "Basic YWxpY2U6cHc=", "", false},
		{"scheme only", "Bearer", "", false},
		{"empty token", "Bearer    ", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			got, ok := authn.BearerToken(r)
			if got != tt.want || ok != tt.ok {
				t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}
