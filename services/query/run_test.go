package query_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/query"
)

// TestConfigFromEnv covers the settings of the login rate limits and of the
// proxies trusted to name a request's client: their defaults, valid values
// and the message each malformed value gets.
func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c query.Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c query.Config) {
				if c.TrustedProxies != nil || c.LoginPerAccount != 20 || c.LoginPerAddress != 300 || c.LoginWindow != time.Minute {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "all set",
			env: map[string]string{
				"AUTH_TRUSTED_PROXIES":         " 10.0.0.0/8, 2001:db8::/32,192.0.2.7 ,2001:db8:ffff::1,",
				"AUTH_LOGIN_LIMIT_PER_ACCOUNT": "50",
				"AUTH_LOGIN_LIMIT_PER_ADDRESS": "5000",
				"AUTH_LOGIN_LIMIT_WINDOW":      "5m",
			},
			check: func(t *testing.T, c query.Config) {
				want := []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"),
					netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8:ffff::1/128"),
				}
				if !slices.Equal(c.TrustedProxies, want) {
					t.Errorf("trusted proxies = %v, want %v", c.TrustedProxies, want)
				}
				if c.LoginPerAccount != 50 || c.LoginPerAddress != 5000 || c.LoginWindow != 5*time.Minute {
					t.Errorf("limits = %d %d %s", c.LoginPerAccount, c.LoginPerAddress, c.LoginWindow)
				}
			},
		},
		{
			name:    "proxy not a prefix",
			env:     map[string]string{"AUTH_TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"},
			wantErr: `AUTH_TRUSTED_PROXIES: "proxy.internal" is not an address or CIDR prefix`,
		},
		{
			name:    "proxy prefix too long",
			env:     map[string]string{"AUTH_TRUSTED_PROXIES": "10.0.0.0/33"},
			wantErr: `AUTH_TRUSTED_PROXIES: "10.0.0.0/33" is not a CIDR prefix`,
		},
		{
			name:    "proxy prefix with host bits",
			env:     map[string]string{"AUTH_TRUSTED_PROXIES": "10.1.2.3/8"},
			wantErr: `AUTH_TRUSTED_PROXIES: "10.1.2.3/8" has bits set past its /8 (did you mean 10.0.0.0/8?)`,
		},
		{
			name:    "limit zero",
			env:     map[string]string{"AUTH_LOGIN_LIMIT_PER_ACCOUNT": "0"},
			wantErr: `AUTH_LOGIN_LIMIT_PER_ACCOUNT: must be an integer between 1 and 1000000, got "0"`,
		},
		{
			name:    "limit not a number",
			env:     map[string]string{"AUTH_LOGIN_LIMIT_PER_ADDRESS": "lots"},
			wantErr: `AUTH_LOGIN_LIMIT_PER_ADDRESS: must be an integer between 1 and 1000000, got "lots"`,
		},
		{
			name:    "window too short",
			env:     map[string]string{"AUTH_LOGIN_LIMIT_WINDOW": "500ms"},
			wantErr: `AUTH_LOGIN_LIMIT_WINDOW: must be a duration between 1s and 24h0m0s`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := query.ConfigFromEnv(config.Map(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
