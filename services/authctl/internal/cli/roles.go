package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
)

var roleCommands = []*command{
	{
		name: "roles define", synopsis: "[--tenant T] NAME --permission P ... [--description D]",
		summary: "create a role or replace its permissions",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.Var(&stringList{}, "permission", "a `permission` resource:action, * per segment (repeatable)")
			fs.String("description", "", "what the role is for (`text`)")
		},
		run: rolesDefine,
	},
	{
		name: "roles list", synopsis: "[--tenant T]",
		summary: "list the roles of a tenant, the built-in admin included",
		flags:   tenantFlag,
		run:     rolesList,
	},
	{
		name: "roles show", synopsis: "[--tenant T] NAME",
		summary: "show one role",
		flags:   tenantFlag,
		run:     rolesShow,
	},
	{
		name: "roles delete", synopsis: "[--tenant T] NAME",
		summary: "delete a role (users keep its name, which grants nothing)",
		flags:   tenantFlag,
		run:     rolesDelete,
	},
	{
		name: "roles assign", synopsis: "[--tenant T] USER_ID ROLE",
		summary: "give a user a role",
		flags:   tenantFlag,
		run:     rolesAssign(true),
	},
	{
		name: "roles unassign", synopsis: "[--tenant T] USER_ID ROLE",
		summary: "take a role from a user",
		flags:   tenantFlag,
		run:     rolesAssign(false),
	},
}

// role is a role as the services show it.
type role struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Description string   `json:"description,omitempty"`
	Builtin     bool     `json:"builtin,omitempty"`
}

func rolesDefine(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "NAME"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	perms := []string(*fs.Lookup("permission").Value.(*stringList))
	if len(perms) == 0 {
		return usageErrorf("at least one --permission is required")
	}
	name := args[0]
	body := map[string]any{"permissions": perms}
	if d := flagString(fs, "description"); d != "" {
		body["description"] = d
	}
	var out role
	if err := in.command(ctx, tenant, tenant, http.MethodPut, pathf("/t/%s/roles/%s", tenant, name), body, &out); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	fmt.Fprintf(in.env.Out, "role %s of tenant %s defined: %s\n", out.Name, tenant, strings.Join(out.Permissions, ", "))
	return nil
}

func rolesList(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	var out struct {
		Items []role `json:"items"`
	}
	if err := in.read(ctx, tenant, pathf("/t/%s/roles", tenant), nil, &out); err != nil {
		return err
	}
	if out.Items == nil {
		out.Items = []role{}
	}
	if in.opts.json {
		return printJSON(in.env.Out, out.Items)
	}
	t := newTable(in.env.Out, "NAME", "PERMISSIONS", "DESCRIPTION")
	for _, r := range out.Items {
		desc := r.Description
		if r.Builtin {
			desc = "(built-in) " + desc
		}
		t.row(r.Name, list(r.Permissions), desc)
	}
	return t.flush()
}

func rolesShow(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "NAME"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	var r role
	if err := in.read(ctx, tenant, pathf("/t/%s/roles/%s", tenant, args[0]), nil, &r); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, r)
	}
	builtin := "no"
	if r.Builtin {
		builtin = "yes"
	}
	return fields(in.env.Out, "name", r.Name, "tenant", tenant, "permissions", strings.Join(r.Permissions, ", "),
		"description", r.Description, "built-in", builtin)
}

// roleResult is what roles delete, assign and unassign print.
type roleResult struct {
	Tenant   string `json:"tenant"`
	Role     string `json:"role"`
	UserID   string `json:"user_id,omitempty"`
	Deleted  bool   `json:"deleted,omitempty"`
	Assigned *bool  `json:"assigned,omitempty"`
}

func rolesDelete(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "NAME"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	name := args[0]
	if err := in.command(ctx, tenant, tenant, http.MethodDelete, pathf("/t/%s/roles/%s", tenant, name), nil, nil); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, roleResult{Tenant: tenant, Role: name, Deleted: true})
	}
	fmt.Fprintf(in.env.Out, "role %s of tenant %s deleted\n", name, tenant)
	return nil
}

func rolesAssign(assign bool) func(context.Context, *inv, *flag.FlagSet, []string) error {
	return func(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(args, "USER_ID", "ROLE"); err != nil {
			return err
		}
		tenant, err := in.tenant(flagString(fs, "tenant"))
		if err != nil {
			return err
		}
		id, name := args[0], args[1]
		method, verb := http.MethodPut, "assigned to"
		if !assign {
			method, verb = http.MethodDelete, "unassigned from"
		}
		if err := in.command(ctx, tenant, tenant, method, pathf("/t/%s/users/%s/roles/%s", tenant, id, name), nil, nil); err != nil {
			return err
		}
		if in.opts.json {
			return printJSON(in.env.Out, roleResult{Tenant: tenant, Role: name, UserID: id, Assigned: &assign})
		}
		fmt.Fprintf(in.env.Out, "role %s %s user %s of tenant %s\n", name, verb, id, tenant)
		return nil
	}
}
