package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
)

var mailTemplateCommands = []*command{
	{
		name:     "tenants settings mail-template set",
		synopsis: "TENANT PURPOSE [--subject S | --subject-file F] [--text-file F] [--html-file F]",
		summary:  "set a tenant's own templates of one kind of mail (verify_email, reset_password, invitation; settings:write)",
		flags: func(fs *flag.FlagSet) {
			fs.String("subject", "", "the subject's `template`")
			fs.String("subject-file", "", "a `file` holding the subject's template")
			fs.String("text-file", "", "a `file` holding the text body's template (it carries {{.Link}})")
			fs.String("html-file", "", `a `+"`file`"+` holding the HTML body's {{define "title"}} and {{define "body"}} (which carries {{.Link}})`)
		},
		run: mailTemplateSet,
	},
	{
		name:     "tenants settings mail-template show",
		synopsis: "TENANT PURPOSE",
		summary:  "show the templates a tenant's mails of one kind are rendered with (settings:read)",
		run:      mailTemplateShow,
	},
	{
		name:     "tenants settings mail-template reset",
		synopsis: "TENANT PURPOSE",
		summary:  "put one kind of mail back to the platform's templates (settings:write)",
		run:      mailTemplateReset,
	},
}

// mailTemplate is a tenant's own templates of one purpose, as the command
// service takes and answers them.
type mailTemplate struct {
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// mailTemplateView is the query service's answer: the templates in force.
type mailTemplateView struct {
	Purpose string   `json:"purpose"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
	HTML    string   `json:"html"`
	Custom  []string `json:"custom"`
}

func mailTemplateSet(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "TENANT", "PURPOSE"); err != nil {
		return err
	}
	tenant, purpose := args[0], args[1]
	var body mailTemplate
	body.Subject = fs.Lookup("subject").Value.String()
	if f := fs.Lookup("subject-file").Value.String(); f != "" {
		if body.Subject != "" {
			return usageErrorf("--subject and --subject-file go one at a time")
		}
		s, err := readTemplate(f)
		if err != nil {
			return err
		}
		body.Subject = s
	}
	for _, p := range []struct {
		flag string
		dst  *string
	}{{"text-file", &body.Text}, {"html-file", &body.HTML}} {
		if f := fs.Lookup(p.flag).Value.String(); f != "" {
			s, err := readTemplate(f)
			if err != nil {
				return err
			}
			*p.dst = s
		}
	}
	if body == (mailTemplate{}) {
		return usageErrorf("nothing to set: give --subject, --subject-file, --text-file or --html-file (tenants settings mail-template reset goes back to the platform's)")
	}
	var out mailTemplate
	if err := in.command(ctx, tenant, tenant, http.MethodPut, pathf("/t/%s/settings/mail-templates/%s", tenant, purpose), body, &out); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	var own []string
	for _, p := range []struct{ name, v string }{{"subject", out.Subject}, {"text", out.Text}, {"html", out.HTML}} {
		if p.v != "" {
			own = append(own, p.name)
		}
	}
	fmt.Fprintf(in.env.Out, "mail template %s of tenant %s set: %s the tenant's, the rest the platform's\n", purpose, tenant, strings.Join(own, ", "))
	return nil
}

func mailTemplateShow(ctx context.Context, in *inv, _ *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "TENANT", "PURPOSE"); err != nil {
		return err
	}
	tenant, purpose := args[0], args[1]
	var v mailTemplateView
	if err := in.read(ctx, tenant, pathf("/t/%s/settings/mail-templates/%s", tenant, purpose), nil, &v); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, v)
	}
	custom := map[string]bool{}
	for _, c := range v.Custom {
		custom[c] = true
	}
	for _, p := range []struct{ name, v string }{{"subject", v.Subject}, {"text", v.Text}, {"html", v.HTML}} {
		whose := "the platform's"
		if custom[p.name] {
			whose = "the tenant's"
		}
		fmt.Fprintf(in.env.Out, "--- %s (%s)\n%s\n", p.name, whose, strings.TrimRight(p.v, "\n"))
	}
	return nil
}

func mailTemplateReset(ctx context.Context, in *inv, _ *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "TENANT", "PURPOSE"); err != nil {
		return err
	}
	tenant, purpose := args[0], args[1]
	if err := in.command(ctx, tenant, tenant, http.MethodDelete, pathf("/t/%s/settings/mail-templates/%s", tenant, purpose), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(in.env.Out, "mail template %s of tenant %s: the platform's again\n", purpose, tenant)
	return nil
}

// readTemplate reads a template file; the service checks what it holds.
func readTemplate(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read template: %w", err)
	}
	return string(b), nil
}
