package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
)

var tenantCommands = []*command{
	{
		name: "tenants create", synopsis: "ID --name N --admin-username U [--admin-password-stdin] [--signing-alg A]",
		summary: "create a tenant with its first admin (platform admins)",
		flags: func(fs *flag.FlagSet) {
			fs.String("name", "", "the tenant's display `name`")
			fs.String("signing-alg", "", "the `algorithm` of the tenant's signing keys: EdDSA (default), ES256 or RS256")
			fs.String("admin-username", "", "the `username` of the tenant's first admin")
			fs.Bool("admin-password-stdin", false, "read the admin's password from the first line of standard input")
		},
		run: tenantsCreate,
	},
	{
		name: "tenants disable", synopsis: "ID [--reason R]",
		summary: "disable a tenant: its users can no longer log in (platform admins)",
		flags: func(fs *flag.FlagSet) {
			fs.String("reason", "", "why (`text`), recorded in the event")
		},
		run: tenantsSetStatus("disable"),
	},
	{
		name: "tenants enable", synopsis: "ID",
		summary: "enable a disabled tenant (platform admins)",
		run:     tenantsSetStatus("enable"),
	},
}

// tenantCreated is the answer of POST /tenants.
type tenantCreated struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	AdminUserID string `json:"admin_user_id"`
}

func tenantsCreate(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "ID"); err != nil {
		return err
	}
	id, name, admin := args[0], flagString(fs, "name"), flagString(fs, "admin-username")
	if name == "" || admin == "" {
		return usageErrorf("--name and --admin-username are required")
	}
	pw, err := in.password("Password for "+admin+": ", flagBool(fs, "admin-password-stdin"), true, "--admin-password-stdin")
	if err != nil {
		return err
	}
	body := map[string]any{"id": id, "name": name, "admin": map[string]string{"username": admin, "password": pw}}
	if alg := flagString(fs, "signing-alg"); alg != "" {
		body["signing_alg"] = alg
	}
	var out tenantCreated
	if err := in.command(ctx, platformTenant, id, http.MethodPost, "/tenants", body, &out); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	fmt.Fprintf(in.env.Out, "tenant %s created; its admin %s has user id %s\n", out.ID, admin, out.AdminUserID)
	return nil
}

// tenantStatus is what tenants disable and enable print.
type tenantStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func tenantsSetStatus(action string) func(context.Context, *inv, *flag.FlagSet, []string) error {
	return func(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(args, "ID"); err != nil {
			return err
		}
		id := args[0]
		var body any
		if f := fs.Lookup("reason"); f != nil && f.Value.String() != "" {
			body = map[string]string{"reason": f.Value.String()}
		}
		if err := in.command(ctx, platformTenant, id, http.MethodPost, pathf("/tenants/%s/"+action, id), body, nil); err != nil {
			return err
		}
		out := tenantStatus{ID: id, Status: map[string]string{"disable": "disabled", "enable": "active"}[action]}
		if in.opts.json {
			return printJSON(in.env.Out, out)
		}
		fmt.Fprintf(in.env.Out, "tenant %s %sd\n", id, action)
		return nil
	}
}
