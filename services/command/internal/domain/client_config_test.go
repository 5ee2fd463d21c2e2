package domain_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// webApp is a confidential web client's configuration as a caller might
// send it: lists given, no algorithm.
func webApp() events.ClientConfig {
	return events.ClientConfig{
		Name: "Acme Web", Type: events.ClientConfidential,
		RedirectURIs: []string{"https://app.acme.example/callback"},
	}
}

func TestNormalizeClientConfig_defaults(t *testing.T) {
	t.Parallel()
	all := []string{"openid", "profile", "email", "offline_access"}
	tests := []struct {
		name string
		in   events.ClientConfig
		want events.ClientConfig
	}{
		{"lists omitted", webApp(), events.ClientConfig{
			Name: "Acme Web", Type: "confidential", RedirectURIs: []string{"https://app.acme.example/callback"},
			PostLogoutRedirectURIs: []string{}, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes: all, IDTokenSignedResponseAlg: "RS256",
		}},
		{"no offline_access, no refresh_token", func() events.ClientConfig {
			c := webApp()
			c.Scopes = []string{"openid"}
			return c
		}(), events.ClientConfig{
			Name: "Acme Web", Type: "confidential", RedirectURIs: []string{"https://app.acme.example/callback"},
			PostLogoutRedirectURIs: []string{}, GrantTypes: []string{"authorization_code"},
			Scopes: []string{"openid"}, IDTokenSignedResponseAlg: "RS256",
		}},
		{"canonical order, no duplicates", events.ClientConfig{
			Name: "Svc", Type: "confidential",
			RedirectURIs:             []string{"https://b.example/cb", "https://a.example/cb", "https://b.example/cb"},
			PostLogoutRedirectURIs:   []string{"https://a.example/"},
			GrantTypes:               []string{"password", "client_credentials", "refresh_token", "authorization_code", "password"},
			Scopes:                   []string{"offline_access", "email", "openid", "email"},
			IDTokenSignedResponseAlg: "ES256",
		}, events.ClientConfig{
			Name: "Svc", Type: "confidential",
			RedirectURIs:             []string{"https://b.example/cb", "https://a.example/cb"},
			PostLogoutRedirectURIs:   []string{"https://a.example/"},
			GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials", "password"},
			Scopes:                   []string{"openid", "email", "offline_access"},
			IDTokenSignedResponseAlg: "ES256",
		}},
		{"service account: no scopes, no redirect", events.ClientConfig{
			Name: "Billing bot", Type: "confidential", GrantTypes: []string{"client_credentials"}, Scopes: []string{},
		}, events.ClientConfig{
			Name: "Billing bot", Type: "confidential", RedirectURIs: []string{}, PostLogoutRedirectURIs: []string{},
			GrantTypes: []string{"client_credentials"}, Scopes: []string{}, IDTokenSignedResponseAlg: "RS256",
		}},
		{"native app: private-use scheme and loopback", events.ClientConfig{
			Name: "Acme iOS", Type: "public",
			RedirectURIs:             []string{"com.acme.app:/oauth2redirect", "http://127.0.0.1:53211/cb", "http://[::1]/cb", "http://localhost:8080/cb"},
			IDTokenSignedResponseAlg: "EdDSA",
		}, events.ClientConfig{
			Name: "Acme iOS", Type: "public",
			RedirectURIs:           []string{"com.acme.app:/oauth2redirect", "http://127.0.0.1:53211/cb", "http://[::1]/cb", "http://localhost:8080/cb"},
			PostLogoutRedirectURIs: []string{}, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes: all, IDTokenSignedResponseAlg: "EdDSA",
		}},
		{"refresh_token with password", events.ClientConfig{
			Name: "Legacy", Type: "public", GrantTypes: []string{"refresh_token", "password"},
		}, events.ClientConfig{
			Name: "Legacy", Type: "public", RedirectURIs: []string{}, PostLogoutRedirectURIs: []string{},
			GrantTypes: []string{"refresh_token", "password"}, Scopes: all, IDTokenSignedResponseAlg: "RS256",
		}},
		{"query strings and ports are kept as they are", events.ClientConfig{
			Name: "Q", Type: "confidential", RedirectURIs: []string{"https://app.example:8443/cb?tenant=acme&x=%41"},
		}, events.ClientConfig{
			Name: "Q", Type: "confidential", RedirectURIs: []string{"https://app.example:8443/cb?tenant=acme&x=%41"},
			PostLogoutRedirectURIs: []string{}, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes: all, IDTokenSignedResponseAlg: "RS256",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.NormalizeClientConfig(tt.in)
			if err != nil {
				t.Fatalf("NormalizeClientConfig: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			again, err := domain.NormalizeClientConfig(got)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("normalising again: %+v, %v", again, err)
			}
		})
	}
}

// TestNormalizeClientConfig_refused covers every rule: each refusal is
// ErrInvalidClientConfig with a message naming the member.
func TestNormalizeClientConfig_refused(t *testing.T) {
	t.Parallel()
	with := func(change func(*events.ClientConfig)) events.ClientConfig {
		c := webApp()
		change(&c)
		return c
	}
	redirect := func(uri string) events.ClientConfig {
		return with(func(c *events.ClientConfig) { c.RedirectURIs = []string{uri} })
	}
	public := func(uri string) events.ClientConfig {
		return with(func(c *events.ClientConfig) { c.Type = "public"; c.RedirectURIs = []string{uri} })
	}
	many := make([]string, domain.MaxClientURIs+1)
	for i := range many {
		many[i] = fmt.Sprintf("https://app.example/cb%d", i)
	}
	tests := []struct {
		name   string
		in     events.ClientConfig
		detail string // a part of the message
	}{
		{"no name", with(func(c *events.ClientConfig) { c.Name = "" }), "name is required"},
		{"name too long", with(func(c *events.ClientConfig) { c.Name = strings.Repeat("n", 101) }), "name is longer than 100 characters"},
		{"name with control", with(func(c *events.ClientConfig) { c.Name = "a\x00b" }), "name holds control characters"},
		{"name with surrounding space", with(func(c *events.ClientConfig) { c.Name = " Acme" }), "name has leading or trailing white space"},
		{"no type", with(func(c *events.ClientConfig) { c.Type = "" }), `type must be "public" or "confidential"`},
		{"unknown type", with(func(c *events.ClientConfig) { c.Type = "native" }), `got "native"`},

		{"empty URI", redirect(""), "redirect_uris[0] \"\" is empty"},
		{"relative URI", redirect("/callback"), "is not an absolute URI"},
		{"no scheme", redirect("app.example/cb"), "is not an absolute URI"},
		{"fragment", redirect("https://app.example/cb#frag"), "holds a fragment"},
		{"empty fragment", redirect("https://app.example/cb#"), "holds a fragment"},
		{"wildcard host", redirect("https://*.acme.example/cb"), "holds a wildcard"},
		{"wildcard path", redirect("https://app.example/*"), "holds a wildcard"},
		{"http on a public host", redirect("http://app.example/cb"), "uses http, which is allowed only on a loopback host"},
		{"http on another loopback address", redirect("http://127.0.0.2/cb"), "uses http"},
		{"http on a host named like localhost", redirect("http://localhost.evil.example/cb"), "uses http"},
		{"https without host", redirect("https:///cb"), "has no host"},
		{"user information", redirect("https://user:pass@app.example/cb"), "holds user information"},
		{"white space", redirect("https://app.example/c b"), "holds white space"},
		{"control character", redirect("https://app.example/cb\x7f"), "holds white space or control characters"},
		{"bad port", redirect("https://app.example:port/cb"), "is not a URI"},
		{"javascript", redirect("javascript:alert(1)"), `uses scheme "javascript"`},
		{"data", redirect("data:text/html,hi"), `uses scheme "data"`},
		{"custom scheme without a dot", public("myapp:/cb"), `uses scheme "myapp"`},
		{"private-use scheme for a confidential client", redirect("com.acme.app:/cb"), "only public (native) clients may"},
		{"URI too long", redirect("https://app.example/" + strings.Repeat("a", domain.MaxClientURILen)), "is longer than 2048 bytes"},
		{"too many redirect URIs", with(func(c *events.ClientConfig) { c.RedirectURIs = many }), "redirect_uris holds 21 URIs; at most 20"},
		{"bad post-logout URI", with(func(c *events.ClientConfig) {
			c.PostLogoutRedirectURIs = []string{"https://ok.example/", "http://evil.example/"}
		}), "post_logout_redirect_uris[1]"},
		{"too many post-logout URIs", with(func(c *events.ClientConfig) { c.PostLogoutRedirectURIs = many }), "post_logout_redirect_uris holds 21 URIs"},

		{"unknown grant", with(func(c *events.ClientConfig) { c.GrantTypes = []string{"implicit"} }), `grant_types holds "implicit"`},
		{"device grant", with(func(c *events.ClientConfig) { c.GrantTypes = []string{"urn:ietf:params:oauth:grant-type:device_code"} }), "grant_types holds"},
		{"no grant", with(func(c *events.ClientConfig) { c.GrantTypes = []string{} }), "grant_types must hold at least one grant type"},
		{"client_credentials for a public client", with(func(c *events.ClientConfig) {
			c.Type, c.GrantTypes = "public", []string{"client_credentials"}
		}), "client_credentials is only for confidential clients"},
		{"authorization_code without redirect URI", with(func(c *events.ClientConfig) { c.RedirectURIs = nil }), "authorization_code needs at least one redirect URI"},
		{"default grant without redirect URI", with(func(c *events.ClientConfig) { c.RedirectURIs = []string{} }), "authorization_code needs at least one redirect URI"},
		{"refresh_token alone", with(func(c *events.ClientConfig) { c.GrantTypes = []string{"refresh_token"} }), "refresh_token needs authorization_code or password"},
		{"refresh_token with client_credentials", with(func(c *events.ClientConfig) { c.GrantTypes = []string{"client_credentials", "refresh_token"} }), "refresh_token needs"},

		{"unknown scope", with(func(c *events.ClientConfig) { c.Scopes = []string{"openid", "admin"} }), `scopes holds "admin"`},
		{"scope in upper case", with(func(c *events.ClientConfig) { c.Scopes = []string{"OpenID"} }), `scopes holds "OpenID"`},

		{"HMAC ID tokens", with(func(c *events.ClientConfig) { c.IDTokenSignedResponseAlg = "HS256" }), "id_token_signed_response_alg must be RS256, EdDSA or ES256"},
		{"unsigned ID tokens", with(func(c *events.ClientConfig) { c.IDTokenSignedResponseAlg = "none" }), "id_token_signed_response_alg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := domain.NormalizeClientConfig(tt.in)
			checkErr(t, err, domain.ErrInvalidClientConfig)
			if msg := fault.MessageOf(err); !strings.Contains(msg, tt.detail) {
				t.Fatalf("message %q lacks %q", msg, tt.detail)
			}
		})
	}
}

