package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

var userCommands = []*command{
	{
		name: "users create", synopsis: "[--tenant T] USERNAME [--role R ...] [--email E] [--name N] [--locale L] [--password-stdin]",
		summary: "register a user",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.Var(&stringList{}, "role", "a `role` to hold (repeatable)")
			fs.Bool("password-stdin", false, "read the password from the first line of standard input")
			profileFlags(fs)
		},
		run: usersCreate,
	},
	{
		name: "users list", synopsis: "[--tenant T]",
		summary: "list the users of a tenant (every page)",
		flags:   tenantFlag,
		run:     usersList,
	},
	{
		name: "users show", synopsis: "[--tenant T] ID",
		summary: "show one user",
		flags:   tenantFlag,
		run:     usersShow,
	},
	{
		name: "users disable", synopsis: "[--tenant T] ID [--reason R]",
		summary: "disable a user: no more logins, its sessions and tokens end",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.String("reason", "", "why (`text`), recorded in the event")
		},
		run: userAction("disable"),
	},
	{
		name: "users enable", synopsis: "[--tenant T] ID",
		summary: "enable a disabled user",
		flags:   tenantFlag,
		run:     userAction("enable"),
	},
	{
		name: "users delete", synopsis: "[--tenant T] ID",
		summary: "delete a user (its history stays in the log)",
		flags:   tenantFlag,
		run:     userAction("delete"),
	},
	{
		name: "users import", synopsis: "[--tenant T] FILE",
		summary: "import users from another provider's export (JSON lines, one user a line), with a progress bar",
		flags:   tenantFlag,
		run:     usersImport,
	},
	{
		name: "users set-password", synopsis: "[--tenant T] ID [--password-stdin]",
		summary: "set a user's password (an administrator's reset)",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.Bool("password-stdin", false, "read the new password from the first line of standard input")
		},
		run: usersSetPassword,
	},
	{
		name: "users update", synopsis: "[--tenant T] ID [--email E] [--name N] [--locale L] [--clear MEMBER ...]",
		summary: "change a user's profile (an empty --email, --name or --locale is left as it is; --clear removes)",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			profileFlags(fs)
			fs.Var(&stringList{}, "clear", "a profile `member` to remove: email, name, locale or attributes (repeatable)")
		},
		run: usersUpdate,
	},
}

// profileFlags registers the flags of a user's profile.
func profileFlags(fs *flag.FlagSet) {
	fs.String("email", "", "the user's e-mail `address`")
	fs.String("name", "", "the user's full `name`")
	fs.String("locale", "", "the user's preferred language, a BCP 47 `tag` (en, fr-CA)")
}

// setProfile adds the profile flags given to body.
func setProfile(fs *flag.FlagSet, body map[string]any) {
	for _, k := range []string{"email", "name", "locale"} {
		if v := flagString(fs, k); v != "" {
			body[k] = v
		}
	}
}

func usersUpdate(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	patch := map[string]any{}
	setProfile(fs, patch)
	for _, m := range []string(*fs.Lookup("clear").Value.(*stringList)) {
		if _, set := patch[m]; set {
			return usageErrorf("--clear %s and --%s together", m, m)
		}
		patch[m] = nil
	}
	if len(patch) == 0 {
		return usageErrorf("nothing to change: give --email, --name, --locale or --clear")
	}
	if err := in.command(ctx, tenant, tenant, http.MethodPatch, pathf("/t/%s/users/%s", tenant, args[0]), patch, nil); err != nil {
		return err
	}
	if !in.opts.json {
		fmt.Fprintf(in.env.Out, "profile of user %s of tenant %s updated\n", args[0], tenant)
	}
	return nil
}

// tenantFlag registers --tenant.
func tenantFlag(fs *flag.FlagSet) {
	fs.String("tenant", "", "the `tenant` (default: that of the last login)")
}

// user is a user as the query service shows it.
type user struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Status    string    `json:"status"`
	Roles     []string  `json:"roles"`
	Version   int64     `json:"version,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`

	Email         string          `json:"email,omitempty"`
	EmailVerified *bool           `json:"email_verified,omitempty"`
	Name          string          `json:"name,omitempty"`
	Locale        string          `json:"locale,omitempty"`
	Attributes    json.RawMessage `json:"attributes,omitempty"`
}

