package mailtemplate_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/events/mailtemplate"
)

// FuzzCompile feeds Compile templates of any content: it refuses or
// accepts, never panics, and what it accepts renders, carrying the link,
// within the output bound.
func FuzzCompile(f *testing.F) {
	for _, p := range mailtemplate.Purposes() {
		src, _ := mailtemplate.DefaultSource(p)
		f.Add(src.Subject, src.Text, src.HTML)
	}
	f.Add("{{.Tenant}}", "{{.Link}}{{range 9}}{{end}}", `{{define "body"}}{{template "body" .}}{{end}}`)
	f.Add("{{printf \"%99999d\" 1}}", "{{with .Link}}{{.}}{{end}}", `{{define "body"}}<a href="{{.Link}}">{{.Email}}</a>{{end}}`)
	f.Fuzz(func(t *testing.T, subject, text, html string) {
		start := time.Now()
		set, err := mailtemplate.Compile("acme", events.LinkResetPassword, events.MailTemplate{Subject: subject, Text: text, HTML: html})
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the check took %v", d)
		}
		if err != nil {
			var te *mailtemplate.Error
			if !errors.As(err, &te) {
				t.Fatalf("refused without an *Error: %v", err)
			}
			return
		}
		m, err := set.Render(sample())
		if err != nil {
			return // a branch the check did not take: the mailer falls back
		}
		if len(m.Text) > mailtemplate.MaxOutput || len(m.HTML) > mailtemplate.MaxOutput || strings.ContainsAny(m.Subject, "\r\n") {
			t.Fatalf("rendered past the rules: %d, %d bytes, subject %q", len(m.Text), len(m.HTML), m.Subject)
		}
	})
}
