package events

// TenantMailTemplateChanged replaces a tenant's own templates of the
// mails of one link purpose (LinkVerifyEmail, LinkResetPassword,
// LinkInvitation). Template is the whole override, not a change: a part
// it leaves empty is the platform's default, and an empty Template puts
// the purpose back to the defaults. The templates are the tenant's
// wording, never personal data: they travel in clear.
type TenantMailTemplateChanged struct {
	Purpose  string       `json:"purpose"`
	Template MailTemplate `json:"template"`
}

// MailTemplate is a tenant's override of the templates of one purpose,
// in the syntax of Go's text/template (Subject, Text) and html/template
// (HTML: the definitions of "title" and "body" inside the platform's
// layout). Each may be empty: the default's part is used.
type MailTemplate struct {
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// IsZero reports whether the override has no part: the defaults apply.
func (m MailTemplate) IsZero() bool { return m == MailTemplate{} }
