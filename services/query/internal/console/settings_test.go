package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events/mailtemplate"
)

func TestSettings_switches(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		doc       string
		want      []string
		forbidden []string
	}{
		{name: "both on", doc: `{"self_signup":true,"passwordless":true,"password_grant":false}`,
			want: []string{`id="self_signup" name="self_signup" type="checkbox" value="on" checked>`, `id="passwordless" name="passwordless" type="checkbox" value="on" checked>`,
				`id="self-signup-state">on<`, `id="passwordless-state">on<`, `<option value="off" selected>Off</option>`},
			forbidden: []string{`<option value="on" selected>`}},
		{name: "explicitly off", doc: `{"self_signup":false,"passwordless":false,"password_grant":true}`,
			want:      []string{`id="self-signup-state">off<`, `id="passwordless-state">off<`, `<option value="on" selected>On</option>`},
			forbidden: []string{" checked>", `<option value="off" selected>`}},
		{name: "absent", doc: `{}`,
			want:      []string{`id="self-signup-state">off<`, `id="passwordless-state">off<`, `<option value="" selected>Default (on)</option>`},
			forbidden: []string{" checked>", `<option value="on" selected>`, `<option value="off" selected>`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, "settings:write")
			s.command.answers["PATCH /t/acme/settings"] = stubAnswer{body: tt.doc}
			b := s.page(t, "/settings", http.StatusOK, tt.want, tt.forbidden)
			if got := s.command.sent(""); len(got) != 1 || got[0] != "PATCH /t/acme/settings {}" {
				t.Errorf("the page sent %q, want an empty patch", got)
			}
			noScript(t, b)
		})
	}

	for _, tt := range []struct {
		name string
		form url.Values
		sent string
	}{
		{name: "turned on", form: url.Values{"self_signup": {"on"}, "passwordless": {"on"}},
			sent: `PATCH /t/acme/settings {"display_name":null,"password_grant":null,"passwordless":true,"rate_limits":null,"self_signup":true}`},
		{name: "left off", form: url.Values{"display_name": {"Acme"}, "password_grant": {"off"}},
			sent: `PATCH /t/acme/settings {"display_name":"Acme","password_grant":false,"passwordless":null,"rate_limits":null,"self_signup":null}`},
		{name: "one on", form: url.Values{"passwordless": {"on"}, "self_signup": {"yes"}},
			sent: `PATCH /t/acme/settings {"display_name":null,"password_grant":null,"passwordless":true,"rate_limits":null,"self_signup":null}`},
	} {
		t.Run("save "+tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, "settings:write")
			s.command.answers["PATCH /t/acme/settings"] = stubAnswer{body: `{}`, header: map[string]string{"Consistency-Token": "ct4"}}
			res, b := s.post(t, "/settings", tt.form)
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/t/acme/settings?ct=ct4&done=saved" {
				t.Fatalf("save = %d %q:\n%s", res.StatusCode, res.Header.Get("Location"), b)
			}
			if got := s.command.sent(""); len(got) != 1 || got[0] != tt.sent {
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
		})
	}

	// A refused patch shows the document as it is: what is on stays on.
	s := mustSignedIn(t, "settings:write")
	s.command.answers["PATCH /t/acme/settings"] = stubAnswer{status: 400, body: `{"title":"Invalid settings","detail":"display_name is too long"}`}
	s.command.answers["PATCH /t/acme/settings {}"] = stubAnswer{body: `{"self_signup":true}`}
	res, b := s.post(t, "/settings", url.Values{"display_name": {strings.Repeat("x", 101)}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(b, `id="error">display_name is too long<`) || !strings.Contains(b, `id="self-signup-state">on<`) {
		t.Errorf("a refused patch = %d:\n%s", res.StatusCode, b)
	}

	// Without the session's CSRF token nothing is sent.
	s = mustSignedIn(t, "settings:write")
	r := httptest.NewRequest(http.MethodPost, "/console/t/acme/settings", strings.NewReader("csrf=forged&self_signup=on"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(s.cookie)
	if res, _ := s.serve(r); res.StatusCode != http.StatusForbidden || len(s.command.sent("")) != 0 {
		t.Errorf("a forged token = %d, sent %q", res.StatusCode, s.command.sent(""))
	}
}

// TestMailPurposes_match keeps the console's purposes those the platform
// has templates of.
func TestMailPurposes_match(t *testing.T) {
	t.Parallel()
	var ids []string
	for _, p := range mailPurposes {
		ids = append(ids, p.ID)
	}
	want := mailtemplate.Purposes()
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("the console's purposes %v, the platform's %v", ids, want)
	}
}

const (
	resetDefault = `{"purpose":"reset_password","subject":"{{.Tenant}}: reset","text":"Open {{.Link}}","html":"{{define \"body\"}}<a href=\"{{.Link}}\">reset</a>{{end}}","custom":[]}`
	resetOwn     = `{"purpose":"reset_password","subject":"Acme <new> password","text":"Open {{.Link}}","html":"{{define \"body\"}}<a href=\"{{.Link}}\">reset</a>{{end}}","custom":["subject"]}`
)

func TestMailTemplatePages(t *testing.T) {
	t.Parallel()
	allDefault := func(p string) stubAnswer {
		return stubAnswer{body: `{"purpose":"` + p + `","subject":"s","text":"t","html":"h","custom":[]}`}
	}
	for _, tt := range []struct {
		name      string
		perms     []string
		query     map[string]stubAnswer
		path      string
		status    int
		want      []string
		forbidden []string
	}{
		{name: "the list", perms: []string{"settings:read"},
			query: map[string]stubAnswer{
				"GET /t/acme/settings/mail-templates/verify_email":   allDefault("verify_email"),
				"GET /t/acme/settings/mail-templates/reset_password": {body: resetOwn},
				"GET /t/acme/settings/mail-templates/invitation":     allDefault("invitation"),
			},
			path: "/settings/mail-templates", status: 200,
			want: []string{`id="mail-verify_email-state">The platform's default<`, `id="mail-reset_password-state">The tenant's own: subject<`,
				`href="/console/t/acme/settings/mail-templates/invitation"`, `href="/console/t/acme/settings/mail-templates" aria-current="page"`}},
		{name: "the list without settings:read", perms: []string{"users:read"},
			query: map[string]stubAnswer{"GET /t/acme/settings/mail-templates/verify_email": {status: 403, body: `{"title":"Forbidden"}`}},
			path:  "/settings/mail-templates", status: 403, want: []string{"Your roles do not allow this."},
			forbidden: []string{`href="/console/t/acme/settings/mail-templates"`, "<table"}},
		{name: "the platform's templates", perms: []string{"settings:read", "settings:write"},
			query: map[string]stubAnswer{"GET /t/acme/settings/mail-templates/reset_password": {body: resetDefault}},
			path:  "/settings/mail-templates/reset_password", status: 200,
			want: []string{"use the platform's default templates", `id="mail-subject" name="subject" maxlength="1024" autocomplete="off" spellcheck="false" value="">`,
				`id="default-subject">{{.Tenant}}: reset<`, `id="default-html">{{define &#34;body&#34;}}&lt;a href=&#34;{{.Link}}&#34;&gt;reset&lt;/a&gt;{{end}}<`},
			forbidden: []string{`id="reset-mail-template"`}},
		{name: "the tenant's subject", perms: []string{"settings:read", "settings:write"},
			query: map[string]stubAnswer{"GET /t/acme/settings/mail-templates/reset_password": {body: resetOwn}},
			path:  "/settings/mail-templates/reset_password", status: 200,
			want: []string{"own parts: subject", `value="Acme &lt;new&gt; password"`, `id="default-text">Open {{.Link}}<`, `id="reset-mail-template"`,
				`action="/console/t/acme/settings/mail-templates/reset_password/reset"`},
			forbidden: []string{`id="default-subject"`, "<new>"}},
		{name: "an unknown purpose", perms: []string{"settings:read"}, path: "/settings/mail-templates/welcome", status: 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, tt.perms...)
			for k, v := range tt.query {
				s.query.answers[k] = v
			}
			b := s.page(t, tt.path, tt.status, tt.want, tt.forbidden)
			noScript(t, b)
			if tt.status == 404 && len(s.query.sent("GET /t/acme/settings")) != 0 {
				t.Errorf("an unknown purpose was asked of the API: %q", s.query.sent(""))
			}
		})
	}
}

