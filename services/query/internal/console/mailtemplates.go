package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
)

// mailPurpose is a kind of mail a tenant may write its own templates of
// (ADR 0020), as the pages name it.
type mailPurpose struct {
	ID, Label string
}

// mailPurposes are the purposes of GET|PUT|DELETE
// /settings/mail-templates/{purpose}, in the order of a person's life in
// the tenant.
var mailPurposes = []mailPurpose{
	{ID: "verify_email", Label: "Address verification"},
	{ID: "reset_password", Label: "Password reset"},
	{ID: "invitation", Label: "Invitation"},
}

func purposeOf(id string) (mailPurpose, bool) {
	i := slices.IndexFunc(mailPurposes, func(p mailPurpose) bool { return p.ID == id })
	if i < 0 {
		return mailPurpose{}, false
	}
	return mailPurposes[i], true
}

// mailTemplateView is the query API's answer: the templates in force,
// the platform's parts included, and which parts are the tenant's.
type mailTemplateView struct {
	Purpose string   `json:"purpose"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
	HTML    string   `json:"html"`
	Custom  []string `json:"custom"`
}

// own reports whether part is the tenant's own.
func (v mailTemplateView) own(part string) bool { return slices.Contains(v.Custom, part) }

// mailTemplatesRow is a purpose of the mail templates page.
type mailTemplatesRow struct {
	Purpose mailPurpose
	Custom  []string // the tenant's own parts; none: the platform's mail
}

// mailTemplates lists the purposes with whether the tenant's mails of
// each are its own or the platform's.
func (c *Console) mailTemplates(w http.ResponseWriter, r *http.Request) {
	k := c.clientOf(r)
	rows := make([]mailTemplatesRow, 0, len(mailPurposes))
	for _, p := range mailPurposes {
		var v mailTemplateView
		if err := k.query(r.Context(), "/settings/mail-templates/"+p.ID, nil, &v); err != nil {
			c.apiFailure(w, r, err)
			return
		}
		rows = append(rows, mailTemplatesRow{Purpose: p, Custom: v.Custom})
	}
	c.page(w, r, "mail_templates.html", view{Title: "Mail templates", Section: "/settings/mail-templates", Data: rows})
}

// mailTemplateData is the form of one purpose: the fields hold the
// tenant's own parts only (an empty field is the platform's part, shown
// beside it), or what the admin typed when the API refused it.
type mailTemplateData struct {
	Purpose             mailPurpose
	Subject, Text, HTML string
	// The platform's parts the tenant does not replace; "" where the
	// field holds the tenant's own.
	DefaultSubject, DefaultText, DefaultHTML string
	Custom                                   []string
}

// formOf is the form of the templates v.
func formOf(p mailPurpose, v mailTemplateView) mailTemplateData {
	d := mailTemplateData{Purpose: p, Custom: v.Custom}
	for _, f := range []struct {
		part        string
		value       string
		field, dflt *string
	}{
		{"subject", v.Subject, &d.Subject, &d.DefaultSubject},
		{"text", v.Text, &d.Text, &d.DefaultText},
		{"html", v.HTML, &d.HTML, &d.DefaultHTML},
	} {
		if v.own(f.part) {
			*f.field = f.value
		} else {
			*f.dflt = f.value
		}
	}
	return d
}

// mailTemplate shows the form of one purpose.
func (c *Console) mailTemplate(w http.ResponseWriter, r *http.Request) {
	p, ok := purposeOf(chi.URLParam(r, "purpose"))
	if !ok {
		c.renderError(w, r, http.StatusNotFound, "There is nothing here.")
		return
	}
	var v mailTemplateView
	if err := c.clientOf(r).query(r.Context(), "/settings/mail-templates/"+p.ID, nil, &v); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.page(w, r, "mail_template.html", view{Title: "Mail templates: " + p.Label, Section: "/settings/mail-templates", Data: formOf(p, v)})
}

// saveMailTemplate replaces the tenant's templates of the purpose (PUT):
// an empty field is the platform's part. A template the API refuses
// (400 invalid-mail-template, naming the part and the problem) is shown
// beside the form, which keeps what the admin typed.
func (c *Console) saveMailTemplate(w http.ResponseWriter, r *http.Request) {
	p, ok := purposeOf(chi.URLParam(r, "purpose"))
	if !ok {
		c.renderError(w, r, http.StatusNotFound, "There is nothing here.")
		return
	}
	k := c.clientOf(r)
	body := map[string]string{}
	for _, f := range []string{"subject", "text", "html"} {
		// A browser sends a textarea's lines ended with CRLF: the
		// templates keep the line ends the admin sees, LF.
		if v := strings.ReplaceAll(r.PostFormValue(f), "\r\n", "\n"); v != "" {
			body[f] = v
		}
	}
	ct, err := k.command(r.Context(), http.MethodPut, "/settings/mail-templates/"+p.ID, body, nil)
	if err != nil {
		e, ok := asInvalid(err)
		if !ok {
			c.apiFailure(w, r, err)
			return
		}
		// The platform's parts beside the fields, as the page showed
		// them; without them the form still keeps what was typed.
		var v mailTemplateView
		_ = k.query(r.Context(), "/settings/mail-templates/"+p.ID, nil, &v)
		d := formOf(p, v)
		d.Subject, d.Text, d.HTML = body["subject"], body["text"], body["html"]
		c.page(w, r, "mail_template.html", view{Title: "Mail templates: " + p.Label, Section: "/settings/mail-templates",
			Status: e.Status, Error: e.Error(), Data: d})
		return
	}
	c.after(w, r, "/settings/mail-templates/"+p.ID, ct, "saved")
}

// resetMailTemplate puts the purpose's mails back to the platform's
// templates (DELETE).
func (c *Console) resetMailTemplate(w http.ResponseWriter, r *http.Request) {
	p, ok := purposeOf(chi.URLParam(r, "purpose"))
	if !ok {
		c.renderError(w, r, http.StatusNotFound, "There is nothing here.")
		return
	}
	ct, err := c.clientOf(r).command(r.Context(), http.MethodDelete, "/settings/mail-templates/"+p.ID, nil, nil)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/settings/mail-templates/"+p.ID, ct, "default")
}
