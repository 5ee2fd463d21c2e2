package domain

import (
	"errors"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/events/mailtemplate"
	"github.com/authstream/authstream/libs/fault"
)

// The errors of a tenant's mail templates.
var (
	// ErrUnknownMailPurpose: the link purpose has no mails
	// (mailtemplate.Purposes).
	ErrUnknownMailPurpose = fault.New(fault.NotFound, "mail-purpose-not-found", "no mail has this purpose")
	// ErrInvalidMailTemplate: a template is too long, does not parse,
	// names a field the mails do not have, leaves out the link, or
	// renders a subject of more than one line.
	ErrInvalidMailTemplate = fault.New(fault.Invalid, "invalid-mail-template", "mail template is invalid")
)

// SetMailTemplate records tenant.mail_template_changed with the tenant's
// own templates of purpose, or nothing when they are the ones held; an
// empty override puts the purpose back to the defaults
// (ResetMailTemplate). The templates are checked as the mailer will run
// them (mailtemplate.Compile): ErrUnknownMailPurpose,
// ErrInvalidMailTemplate. The tenant must exist and be active.
func (t *Tenant) SetMailTemplate(purpose string, tmpl events.MailTemplate) error {
	if !mailtemplate.Known(purpose) {
		return detail(ErrUnknownMailPurpose, "no mail has purpose %q (one of %v)", purpose, mailtemplate.Purposes())
	}
	if err := t.RequireActive(); err != nil {
		return err
	}
	if !tmpl.IsZero() {
		if _, err := mailtemplate.Compile(t.id, purpose, tmpl); err != nil {
			var te *mailtemplate.Error
			if errors.As(err, &te) {
				return detail(ErrInvalidMailTemplate, "%s", te.Error())
			}
			return detail(ErrInvalidMailTemplate, "the templates cannot be checked")
		}
	}
	if t.mailTemplates[purpose] == tmpl {
		return nil
	}
	t.record(t.apply, events.TypeTenantMailTemplateChanged, events.TenantMailTemplateChanged{Purpose: purpose, Template: tmpl})
	return nil
}

// ResetMailTemplate puts the mails of purpose back to the platform's
// templates: SetMailTemplate with an empty override.
func (t *Tenant) ResetMailTemplate(purpose string) error {
	return t.SetMailTemplate(purpose, events.MailTemplate{})
}

// MailTemplate returns the tenant's own templates of purpose; the zero
// value when it has none.
func (t *Tenant) MailTemplate(purpose string) events.MailTemplate { return t.mailTemplates[purpose] }
