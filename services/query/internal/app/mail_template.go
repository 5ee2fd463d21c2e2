package app

import (
	"context"
	"fmt"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/events/mailtemplate"
	"github.com/authstream/authstream/libs/fault"
)

// PermSettingsRead reads a tenant's settings that are not every user's
// business, such as its mail templates.
var PermSettingsRead = authz.MustParse("settings:read")

// ErrUnknownMailPurpose answers a purpose no mail has.
var ErrUnknownMailPurpose = fault.New(fault.NotFound, "mail-purpose-not-found", "no mail has this purpose")

// MailTemplateView is the templates the mails of one purpose are
// rendered with: the tenant's own parts, the platform's for the others.
type MailTemplateView struct {
	Purpose string `json:"purpose"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
	// Custom names the parts that are the tenant's own ("subject",
	// "text", "html"), in that order; empty when all are the platform's.
	Custom []string `json:"custom"`
}

// MailTemplate returns the templates of the caller's tenant's mails of
// purpose. It needs settings:read. The templates are read from the
// tenant's events in the log, not a projection: a handful of events on
// one subject, and what a PUT just wrote is what the next GET shows (ADR
// 0020). It returns ErrUnknownMailPurpose for a purpose no mail has.
func (a *App) MailTemplate(ctx context.Context, c Caller, purpose string) (MailTemplateView, error) {
	if err := a.require(ctx, c, PermSettingsRead); err != nil {
		return MailTemplateView{}, err
	}
	def, ok := mailtemplate.DefaultSource(purpose)
	if !ok {
		return MailTemplateView{}, &fault.Error{Code: fault.NotFound, Reason: ErrUnknownMailPurpose.Reason,
			Message: fmt.Sprintf("no mail has purpose %q (one of %v)", purpose, mailtemplate.Purposes()), Err: ErrUnknownMailPurpose}
	}
	h, err := a.store.Load(ctx, c.Tenant, events.AggregateTenant, c.Tenant)
	if err != nil {
		return MailTemplateView{}, appendError("load tenant", err)
	}
	var own events.MailTemplate
	for _, st := range h.Events {
		if st.Envelope.Type != events.TypeTenantMailTemplateChanged {
			continue
		}
		p, err := events.Decode(st.Envelope)
		if err != nil {
			return MailTemplateView{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		if e, ok := p.(events.TenantMailTemplateChanged); ok && e.Purpose == purpose {
			own = e.Template
		}
	}
	v := MailTemplateView{Purpose: purpose, Subject: def.Subject, Text: def.Text, HTML: def.HTML, Custom: []string{}}
	if own.Subject != "" {
		v.Subject, v.Custom = own.Subject, append(v.Custom, mailtemplate.PartSubject)
	}
	if own.Text != "" {
		v.Text, v.Custom = own.Text, append(v.Custom, mailtemplate.PartText)
	}
	if own.HTML != "" {
		v.HTML, v.Custom = own.HTML, append(v.Custom, mailtemplate.PartHTML)
	}
	return v, nil
}
