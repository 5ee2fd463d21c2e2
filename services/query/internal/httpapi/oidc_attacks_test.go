package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/query/internal/querytest"
	"golang.org/x/oauth2"
)

// TestProvider_refusesAttacks is issue 13's list of bad input and
// attacks, each refused with the RFC's error, with nothing issued (no
// code, no token) and nothing appended to the activity log, except where
// the refusal itself is what must be recorded (a reused code: the replay
// and the revocation of its first redemption's grant).
func TestProvider_refusesAttacks(t *testing.T) {
	t.Parallel()
	// prepare returns the attack to run once the stage is set.
	tests := []struct {
		name    string
		prepare func(t *testing.T, p *provider, web, spa *rp) func() outcome
		check   func(t *testing.T, o outcome)
	}{
		{"unregistered redirect uri", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, web, func(u string) string {
				return strings.Replace(u, url.QueryEscape(rpRedirect), url.QueryEscape("https://evil.example.test/callback"), 1)
			})
		}, errorPage},
		{"redirect uri with a path added", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, web, func(u string) string {
				return strings.Replace(u, url.QueryEscape(rpRedirect), url.QueryEscape(rpRedirect+"/../evil"), 1)
			})
		}, errorPage},
		{"redirect uri with a query added", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, web, func(u string) string {
				return strings.Replace(u, url.QueryEscape(rpRedirect), url.QueryEscape(rpRedirect+"?next=https://evil.example.test"), 1)
			})
		}, errorPage},
		{"redirect uri of another host case", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, web, func(u string) string {
				return strings.Replace(u, url.QueryEscape(rpRedirect), url.QueryEscape(strings.ToUpper(rpRedirect)), 1)
			})
		}, errorPage},
		{"missing pkce verifier", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			f := spa.mustSignIn(t, "alice", nil)
			return redeem(t, p, spa, url.Values{"code": {f.callback.Get("code")}})
		}, oauthError("invalid_grant")},
		{"wrong pkce verifier", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			f := spa.mustSignIn(t, "alice", nil)
			return redeem(t, p, spa, url.Values{"code": {f.callback.Get("code")}, "code_verifier": {oauth2.GenerateVerifier()}})
		}, oauthError("invalid_grant")},
		{"plain pkce challenge", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, spa, func(u string) string {
				return strings.Replace(u, "code_challenge_method=S256", "code_challenge_method=plain", 1)
			})
		}, redirectError("invalid_request")},
		{"public client without pkce", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, spa, func(u string) string { return dropParams(u, "code_challenge", "code_challenge_method") })
		}, redirectError("invalid_request")},
		{"reused code", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			f := web.mustSignIn(t, "alice", nil)
			web.mustTokens(t, f)
			return redeem(t, p, web, url.Values{"code": {f.callback.Get("code")}, "code_verifier": {f.verifier}})
		}, func(t *testing.T, o outcome) {
			oauthErrorAppending("invalid_grant", 2)(t, o) // authcode.replayed and session.revoked, in one batch
		}},
		{"code of another client", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			f := spa.mustSignIn(t, "alice", nil)
			return redeem(t, p, web, url.Values{"code": {f.callback.Get("code")}, "code_verifier": {f.verifier}})
		}, oauthError("invalid_grant")},
		{"expired code", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			f := web.mustSignIn(t, "alice", nil)
			p.env.Advance(61 * time.Second)
			return redeem(t, p, web, url.Values{"code": {f.callback.Get("code")}, "code_verifier": {f.verifier}})
		}, oauthError("invalid_grant")},
		{"code at another redirect uri", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			f := web.mustSignIn(t, "alice", nil)
			return redeem(t, p, web, url.Values{"code": {f.callback.Get("code")}, "code_verifier": {f.verifier},
				"redirect_uri": {rpRedirect + "/other"}})
		}, oauthError("invalid_grant")},
		{"state missing without pkce", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, web, func(u string) string { return dropParams(u, "state", "code_challenge", "code_challenge_method") })
		}, redirectError("invalid_request")},
		{"client of tenant A at tenant B", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, web, func(u string) string { return strings.Replace(u, "/t/acme/", "/t/globex/", 1) })
		}, errorPage},
		{"code of tenant A at tenant B", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			f := web.mustSignIn(t, "alice", nil)
			p.oidc.Clients.Put("globex", web.client) // the same client id at globex
			return redeemAt(t, p, "globex", web, url.Values{"code": {f.callback.Get("code")}, "code_verifier": {f.verifier}})
		}, oauthError("invalid_grant")},
		{"csrf token missing on the login form", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			f := &flow{}
			web.get(t, f, web.authURL(f, url.Values{"prompt": {"login"}}))
			f.page = strings.Replace(f.page, `name="csrf"`, `name="not-csrf"`, 1)
			return func() outcome {
				web.submit(t, f, "alice", password)
				return outcome{status: f.pageStatus, page: f.page, cb: f.callback}
			}
		}, errorPage},
		{"csrf token of another cookie", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			f := &flow{}
			web.get(t, f, web.authURL(f, url.Values{"prompt": {"login"}}))
			return func() outcome {
				web.browser.Jar = mustJar(t) // the victim's browser has no cookie of the attacker's page
				web.submit(t, f, "alice", password)
				return outcome{status: f.pageStatus, page: f.page, cb: f.callback}
			}
		}, errorPage},
		{"oversized state", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, web, func(u string) string { return u + "&state=" + strings.Repeat("s", 5000) })
		}, errorPage},
		{"oversized query", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return browse(t, web, func(u string) string { return u + "&x=" + strings.Repeat("x", 20000) })
		}, errorPage},
		{"open redirect through post_logout_redirect_uri", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return func() outcome {
				f := web.logout(t, url.Values{"client_id": {web.client.ID}, "post_logout_redirect_uri": {"https://evil.example.test/"}})
				return outcome{status: f.pageStatus, page: f.page, cb: f.callback}
			}
		}, errorPage},
		{"client secret in a query string", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return func() outcome {
				a := mustPost(t, p.issuer("acme")+"/oauth/token?client_secret="+rpSecret, form,
					url.Values{"grant_type": {"client_credentials"}, "client_id": {web.client.ID}}.Encode())
				return outcome{status: a.status, body: a.body}
			}
		}, oauthError("invalid_request")},
		{"client_credentials for a public client", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return func() outcome {
				a := mustPost(t, p.issuer("acme")+"/oauth/token", form,
					url.Values{"grant_type": {"client_credentials"}, "client_id": {spa.client.ID}}.Encode())
				return outcome{status: a.status, body: a.body}
			}
		}, func(t *testing.T, o outcome) {
			if o.body["error"] != "unauthorized_client" && o.body["error"] != "invalid_client" {
				t.Fatalf("answer %d %v", o.status, o.body)
			}
			oauthError(o.body["error"].(string))(t, o)
		}},
		{"wrong client secret", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return func() outcome {
				a := mustPost(t, p.issuer("acme")+"/oauth/token", form, url.Values{"grant_type": {"client_credentials"},
					"client_id": {web.client.ID}, "client_secret": {rpSecret + "x"}}.Encode())
				return outcome{status: a.status, body: a.body}
			}
		}, oauthError("invalid_client")},
		{"two client authentication methods", func(t *testing.T, p *provider, web, spa *rp) func() outcome {
			return func() outcome {
				req := mustRequest(t, http.MethodPost, p.issuer("acme")+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
					"client_id": {web.client.ID}, "client_secret": {rpSecret}}.Encode(), "")
				req.SetBasicAuth(web.client.ID, rpSecret)
				status, _, body := getJSON(t, req)
				return outcome{status: status, body: body}
			}
		}, oauthError("invalid_request")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustProvider(t)
			p.mustUser(t, "acme", "alice")
			web := p.mustRP(t, "acme", querytest.Confidential("web", rpSecret, rpRedirect), oauth2.AuthStyleInHeader)
			spa := p.mustRP(t, "acme", querytest.Public("spa", rpRedirect), oauth2.AuthStyleInParams)
			attack := tt.prepare(t, p, web, spa)
			before := p.streamLen(t)
			o := attack()
			o.appends = p.streamLen(t) - before
			if o.cb.Get("code") != "" || o.body["access_token"] != nil || o.body["id_token"] != nil {
				t.Fatalf("the attack got a code or a token: %v %v", o.cb, o.body)
			}
			tt.check(t, o)
		})
	}
}

