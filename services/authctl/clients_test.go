package authctl_test

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// TestRun_Clients registers, updates, rotates, gives roles to and deletes
// OpenID Connect clients through authctl as a tenant's admin, and sees the
// service and the command line refuse what they must. It does not run in
// parallel with the other end-to-end tests, so that one all-in-one process
// fewer holds PostgreSQL connections at a time.
func TestRun_Clients(t *testing.T) {
	c := &cli{ends: mustAllInOne(t), creds: filepath.Join(t.TempDir(), "credentials.json")}
	mustLoginEventually(t, c, "platform", "root", rootPassword)
	c.must(t, adminPassword+"\n", "tenants", "create", "acme", "--name", "Acme", "--admin-username", "ada", "--admin-password-stdin")
	c.must(t, adminPassword+"\n", "login", "--tenant", "acme", "--username", "ada", "--password-stdin")
	c.must(t, "", "roles", "define", "invoices-bot", "--permission", "invoices:read")

	type client struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret,omitempty"`
		events.ClientConfig
	}
	var web client
	c.mustJSON(t, &web, "", "clients", "create", "Acme Web", "--type", "confidential",
		"--redirect-uri", "https://app.acme.example/callback", "--redirect-uri", "http://127.0.0.1:8400/callback",
		"--post-logout-redirect-uri", "https://app.acme.example/")
	if raw, err := base64.RawURLEncoding.DecodeString(web.ClientSecret); err != nil || len(raw) != 32 {
		t.Fatalf("client secret %q: %v", web.ClientSecret, err)
	}
	if web.ClientID == "" || web.Type != "confidential" || !slices.Equal(web.GrantTypes, []string{"authorization_code", "refresh_token"}) ||
		len(web.RedirectURIs) != 2 || web.IDTokenSignedResponseAlg != "RS256" {
		t.Fatalf("clients create: %+v", web)
	}

	// The table form of a public client: no secret, and no warning.
	r := c.run(t, "", "clients", "create", "Acme iOS", "--type", "public", "--redirect-uri", "com.acme.ios:/cb",
		"--scope", "openid", "--id-token-alg", "EdDSA")
	if r.code != 0 || !strings.Contains(r.out, "client Acme iOS registered in tenant acme") ||
		strings.Contains(r.out, "client_secret") || r.err != "" || !strings.Contains(r.out, "grant_types:                   authorization_code\n") {
		t.Fatalf("clients create (public): %d\n%s\n%s", r.code, r.out, r.err)
	}
	// A confidential client's secret comes with a warning on standard
	// error: it is shown this once.
	r = c.run(t, "", "clients", "create", "--config", `{"name":"Billing bot","type":"confidential","grant_types":["client_credentials"],"scopes":[]}`)
	if r.code != 0 || !strings.Contains(r.out, "client_secret:") || !strings.Contains(r.err, "shown this once") {
		t.Fatalf("clients create --config: %d\n%s\n%s", r.code, r.out, r.err)
	}
	bot := strings.Fields(strings.Split(strings.Split(r.out, "client_id:")[1], "\n")[0])[0]

	var updated client
	c.mustJSON(t, &updated, "", "clients", "update", web.ClientID, "Acme Web 2", "--redirect-uri", "https://app.acme.example/cb2", "--scope", "openid")
	if updated.ClientID != web.ClientID || updated.Name != "Acme Web 2" || updated.ClientSecret != "" ||
		!slices.Equal(updated.GrantTypes, []string{"authorization_code"}) || len(updated.PostLogoutRedirectURIs) != 0 {
		t.Fatalf("clients update: %+v", updated)
	}

	var rot struct {
		ClientID                string    `json:"client_id"`
		ClientSecret            string    `json:"client_secret"`
		PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
	}
	c.mustJSON(t, &rot, "", "clients", "rotate-secret", web.ClientID, "--grace", "1h")
	if rot.ClientSecret == "" || rot.ClientSecret == web.ClientSecret || time.Until(rot.PreviousSecretExpiresAt) > time.Hour ||
		time.Until(rot.PreviousSecretExpiresAt) < 59*time.Minute {
		t.Fatalf("clients rotate-secret: %+v", rot)
	}
	// The query service shows the client: no secret, until when the
	// previous one works.
	var shown map[string]any
	c.mustJSON(t, &shown, "", "clients", "show", web.ClientID)
	until, err := time.Parse(time.RFC3339Nano, fmt.Sprint(shown["previous_secret_expires_at"]))
	if err != nil || until.Sub(rot.PreviousSecretExpiresAt).Abs() >= time.Microsecond {
		t.Fatalf("clients show: previous_secret_expires_at %v, want %v", shown["previous_secret_expires_at"], rot.PreviousSecretExpiresAt)
	}
	if shown["client_id"] != web.ClientID || shown["name"] != "Acme Web 2" || shown["has_secret"] != true || shown["client_secret"] != nil ||
		shown["status"] != "active" || shown["version"] != 3.0 || fmt.Sprint(shown["roles"]) != "[]" || shown["created_at"] == shown["updated_at"] {
		t.Fatalf("clients show: %v", shown)
	}
	out := c.must(t, "", "clients", "show", web.ClientID)
	if !strings.Contains(out, "previous_secret:               works until ") || !strings.Contains(out, "secret:                        yes") ||
		strings.Contains(out, rot.ClientSecret) || strings.Contains(out, web.ClientSecret) {
		t.Errorf("clients show output:\n%s", out)
	}
	out = c.must(t, "", "clients", "rotate-secret", web.ClientID, "--grace", "0s")
	if !strings.Contains(out, "has a new secret; the previous one works until") || !strings.Contains(out, "client_secret:") {
		t.Errorf("clients rotate-secret output:\n%s", out)
	}

	if out := c.must(t, "", "clients", "assign-role", bot, "invoices-bot"); !strings.Contains(out, "role invoices-bot assigned to client "+bot) {
		t.Errorf("clients assign-role output: %s", out)
	}
	if out := c.must(t, "", "clients", "list"); !strings.Contains(out, "CLIENT_ID") ||
		!regexp.MustCompile(bot+` +Billing bot +confidential +client_credentials +invoices-bot\n`).MatchString(out) {
		t.Errorf("clients list output:\n%s", out)
	}
	c.must(t, "", "clients", "unassign-role", bot, "invoices-bot")
	if out := c.must(t, "", "clients", "delete", web.ClientID); !strings.Contains(out, "client "+web.ClientID+" of tenant acme deleted") {
		t.Errorf("clients delete output: %s", out)
	}
	var listed []map[string]any
	c.mustJSON(t, &listed, "", "clients", "list")
	// The two left, and the console's client, which every tenant has.
	if len(listed) != 3 || slices.ContainsFunc(listed, func(l map[string]any) bool { return l["client_id"] == web.ClientID }) ||
		!slices.ContainsFunc(listed, func(l map[string]any) bool { return l["client_id"] == "console" }) {
		t.Fatalf("clients list after the delete: %+v", listed)
	}
	c.mustFail(t, 1, "authctl: 404 no such client", "", "clients", "show", web.ClientID)
	c.mustFail(t, 1, "authctl: 400 client id is invalid", "", "clients", "show", "a.b")

	c.mustFail(t, 1, "authctl: 404 client "+`"`+web.ClientID+`" is deleted`, "", "clients", "rotate-secret", web.ClientID)
	c.mustFail(t, 1, "authctl: 400 redirect_uris[0] \"http://app.example/cb\" uses http", "", "clients", "create", "Bad", "--type", "confidential", "--redirect-uri", "http://app.example/cb")
	c.mustFail(t, 1, `authctl: 404 role "admin-of-nothing" not found`, "", "clients", "assign-role", bot, "admin-of-nothing")
	c.mustFail(t, 2, "authctl: usage: missing NAME", "", "clients", "create", "--type", "public")
	c.mustFail(t, 2, "authctl: usage: --config goes alone", "", "clients", "create", "--config", "{}", "--type", "public")
	c.mustFail(t, 2, "authctl: usage: --config is not valid JSON", "", "clients", "create", "--config", "{")
	c.mustFail(t, 2, "authctl: usage: --grace must be", "", "clients", "rotate-secret", bot, "--grace", "1500ms")
	c.mustFail(t, 2, "authctl: usage: missing CLIENT_ID and ROLE", "", "clients", "assign-role")
}
