package mailtemplate_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/events/mailtemplate"
)

const body = `{{define "body"}}<p><a href="{{.Link}}">Reset</a></p>{{end}}`

func TestCompile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		purpose string
		tmpl    events.MailTemplate
		part    string // "" when accepted
		problem string // in the refusal
	}{
		{name: "nothing overridden", purpose: events.LinkResetPassword},
		{name: "every part", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{
			Subject: "{{.Tenant}}: new password", Text: "Open {{.Link}} within {{.ValidFor}}.",
			HTML: `{{define "title"}}Reset{{end}}` + body}},
		{name: "subject alone", purpose: events.LinkInvitation, tmpl: events.MailTemplate{Subject: "Join {{.Tenant}}"}},
		{name: "time methods", purpose: events.LinkVerifyEmail, tmpl: events.MailTemplate{Text: `{{.Link}} until {{.ExpiresAt.Format "2006-01-02"}}`}},
		{name: "link in a branch that runs", purpose: events.LinkVerifyEmail, tmpl: events.MailTemplate{Text: `{{if .Email}}{{.Link}}{{end}}`}},
		{name: "a definition called twice", purpose: events.LinkVerifyEmail, tmpl: events.MailTemplate{Text: `{{define "l"}}{{.Link}}{{end}}{{template "l" .}} {{template "l" .}}`}},

		{name: "unknown field", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: "{{.Link}} {{.Password}}"},
			part: mailtemplate.PartText, problem: "Password"},
		{name: "unknown field in the subject", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Subject: "{{.Name}}"},
			part: mailtemplate.PartSubject, problem: "Name"},
		{name: "unknown field in the HTML", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{HTML: `{{define "body"}}{{.Link}} {{.User}}{{end}}`},
			part: mailtemplate.PartHTML, problem: "User"},
		{name: "does not parse", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: "{{.Link}"},
			part: mailtemplate.PartText, problem: "text:1"},
		{name: "unknown function", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: `{{.Link}} {{readFile "/etc/passwd"}}`},
			part: mailtemplate.PartText, problem: "readFile"},
		{name: "text without the link", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: "Hello {{.Email}}"},
			part: mailtemplate.PartText, problem: "link"},
		{name: "link in a branch that never runs", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: `{{if eq .Tenant "nobody"}}{{.Link}}{{end}}`},
			part: mailtemplate.PartText, problem: "link"},
		{name: "HTML without the link", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{HTML: `{{define "body"}}<p>Hello</p>{{end}}`},
			part: mailtemplate.PartHTML, problem: "link"},
		{name: "HTML without body", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{HTML: `{{define "title"}}{{.Link}}{{end}}`},
			part: mailtemplate.PartHTML, problem: `"body"`},
		{name: "HTML outside the definitions", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{HTML: `<p>{{.Link}}</p>`},
			part: mailtemplate.PartHTML, problem: "outside"},
		{name: "HTML redefining the layout", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{HTML: body + `{{define "layout"}}{{.Link}}{{end}}`},
			part: mailtemplate.PartHTML, problem: `"layout"`},
		{name: "HTML calling the layout", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{HTML: `{{define "body"}}{{.Link}}{{template "layout" .}}{{end}}`},
			part: mailtemplate.PartHTML, problem: "calls itself"},
		{name: "HTML with a broken context", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{HTML: `{{define "body"}}<a href="{{.Link}}{{end}}`},
			part: mailtemplate.PartHTML},
		{name: "unknown purpose", purpose: "welcome", part: "purpose"},
		{name: "subject of two lines", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Subject: "Reset\nBcc: x@example.com"},
			part: mailtemplate.PartSubject, problem: "one line"},
		{name: "subject rendering empty", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Subject: "{{if false}}x{{end}}"},
			part: mailtemplate.PartSubject, problem: "empty"},
		{name: "subject too long", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Subject: strings.Repeat("a", mailtemplate.MaxSubjectSize+1)},
			part: mailtemplate.PartSubject, problem: "longer"},
		{name: "text too long", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: "{{.Link}}" + strings.Repeat("a", mailtemplate.MaxBodySize)},
			part: mailtemplate.PartText, problem: "longer"},
		{name: "HTML too long", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{HTML: body + strings.Repeat(" ", mailtemplate.MaxBodySize)},
			part: mailtemplate.PartHTML, problem: "longer"},
		{name: "not UTF-8", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: "{{.Link}} \xff"},
			part: mailtemplate.PartText, problem: "UTF-8"},
		{name: "range over a number", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: "{{.Link}}{{range 1000000000}}{{end}}"},
			part: mailtemplate.PartText, problem: "range"},
		{name: "range in a branch", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: "{{.Link}}{{if true}}{{range 9}}{{end}}{{end}}"},
			part: mailtemplate.PartText, problem: "range"},
		{name: "recursion", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: `{{define "a"}}{{template "a" .}}{{end}}{{.Link}}{{template "a" .}}`},
			part: mailtemplate.PartText, problem: "calls itself"},
		{name: "exponential calls", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: doubling(16) + `{{.Link}}{{template "d16" .}}`},
			part: mailtemplate.PartText, problem: "more than"},
		{name: "output too long", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{
			Text: `{{define "a"}}` + strings.Repeat("x", 1000) + `{{end}}{{.Link}}` + strings.Repeat(`{{template "a"}}`, 300)},
			part: mailtemplate.PartText, problem: "renders more"},
		{name: "printf", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: `{{.Link}}{{if printf "%999999d" 1}}{{end}}`},
			part: mailtemplate.PartText, problem: "calls printf"},
		{name: "print doubling a variable", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: `{{$x := .Link}}{{$x = print $x $x}}{{$x}}`},
			part: mailtemplate.PartText, problem: "calls print"},
		{name: "html in the HTML", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{HTML: `{{define "body"}}{{.Link | html}}{{end}}`},
			part: mailtemplate.PartHTML, problem: "calls html"},
		{name: "a function in an if's condition", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Subject: `{{if (urlquery .Email)}}x{{end}}`},
			part: mailtemplate.PartSubject, problem: "calls urlquery"},
		{name: "a time's other methods", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: `{{.Link}} {{.ExpiresAt.AddDate 1 0 0}}`},
			part: mailtemplate.PartText, problem: "AddDate"},
		{name: "a long time layout", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{Text: `{{.Link}} {{.ExpiresAt.Format "` + strings.Repeat("Jan ", 20) + `"}}`},
			part: mailtemplate.PartText, problem: "layout"},
		{name: "the allowed functions", purpose: events.LinkResetPassword, tmpl: events.MailTemplate{
			Text: `{{if and (eq (len .Tenant) 4) (not (ne (index .Tenant 0) 97))}}{{slice .Link 0}}{{end}} {{.ExpiresAt}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set, err := mailtemplate.Compile("acme", tt.purpose, tt.tmpl)
			if tt.part == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if _, err := set.Render(sample()); err != nil {
					t.Fatalf("render: %v", err)
				}
				return
			}
			if tt.part == "purpose" {
				if !errors.Is(err, mailtemplate.ErrUnknownPurpose) {
					t.Fatalf("err = %v, want ErrUnknownPurpose", err)
				}
				return
			}
			var te *mailtemplate.Error
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if te.Part != tt.part || !strings.Contains(te.Problem, tt.problem) {
				t.Fatalf("refused %s: %q, want %s with %q", te.Part, te.Problem, tt.part, tt.problem)
			}
		})
	}
}

// doubling defines d0 to dn, each calling the one before twice.
func doubling(n int) string {
	var b strings.Builder
	b.WriteString(`{{define "d0"}}{{end}}`)
	for i := 1; i <= n; i++ {
		b.WriteString(`{{define "d` + strconv.Itoa(i) + `"}}{{template "d` + strconv.Itoa(i-1) + `" .}}{{template "d` + strconv.Itoa(i-1) + `" .}}{{end}}`)
	}
	return b.String()
}

func sample() mailtemplate.Data {
	return mailtemplate.Data{Tenant: "acme", Email: "alice@acme.example", Link: "https://id.acme.example/t/acme/password/reset?token=abc",
		ExpiresAt: mailtemplate.At(time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)), ValidFor: "30 minutes"}
}

func TestDefaults_passTheirOwnRules(t *testing.T) {
	t.Parallel()
	for _, p := range mailtemplate.Purposes() {
		src, ok := mailtemplate.DefaultSource(p)
		if !ok {
			t.Fatalf("%s: no default", p)
		}
		if _, err := mailtemplate.Compile("acme", p, src); err != nil {
			t.Errorf("%s: the defaults are refused: %v", p, err)
		}
		set, err := mailtemplate.Default(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := set.Render(sample())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m.Text, sample().Link) || !strings.Contains(m.HTML, sample().Link) || m.Subject == "" {
			t.Errorf("%s: %+v", p, m)
		}
	}
}

func TestSet_RenderEscapesHTML(t *testing.T) {
	t.Parallel()
	set, err := mailtemplate.Compile("acme", events.LinkInvitation, events.MailTemplate{HTML: `{{define "body"}}<p>{{.Email}}</p><a href="{{.Link}}">go</a>{{end}}`})
	if err != nil {
		t.Fatal(err)
	}
	d := sample()
	d.Email = `<script>x</script>@acme.example`
	m, err := set.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;") {
		t.Fatalf("not escaped: %s", m.HTML)
	}
}
