package domain_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

func mailTemplateChanged(purpose string, tmpl events.MailTemplate) domain.Pending {
	return ev(events.TypeTenantMailTemplateChanged, events.TenantMailTemplateChanged{Purpose: purpose, Template: tmpl})
}

func TestTenant_SetMailTemplate(t *testing.T) {
	t.Parallel()
	own := events.MailTemplate{Subject: "Acme: new password", Text: "Open {{.Link}}"}
	withOwn := []domain.Pending{tenantCreated, mailTemplateChanged(events.LinkResetPassword, own)}
	tests := []struct {
		name    string
		history []domain.Pending
		purpose string
		tmpl    events.MailTemplate
		wantErr error
		want    []domain.Pending
	}{
		{name: "first override", history: []domain.Pending{tenantCreated}, purpose: events.LinkResetPassword, tmpl: own,
			want: []domain.Pending{mailTemplateChanged(events.LinkResetPassword, own)}},
		{name: "the same again", history: withOwn, purpose: events.LinkResetPassword, tmpl: own},
		{name: "another purpose", history: withOwn, purpose: events.LinkInvitation, tmpl: events.MailTemplate{Subject: "Join"},
			want: []domain.Pending{mailTemplateChanged(events.LinkInvitation, events.MailTemplate{Subject: "Join"})}},
		{name: "reset", history: withOwn, purpose: events.LinkResetPassword,
			want: []domain.Pending{mailTemplateChanged(events.LinkResetPassword, events.MailTemplate{})}},
		{name: "reset of none", history: []domain.Pending{tenantCreated}, purpose: events.LinkResetPassword},
		{name: "unknown purpose", history: []domain.Pending{tenantCreated}, purpose: "welcome", tmpl: own, wantErr: domain.ErrUnknownMailPurpose},
		{name: "invalid template", history: []domain.Pending{tenantCreated}, purpose: events.LinkResetPassword,
			tmpl: events.MailTemplate{Text: "no link"}, wantErr: domain.ErrInvalidMailTemplate},
		{name: "unknown field", history: []domain.Pending{tenantCreated}, purpose: events.LinkResetPassword,
			tmpl: events.MailTemplate{Subject: "{{.Password}}"}, wantErr: domain.ErrInvalidMailTemplate},
		{name: "disabled tenant", history: []domain.Pending{tenantCreated, tenantDisabled}, purpose: events.LinkResetPassword, tmpl: own, wantErr: domain.ErrTenantDisabled},
		{name: "no tenant", purpose: events.LinkResetPassword, tmpl: own, wantErr: domain.ErrTenantNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant := mustLoadTenant(t, "acme", tt.history...)
			err := tenant.SetMailTemplate(tt.purpose, tt.tmpl)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := tenant.Pending(); !reflect.DeepEqual(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Fatalf("recorded %+v, want %+v", got, tt.want)
			}
			if err == nil && tenant.MailTemplate(tt.purpose) != tt.tmpl {
				t.Fatalf("held %+v, want %+v", tenant.MailTemplate(tt.purpose), tt.tmpl)
			}
		})
	}
}

func TestTenant_Clone_mailTemplates(t *testing.T) {
	t.Parallel()
	tenant := mustLoadTenant(t, "acme", tenantCreated)
	c := tenant.Clone()
	if err := c.SetMailTemplate(events.LinkInvitation, events.MailTemplate{Subject: "Join"}); err != nil {
		t.Fatal(err)
	}
	if !tenant.MailTemplate(events.LinkInvitation).IsZero() {
		t.Fatal("the clone's template shows on the original")
	}
}