// browse returns an attack loading the authorization URL of a new flow,
// changed by edit, in r's browser.
func browse(t *testing.T, r *rp, edit func(string) string) func() outcome {
	f := &flow{}
	u := edit(r.authURL(f, nil))
	return func() outcome {
		r.get(t, f, u)
		return outcome{status: f.pageStatus, page: f.page, cb: f.callback}
	}
}

type outcome = struct {
	status  int
	body    map[string]any
	cb      url.Values
	page    string
	appends uint64
}

// redeem returns an attack redeeming a code at acme's token endpoint as r.
func redeem(t *testing.T, p *provider, r *rp, params url.Values) func() outcome {
	return redeemAt(t, p, "acme", r, params)
}

func redeemAt(t *testing.T, p *provider, tenant string, r *rp, params url.Values) func() outcome {
	params.Set("grant_type", "authorization_code")
	if !params.Has("redirect_uri") {
		params.Set("redirect_uri", rpRedirect)
	}
	if !r.client.Confidential {
		params.Set("client_id", r.client.ID)
	}
	return func() outcome {
		req := mustRequest(t, http.MethodPost, p.issuer(tenant)+"/oauth/token", params.Encode(), "")
		if r.client.Confidential {
			req.SetBasicAuth(r.client.ID, rpSecret)
		}
		status, _, body := getJSON(t, req)
		return outcome{status: status, body: body}
	}
}

func dropParams(u string, names ...string) string {
	parsed, _ := url.Parse(u)
	q := parsed.Query()
	for _, n := range names {
		q.Del(n)
	}
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

// errorPage checks an HTML error page with status 400, no redirect, and
// nothing appended.
func errorPage(t *testing.T, o outcome) {
	t.Helper()
	if o.cb != nil || o.status != http.StatusBadRequest || !strings.Contains(o.page, "<html") || o.appends != 0 {
		t.Fatalf("want an error page and nothing appended: status %d, callback %v, %d appended, page %.300s", o.status, o.cb, o.appends, o.page)
	}
}

// redirectError checks an error redirect to the client with code, iss
// and nothing appended.
func redirectError(code string) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		t.Helper()
		if o.cb.Get("error") != code || o.cb.Get("iss") == "" || o.appends != 0 {
			t.Fatalf("want error %s at the client and nothing appended: callback %v, %d appended, page %d", code, o.cb, o.appends, o.status)
		}
	}
}

// oauthError checks an RFC 6749 error body with code and nothing appended.
func oauthError(code string) func(*testing.T, outcome) {
	return oauthErrorAppending(code, 0)
}

func oauthErrorAppending(code string, appends uint64) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		t.Helper()
		if o.body["error"] != code || o.status/100 != 4 || o.appends != appends {
			t.Fatalf("want %s and %d events: %d %v, %d appended", code, appends, o.status, o.body, o.appends)
		}
	}
}
