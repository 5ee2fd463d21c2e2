package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/events/mailtemplate"
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
	// TemplateFault is why the tenant's own templates did not render,
	// when the platform's stood in for them (a *mailtemplate.Error, which
	// quotes no value of the mail).
	TemplateFault error
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

// Templates render the mails of each link purpose: the platform's
// (mailtemplate.Default), or a tenant's own where it set some. Safe for
// concurrent use: the mailer renders while the tenants' changes arrive.
type Templates struct {
	mu      sync.RWMutex
	tenants map[templateKey]*mailtemplate.Set
}

type templateKey struct{ tenant, purpose string }

// DefaultTemplates returns templates that know no tenant's own yet: every
// mail renders with the platform's, in English.
func DefaultTemplates() *Templates {
	return &Templates{tenants: map[templateKey]*mailtemplate.Set{}}
}

// Apply takes a tenant's change of the templates of one purpose
// (tenant.mail_template_changed): its override, compiled under the rules
// the command service checked it with, or the defaults again when it is
// empty. An override that does not compile (which the command service
// does not let through) leaves the tenant on the defaults for the
// purpose, and its error is returned.
func (t *Templates) Apply(tenant string, e events.TenantMailTemplateChanged) error {
	var (
		set *mailtemplate.Set
		err error
	)
	if !e.Template.IsZero() {
		set, err = mailtemplate.Compile(tenant, e.Purpose, e.Template)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if set == nil {
		delete(t.tenants, templateKey{tenant, e.Purpose})
	} else {
		t.tenants[templateKey{tenant, e.Purpose}] = set
	}
	return err
}

// own returns the tenant's own templates of purpose, or nil.
func (t *Templates) own(tenant, purpose string) *mailtemplate.Set {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.tenants[templateKey{tenant, purpose}]
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
	def, err := mailtemplate.Default(e.Purpose)
	if err != nil {
		return Mail{}, fmt.Errorf("link purpose %q is unknown", e.Purpose)
	}
	link, err := LinkURL(publicURL, env.Tenant, e.Purpose, token)
	if err != nil {
		return Mail{}, err
	}
	data := mailtemplate.Data{Tenant: env.Tenant, Email: to, Link: link, ExpiresAt: mailtemplate.At(e.ExpiresAt.UTC()), ValidFor: validFor(e.ExpiresAt.Sub(env.OccurredAt))}
	rendered, fault := mailtemplate.Mail{}, error(nil)
	own := t.own(env.Tenant, e.Purpose)
	if own != nil {
		rendered, fault = own.Render(data)
	}
	if own == nil || fault != nil {
		// A tenant's templates were checked when written, so they should
		// render; when they do not, the mail still goes, in the
		// platform's words.
		if rendered, err = def.Render(data); err != nil {
			return Mail{}, fmt.Errorf("render: %w", err)
		}
	}
	return Mail{
		MessageID: MessageID(env.ID, publicURL),
		From:      from, To: to,
		Subject: rendered.Subject, Text: rendered.Text, HTML: rendered.HTML, Link: link,
		TemplateFault: fault,
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