func TestMailTemplateForms(t *testing.T) {
	t.Parallel()
	const path = "/t/acme/settings/mail-templates/reset_password"
	for _, tt := range []struct {
		name     string
		path     string
		answer   stubAnswer
		form     url.Values
		status   int
		location string
		want     []string
		sent     string
	}{
		{name: "save", path: "/settings/mail-templates/reset_password",
			answer: stubAnswer{body: `{}`, header: map[string]string{"Consistency-Token": "ct6"}},
			form:   url.Values{"subject": {"Acme: new password"}, "text": {"Hello,\r\nopen {{.Link}}\r\n"}, "html": {""}},
			status: 303, location: "/console/t/acme/settings/mail-templates/reset_password?ct=ct6&done=saved",
			sent: "PUT " + path + ` {"subject":"Acme: new password","text":"Hello,\nopen {{.Link}}\n"}`},
		{name: "a refused template keeps what was typed", path: "/settings/mail-templates/reset_password",
			answer: stubAnswer{status: 400, body: `{"title":"Invalid mail template","detail":"text: the body must carry {{.Link}}"}`,
				header: map[string]string{"Content-Type": "application/problem+json"}},
			form:   url.Values{"subject": {"Acme <b>"}, "text": {"no link here"}, "html": {"{{define \"body\"}}x{{end}}"}},
			status: 400, want: []string{`id="error">text: the body must carry {{.Link}}<`, `id="mail-template-form"`, `value="Acme &lt;b&gt;"`,
				">\nno link here</textarea>", ">\n{{define &#34;body&#34;}}x{{end}}</textarea>", `id="default-text">Open {{.Link}}<`},
			sent: "PUT " + path + ` {"html":"{{define \"body\"}}x{{end}}","subject":"Acme \u003cb\u003e","text":"no link here"}`},
		{name: "back to the default", path: "/settings/mail-templates/reset_password/reset",
			answer: stubAnswer{status: 204, header: map[string]string{"Consistency-Token": "ct7"}}, form: url.Values{},
			status: 303, location: "/console/t/acme/settings/mail-templates/reset_password?ct=ct7&done=default", sent: "DELETE " + path},
		{name: "a refused command", path: "/settings/mail-templates/reset_password",
			answer: stubAnswer{status: 403, body: `{"title":"Forbidden"}`}, form: url.Values{"subject": {"x"}},
			status: 403, want: []string{"Your roles do not allow this."}, sent: "PUT " + path + ` {"subject":"x"}`},
		{name: "an unknown purpose", path: "/settings/mail-templates/welcome", form: url.Values{"subject": {"x"}}, status: 404},
		{name: "reset of an unknown purpose", path: "/settings/mail-templates/welcome/reset", form: url.Values{}, status: 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, "settings:read", "settings:write")
			s.query.answers["GET "+path] = stubAnswer{body: resetDefault}
			s.command.answers["PUT "+path] = tt.answer
			s.command.answers["DELETE "+path] = tt.answer
			res, b := s.post(t, tt.path, tt.form)
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location {
				t.Fatalf("POST %s = %d %q:\n%s", tt.path, res.StatusCode, res.Header.Get("Location"), b)
			}
			for _, w := range tt.want {
				if !strings.Contains(b, w) {
					t.Errorf("the page lacks %q:\n%s", w, b)
				}
			}
			got := s.command.sent("")
			switch {
			case tt.sent == "" && len(got) > 0:
				t.Errorf("sent %q, want nothing", got)
			case tt.sent != "" && (len(got) != 1 || got[0] != tt.sent):
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
			noScript(t, b)
		})
	}

	// Without the session's CSRF token nothing is sent.
	for _, p := range []string{"/settings/mail-templates/reset_password", "/settings/mail-templates/reset_password/reset"} {
		s := mustSignedIn(t, "settings:write")
		r := httptest.NewRequest(http.MethodPost, "/console/t/acme"+p, strings.NewReader("csrf=forged&subject=x"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(s.cookie)
		if res, _ := s.serve(r); res.StatusCode != http.StatusForbidden || len(s.command.sent("")) != 0 {
			t.Errorf("%s with a forged token = %d, sent %q", p, res.StatusCode, s.command.sent(""))
		}
	}
}
