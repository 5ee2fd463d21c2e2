package authctl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun_MailTemplates sets, shows and resets a tenant's own
// reset-password templates through authctl as the tenant's admin, and is
// refused when the service or the command line says no.
func TestRun_MailTemplates(t *testing.T) {
	c := &cli{ends: mustAllInOne(t), creds: filepath.Join(t.TempDir(), "credentials.json")}
	mustLoginEventually(t, c, "platform", "root", rootPassword)
	c.must(t, adminPassword+"\n", "tenants", "create", "acme", "--name", "Acme", "--admin-username", "ada", "--admin-password-stdin")
	c.must(t, adminPassword+"\n", "login", "--tenant", "acme", "--username", "ada", "--password-stdin")

	text := filepath.Join(t.TempDir(), "reset.txt")
	if err := os.WriteFile(text, []byte("Acme here: {{.Link}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.must(t, "", "tenants", "settings", "mail-template", "set", "acme", "reset_password", "--subject", "Acme: new password", "--text-file", text)
	if !strings.Contains(out, "subject, text the tenant's") {
		t.Fatalf("set said %q", out)
	}
	out = c.must(t, "", "tenants", "settings", "mail-template", "show", "acme", "reset_password")
	for _, want := range []string{"--- subject (the tenant's)\nAcme: new password\n", "--- text (the tenant's)\nAcme here: {{.Link}}\n", "--- html (the platform's)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	c.must(t, "", "tenants", "settings", "mail-template", "reset", "acme", "reset_password")
	if out := c.must(t, "", "tenants", "settings", "mail-template", "show", "acme", "reset_password"); !strings.Contains(out, "--- subject (the platform's)\nReset your password for {{.Tenant}}\n") {
		t.Fatalf("after reset:\n%s", out)
	}

	c.mustFail(t, 1, "authctl: 400 text template: the mail does not carry the link", "", "tenants", "settings", "mail-template", "set", "acme", "reset_password", "--text-file", writeTemp(t, "no link"))
	c.mustFail(t, 1, `authctl: 404 no mail has purpose "welcome"`, "", "tenants", "settings", "mail-template", "set", "acme", "welcome", "--subject", "Hi")
	c.mustFail(t, 2, "authctl: usage: nothing to set", "", "tenants", "settings", "mail-template", "set", "acme", "reset_password")
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "template")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
