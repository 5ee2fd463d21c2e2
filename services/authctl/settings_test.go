package authctl_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRun_TenantSettings changes a tenant's settings through authctl as the
// tenant's admin: with flags, with --unset and with a merge patch, and
// refused when the service or the command line says no. It does not run in
// parallel with the other end-to-end tests, so that one all-in-one process
// fewer holds PostgreSQL connections at a time.
func TestRun_TenantSettings(t *testing.T) {
	c := &cli{ends: mustAllInOne(t), creds: filepath.Join(t.TempDir(), "credentials.json")}
	mustLoginEventually(t, c, "platform", "root", rootPassword)
	c.must(t, adminPassword+"\n", "tenants", "create", "acme", "--name", "Acme", "--admin-username", "ada", "--admin-password-stdin")
	// The settings are changed with a login of the tenant itself.
	c.mustFail(t, 1, "authctl: not logged in to tenant acme", "", "tenants", "settings", "set", "acme", "--password-grant", "false")
	c.must(t, adminPassword+"\n", "login", "--tenant", "acme", "--username", "ada", "--password-stdin")

	type settings struct {
		DisplayName   string `json:"display_name,omitempty"`
		PasswordGrant *bool  `json:"password_grant,omitempty"`
		SelfSignup    *bool  `json:"self_signup,omitempty"`
		RateLimits    *struct {
			Account int `json:"account_attempts_per_minute,omitempty"`
			Address int `json:"address_attempts_per_minute,omitempty"`
		} `json:"rate_limits,omitempty"`
	}
	var s settings
	c.mustJSON(t, &s, "", "tenants", "settings", "set", "acme", "--display-name", "Acme Corp", "--password-grant", "false", "--account-attempts", "10", "--self-signup", "true")
	if s.DisplayName != "Acme Corp" || s.PasswordGrant == nil || *s.PasswordGrant || s.RateLimits == nil || s.RateLimits.Account != 10 || s.RateLimits.Address != 0 ||
		s.SelfSignup == nil || !*s.SelfSignup {
		t.Fatalf("first change answered %+v", s)
	}

	out := c.must(t, "", "tenants", "settings", "set", "acme", "--unset", "display_name", "--address-attempts", "600")
	for _, want := range []string{
		"settings of tenant acme:",
		"display_name:                             (the tenant's name)",
		"password_grant:                           false",
		"self_signup:                              true",
		"rate_limits.account_attempts_per_minute:  10",
		"rate_limits.address_attempts_per_minute:  600",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	s = settings{}
	c.mustJSON(t, &s, "", "tenants", "settings", "set", "acme", "--patch", `{"rate_limits":null,"password_grant":null,"self_signup":null}`)
	if s != (settings{}) {
		t.Fatalf("patch answered %+v, want the empty document", s)
	}

	c.mustFail(t, 1, "authctl: 400 rate_limits.account_attempts_per_minute must be an integer", "", "tenants", "settings", "set", "acme", "--account-attempts", "0")
	c.mustFail(t, 1, `authctl: 400 unknown settings member "theme"`, "", "tenants", "settings", "set", "acme", "--patch", `{"theme":"dark"}`)
	c.mustFail(t, 2, "authctl: usage: nothing to change", "", "tenants", "settings", "set", "acme")
	c.mustFail(t, 2, "authctl: usage: --password-grant takes true or false", "", "tenants", "settings", "set", "acme", "--password-grant", "maybe")
	c.mustFail(t, 2, "authctl: usage: --self-signup takes true or false", "", "tenants", "settings", "set", "acme", "--self-signup", "maybe")
	c.mustFail(t, 2, "authctl: usage: --patch goes alone", "", "tenants", "settings", "set", "acme", "--patch", "{}", "--display-name", "X")
	c.mustFail(t, 2, "authctl: usage: --patch is not valid JSON", "", "tenants", "settings", "set", "acme", "--patch", "{")
	c.mustFail(t, 2, "authctl: usage: rate_limits is given twice", "", "tenants", "settings", "set", "acme", "--unset", "rate_limits", "--account-attempts", "5")
}