// userCreated is the answer of POST /t/{tenant}/users.
type userCreated struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Version  int64  `json:"version"`
}

func usersCreate(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "USERNAME"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	username := args[0]
	pw, err := in.password("Password for "+username+": ", flagBool(fs, "password-stdin"), true, "--password-stdin")
	if err != nil {
		return err
	}
	roles := []string(*fs.Lookup("role").Value.(*stringList))
	if roles == nil {
		roles = []string{}
	}
	var out userCreated
	body := map[string]any{"username": username, "password": pw, "roles": roles}
	setProfile(fs, body)
	if err := in.command(ctx, tenant, tenant, http.MethodPost, pathf("/t/%s/users", tenant), body, &out); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	fmt.Fprintf(in.env.Out, "user %s created in tenant %s with id %s\n", out.Username, tenant, out.ID)
	return nil
}

// pageSize is the page size the list commands ask for (the query
// service's maximum).
const pageSize = 200

func usersList(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	all, err := readPages[user](ctx, in, tenant, pathf("/t/%s/users", tenant))
	if err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, all)
	}
	t := newTable(in.env.Out, "ID", "USERNAME", "STATUS", "ROLES")
	for _, u := range all {
		t.row(u.ID, u.Username, u.Status, list(u.Roles))
	}
	return t.flush()
}

// readPages reads every page of a listing of the query service (path,
// in tenant), following next_cursor.
func readPages[T any](ctx context.Context, in *inv, tenant, path string) ([]T, error) {
	all := []T{}
	cursor := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(pageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []T    `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := in.read(ctx, tenant, path, q, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" || page.NextCursor == cursor {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

func usersShow(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	var u user
	if err := in.read(ctx, tenant, pathf("/t/%s/users/%s", tenant, args[0]), nil, &u); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, u)
	}
	return fields(in.env.Out,
		"id", u.ID, "username", u.Username, "tenant", tenant, "status", u.Status, "roles", list(u.Roles),
		"version", strconv.FormatInt(u.Version, 10), "created", timeString(u.CreatedAt), "updated", timeString(u.UpdatedAt),
		"email", emailString(u), "name", u.Name, "locale", u.Locale, "attributes", string(u.Attributes))
}

// emailString is a user's address and whether it is verified.
func emailString(u user) string {
	switch {
	case u.Email == "":
		return ""
	case u.EmailVerified != nil && *u.EmailVerified:
		return u.Email + " (verified)"
	}
	return u.Email + " (not verified)"
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// userResult is what the user commands without an answer body print.
type userResult struct {
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
	Status string `json:"status"`
}

func userAction(action string) func(context.Context, *inv, *flag.FlagSet, []string) error {
	return func(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(args, "ID"); err != nil {
			return err
		}
		tenant, err := in.tenant(flagString(fs, "tenant"))
		if err != nil {
			return err
		}
		id := args[0]
		method, path, status := http.MethodPost, pathf("/t/%s/users/%s/"+action, tenant, id), action+"d"
		var body any
		switch action {
		case "delete":
			method, path = http.MethodDelete, pathf("/t/%s/users/%s", tenant, id)
		case "disable":
			if r := flagString(fs, "reason"); r != "" {
				body = map[string]string{"reason": r}
			}
		case "enable":
			status = "active"
		}
		if err := in.command(ctx, tenant, tenant, method, path, body, nil); err != nil {
			return err
		}
		if in.opts.json {
			return printJSON(in.env.Out, userResult{Tenant: tenant, ID: id, Status: status})
		}
		fmt.Fprintf(in.env.Out, "user %s of tenant %s %sd\n", id, tenant, action)
		return nil
	}
}

func usersSetPassword(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	id := args[0]
	pw, err := in.password("New password: ", flagBool(fs, "password-stdin"), true, "--password-stdin")
	if err != nil {
		return err
	}
	if err := in.command(ctx, tenant, tenant, http.MethodPut, pathf("/t/%s/users/%s/password", tenant, id),
		map[string]string{"password": pw}, nil); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, userResult{Tenant: tenant, ID: id, Status: "password-changed"})
	}
	fmt.Fprintf(in.env.Out, "password of user %s of tenant %s changed; its sessions are revoked\n", id, tenant)
	return nil
}