// FuzzNormalizeClientConfig feeds request-shaped configurations: each is
// refused as invalid, or normalised into a configuration that is its own
// normal form, whose URIs each pass the rules on their own.
func FuzzNormalizeClientConfig(f *testing.F) {
	f.Add("Acme", "confidential", "https://app.example/cb", "", "", "")
	f.Add("Acme", "public", "com.acme.app:/cb http://127.0.0.1:1/cb", "https://a.example/", "authorization_code refresh_token", "openid email")
	f.Add("x", "public", "http://[::1", "", "client_credentials", "")
	f.Add("x", "confidential", "https://a.example/#", "", "password refresh_token", "offline_access")
	f.Fuzz(func(t *testing.T, name, typ, redirects, logouts, grants, scopes string) {
		list := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, " ")
		}
		in := events.ClientConfig{Name: name, Type: typ, RedirectURIs: list(redirects), PostLogoutRedirectURIs: list(logouts),
			GrantTypes: list(grants), Scopes: list(scopes)}
		out, err := domain.NormalizeClientConfig(in)
		if err != nil {
			if fault.CodeOf(err) != fault.Invalid {
				t.Fatalf("NormalizeClientConfig(%+v) = %v", in, err)
			}
			return
		}
		again, err := domain.NormalizeClientConfig(out)
		if err != nil || !reflect.DeepEqual(again, out) {
			t.Fatalf("normal form %+v normalises to %+v, %v", out, again, err)
		}
		for _, uri := range append(append([]string{}, out.RedirectURIs...), out.PostLogoutRedirectURIs...) {
			if strings.ContainsAny(uri, "#* \t\n") {
				t.Fatalf("accepted %q", uri)
			}
		}
	})
}
