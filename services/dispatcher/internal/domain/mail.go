package domain

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/mail"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// Mail is one message ready for an SMTP server: plain text with an HTML
// alternative.
type Mail struct {
	// MessageID is derived from the event that asked for the mail, so that
	// the one message sent again after a crash carries the same id and a
	// mail client that de-duplicates by Message-ID shows it once.
	MessageID string
	From, To  string
	Subject   string
	Text      string
	HTML      string
	// Link is the single-use link the mail carries, for the log sender,
	// which writes it redacted unless told otherwise. The SMTP sender
	// does not use it.
	Link string
}

// ErrMailRefused is wrapped by a mail sender's error when the mail is
// refused for good (a permanent SMTP answer): it is recorded failed and
// never sent again.
var ErrMailRefused = errors.New("mail refused for good")

// ErrBadRecipient is returned by NewLinkMail when the event's address is
// not one a mail can go to: sending it again would never succeed.
var ErrBadRecipient = errors.New("not a mail address")

// The paths of the hosted pages a link of each purpose opens, under
// <public URL>/t/<tenant>.
var linkPaths = map[string]string{
	events.LinkVerifyEmail:   "/email/verify",
	events.LinkResetPassword: "/password/reset",
	events.LinkInvitation:    "/invitation",
}

// LinkPath returns the path, under /t/<tenant>, of the hosted page a link
// of purpose opens, and whether the purpose is known.
func LinkPath(purpose string) (string, bool) {
	p, ok := linkPaths[purpose]
	return p, ok
}

// LinkURL returns the link a mail carries: the hosted page of the purpose
// with the token in the query string, which the pages move into a form at
// once and which request logs (paths only) never show.
func LinkURL(publicURL, tenant, purpose, token string) (string, error) {
	p, ok := LinkPath(purpose)
	if !ok {
		return "", fmt.Errorf("link purpose %q is unknown", purpose)
	}
	return strings.TrimRight(publicURL, "/") + "/t/" + url.PathEscape(tenant) + p + "?token=" + url.QueryEscape(token), nil
}

//go:embed templates/*.tmpl
var templateFS embed.FS

// Templates render the mails of each link purpose: a subject, a plain
// text body and an HTML body (html/template escapes what it inserts).
type Templates struct {
	subject map[string]*texttemplate.Template
	text    map[string]*texttemplate.Template
	html    map[string]*htmltemplate.Template
}

// DefaultTemplates returns the platform's templates, in English.
func DefaultTemplates() *Templates {
	t := &Templates{subject: map[string]*texttemplate.Template{}, text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for purpose := range linkPaths {
		t.subject[purpose] = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/"+purpose+".subject.tmpl"))
		t.text[purpose] = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/"+purpose+".txt.tmpl"))
		t.html[purpose] = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/layout.html.tmpl", "templates/"+purpose+".html.tmpl"))
	}
	return t
}

// MailData is what the templates see.
type MailData struct {
	// Tenant is the tenant's slug.
	Tenant string
	// Email is the recipient's address.
	Email string
	// Link is the single-use link.
	Link string
	// ExpiresAt is when the link stops working, and ValidFor how long it
	// is good for from the time it was issued, in words ("30 minutes").
	ExpiresAt time.Time
	ValidFor  string
}

// NewLinkMail renders the mail an email_link.issued event asks for, its
// address opened (events.OpenPersonalOf). token is the opened token; link
// is built from publicURL. It returns ErrBadRecipient for an address no
// mail can go to, and an error for an unknown purpose.
func (t *Templates) NewLinkMail(env events.Envelope, e events.EmailLinkIssued, token, publicURL, from string) (Mail, error) {
	to, _ := e.Email.Legacy()
	addr, err := mail.ParseAddress(to)
	if err != nil || addr.Name != "" || addr.Address != to {
		return Mail{}, ErrBadRecipient
	}
	subj, ok := t.subject[e.Purpose]
	if !ok {
		return Mail{}, fmt.Errorf("link purpose %q is unknown", e.Purpose)
	}
	link, err := LinkURL(publicURL, env.Tenant, e.Purpose, token)
	if err != nil {
		return Mail{}, err
	}
	data := MailData{Tenant: env.Tenant, Email: to, Link: link, ExpiresAt: e.ExpiresAt.UTC(), ValidFor: validFor(e.ExpiresAt.Sub(env.OccurredAt))}
	var s, txt, html bytes.Buffer
	if err := subj.Execute(&s, data); err != nil {
		return Mail{}, fmt.Errorf("render subject: %w", err)
	}
	if err := t.text[e.Purpose].Execute(&txt, data); err != nil {
		return Mail{}, fmt.Errorf("render text: %w", err)
	}
	if err := t.html[e.Purpose].ExecuteTemplate(&html, "layout", data); err != nil {
		return Mail{}, fmt.Errorf("render html: %w", err)
	}
	return Mail{
		MessageID: MessageID(env.ID, publicURL),
		From:      from, To: to,
		Subject: strings.TrimSpace(s.String()), Text: txt.String(), HTML: html.String(), Link: link,
	}, nil
}

// MessageID returns the Message-ID of the mail of event id: the event id
// at the public host, without angle brackets.
func MessageID(eventID, publicURL string) string {
	host := "authstream.invalid"
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return eventID + "@" + host
}

// validFor says a duration in words, rounded down to whole days, hours or
// minutes.
func validFor(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 48*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	case d >= 2*time.Hour:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(max(int(d/time.Minute), 1), "minute")
	}
}
