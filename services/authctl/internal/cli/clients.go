package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// clientConfigFlags registers the flags that make a client's
// configuration; --config gives the whole body instead.
func clientConfigFlags(fs *flag.FlagSet) {
	tenantFlag(fs)
	fs.String("type", "", "`public` (a browser or mobile app: no secret, PKCE) or confidential (a server: a secret)")
	fs.Var(&stringList{}, "redirect-uri", "a redirect `URI`, matched exactly (repeatable)")
	fs.Var(&stringList{}, "post-logout-redirect-uri", "a post-logout redirect `URI` (repeatable)")
	fs.Var(&stringList{}, "grant-type", "a `grant`: authorization_code, refresh_token, client_credentials or password (repeatable; default authorization_code, with refresh_token)")
	fs.Var(&stringList{}, "scope", "a `scope`: openid, profile, email or offline_access (repeatable; default all four)")
	fs.String("id-token-alg", "", "the `algorithm` of the client's ID tokens: RS256 (default), EdDSA or ES256")
	fs.String("config", "", "the whole configuration as a JSON `document` (name, type, redirect_uris...), instead of NAME and the flags above")
}

var clientCommands = []*command{
	{
		name:     "clients create",
		synopsis: "[--tenant T] NAME --type public|confidential [--redirect-uri U]... [--post-logout-redirect-uri U]... [--grant-type G]... [--scope S]... [--id-token-alg A] | --config JSON",
		summary:  "register an OpenID Connect client; a confidential client's secret is shown once",
		flags:    clientConfigFlags,
		run:      clientsWrite(true),
	},
	{
		name:     "clients update",
		synopsis: "[--tenant T] CLIENT_ID NAME [--type T] [--redirect-uri U]... [...] | CLIENT_ID --config JSON",
		summary:  "replace a client's whole configuration (what is not given takes its default)",
		flags:    clientConfigFlags,
		run:      clientsWrite(false),
	},
	{
		name: "clients list", synopsis: "[--tenant T]",
		summary: "list the OpenID Connect clients of a tenant (every page)",
		flags:   tenantFlag,
		run:     clientsList,
	},
	{
		name: "clients show", synopsis: "[--tenant T] CLIENT_ID",
		summary: "show one client: its configuration, roles and standing (never a secret)",
		flags:   tenantFlag,
		run:     clientsShow,
	},
	{
		name: "clients delete", synopsis: "[--tenant T] CLIENT_ID",
		summary: "delete a client for good: its secrets stop working",
		flags:   tenantFlag,
		run:     clientsDelete,
	},
	{
		name: "clients rotate-secret", synopsis: "[--tenant T] CLIENT_ID [--grace D]",
		summary: "give a confidential client a new secret, shown once; the previous one works for the grace period",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.Duration("grace", 0, "how long the previous secret keeps working (`duration`, whole seconds, at most 720h; default 24h; 0s stops it at once)")
		},
		run: clientsRotateSecret,
	},
	{
		name: "clients assign-role", synopsis: "[--tenant T] CLIENT_ID ROLE",
		summary: "give a confidential client (a service account) a role",
		flags:   tenantFlag,
		run:     clientsRole(true),
	},
	{
		name: "clients unassign-role", synopsis: "[--tenant T] CLIENT_ID ROLE",
		summary: "take a role from a client",
		flags:   tenantFlag,
		run:     clientsRole(false),
	},
}

// clientAnswer is a client as the command service answers it: its id, a
// new secret, and the members of its configuration.
type clientAnswer struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	events.ClientConfig
}

// secretShownOnce is what authctl says, on standard error, when it prints
// a client secret.
//
//nolint:gosec // G101: a message about a secret, not one
const secretShownOnce = "authctl: the client secret is shown this once: store it now (it is kept only as a hash)\n"

// clientsWrite runs clients create (create true) and clients update.
func clientsWrite(create bool) func(context.Context, *inv, *flag.FlagSet, []string) error {
	return func(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		var names []string
		if !create {
			names = append(names, "CLIENT_ID")
		}
		if !given["config"] {
			names = append(names, "NAME")
		}
		if err := wantArgs(args, names...); err != nil {
			return err
		}
		tenant, err := in.tenant(flagString(fs, "tenant"))
		if err != nil {
			return err
		}
		name := ""
		if !given["config"] {
			name = args[len(args)-1]
		}
		body, err := clientBody(fs, given, name)
		if err != nil {
			return err
		}
		method, path := http.MethodPost, pathf("/t/%s/clients", tenant)
		if !create {
			method, path = http.MethodPut, pathf("/t/%s/clients/%s", tenant, args[0])
		}
		var out clientAnswer
		if err := in.command(ctx, tenant, tenant, method, path, body, &out); err != nil {
			return err
		}
		if out.ClientSecret != "" {
			fmt.Fprint(in.env.Err, secretShownOnce)
		}
		if in.opts.json {
			return printJSON(in.env.Out, out)
		}
		verb := "registered in"
		if !create {
			verb = "updated in"
		}
		fmt.Fprintf(in.env.Out, "client %s %s tenant %s\n", out.Name, verb, tenant)
		kv := []string{"client_id", out.ClientID}
		if out.ClientSecret != "" {
			kv = append(kv, "client_secret", out.ClientSecret)
		}
		return fields(in.env.Out, append(kv,
			"type", out.Type,
			"redirect_uris", strings.Join(out.RedirectURIs, " "),
			"post_logout_redirect_uris", strings.Join(out.PostLogoutRedirectURIs, " "),
			"grant_types", strings.Join(out.GrantTypes, " "),
			"scopes", strings.Join(out.Scopes, " "),
			"id_token_signed_response_alg", out.IDTokenSignedResponseAlg)...)
	}
}

// clientBody builds the body of clients create and update: --config as it
// is, or else an object of NAME and the flags given. The service checks
// the values.
func clientBody(fs *flag.FlagSet, given map[string]bool, name string) (json.RawMessage, error) {
	if given["config"] {
		for f := range given {
			if f != "config" && f != "tenant" && !commonFlag(f) {
				return nil, usageErrorf("--config goes alone, without --%s", f)
			}
		}
		c := flagString(fs, "config")
		if !json.Valid([]byte(c)) {
			return nil, usageErrorf("--config is not valid JSON")
		}
		return json.RawMessage(c), nil
	}
	body := map[string]any{"name": name}
	for _, f := range []struct{ flag, member string }{{"type", "type"}, {"id-token-alg", "id_token_signed_response_alg"}} {
		if given[f.flag] {
			body[f.member] = flagString(fs, f.flag)
		}
	}
	for _, f := range []struct{ flag, member string }{
		{"redirect-uri", "redirect_uris"}, {"post-logout-redirect-uri", "post_logout_redirect_uris"},
		{"grant-type", "grant_types"}, {"scope", "scopes"},
	} {
		if given[f.flag] {
			body[f.member] = []string(*fs.Lookup(f.flag).Value.(*stringList))
		}
	}
	return json.Marshal(body)
}

// registeredClient is a client as the query service shows it: no secret,
// whether it has one and until when the previous one works.
type registeredClient struct {
	ClientID string `json:"client_id"`
	events.ClientConfig
	HasSecret               bool       `json:"has_secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	Roles                   []string   `json:"roles"`
	Status                  string     `json:"status"`
	Version                 int64      `json:"version"`
	CreatedAt               time.Time  `json:"created_at,omitzero"`
	UpdatedAt               time.Time  `json:"updated_at,omitzero"`
}

func clientsList(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	all, err := readPages[registeredClient](ctx, in, tenant, pathf("/t/%s/clients", tenant))
	if err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, all)
	}
	t := newTable(in.env.Out, "CLIENT_ID", "NAME", "TYPE", "GRANT_TYPES", "ROLES")
	for _, c := range all {
		t.row(c.ClientID, c.Name, c.Type, list(c.GrantTypes), list(c.Roles))
	}
	return t.flush()
}

func clientsShow(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "CLIENT_ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	var c registeredClient
	if err := in.read(ctx, tenant, pathf("/t/%s/clients/%s", tenant, args[0]), nil, &c); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, c)
	}
	secret := "none"
	if c.HasSecret {
		secret = "yes"
	}
	previous := ""
	if c.PreviousSecretExpiresAt != nil {
		previous = "works until " + timeString(*c.PreviousSecretExpiresAt)
	}
	return fields(in.env.Out,
		"client_id", c.ClientID, "name", c.Name, "tenant", tenant, "type", c.Type, "status", c.Status,
		"redirect_uris", strings.Join(c.RedirectURIs, " "),
		"post_logout_redirect_uris", strings.Join(c.PostLogoutRedirectURIs, " "),
		"grant_types", strings.Join(c.GrantTypes, " "),
		"scopes", strings.Join(c.Scopes, " "),
		"id_token_signed_response_alg", c.IDTokenSignedResponseAlg,
		"secret", secret, "previous_secret", previous, "roles", list(c.Roles),
		"version", strconv.FormatInt(c.Version, 10), "created", timeString(c.CreatedAt), "updated", timeString(c.UpdatedAt))
}

// clientResult is what clients delete, assign-role and unassign-role
// print.
type clientResult struct {
	Tenant   string `json:"tenant"`
	ClientID string `json:"client_id"`
	Role     string `json:"role,omitempty"`
	Deleted  bool   `json:"deleted,omitempty"`
	Assigned *bool  `json:"assigned,omitempty"`
}

func clientsDelete(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "CLIENT_ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	id := args[0]
	if err := in.command(ctx, tenant, tenant, http.MethodDelete, pathf("/t/%s/clients/%s", tenant, id), nil, nil); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, clientResult{Tenant: tenant, ClientID: id, Deleted: true})
	}
	fmt.Fprintf(in.env.Out, "client %s of tenant %s deleted\n", id, tenant)
	return nil
}

// rotatedSecret is the answer of POST /t/{tenant}/clients/{id}/secret.
type rotatedSecret struct {
	ClientID                string    `json:"client_id"`
	ClientSecret            string    `json:"client_secret,omitempty"`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

func clientsRotateSecret(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "CLIENT_ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	body := map[string]any{}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "grace" })
	if given {
		grace := fs.Lookup("grace").Value.(flag.Getter).Get().(time.Duration)
		if grace < 0 || grace%time.Second != 0 {
			return usageErrorf("--grace must be a whole number of seconds, 0s or more (24h, 90m, 0s)")
		}
		body["grace_seconds"] = int64(grace / time.Second)
	}
	id := args[0]
	var out rotatedSecret
	if err := in.command(ctx, tenant, tenant, http.MethodPost, pathf("/t/%s/clients/%s/secret", tenant, id), body, &out); err != nil {
		return err
	}
	if out.ClientSecret != "" {
		fmt.Fprint(in.env.Err, secretShownOnce)
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	fmt.Fprintf(in.env.Out, "client %s of tenant %s has a new secret; the previous one works until %s\n",
		id, tenant, out.PreviousSecretExpiresAt.UTC().Format(time.RFC3339))
	return fields(in.env.Out, "client_id", out.ClientID, "client_secret", out.ClientSecret)
}

func clientsRole(assign bool) func(context.Context, *inv, *flag.FlagSet, []string) error {
	return func(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(args, "CLIENT_ID", "ROLE"); err != nil {
			return err
		}
		tenant, err := in.tenant(flagString(fs, "tenant"))
		if err != nil {
			return err
		}
		id, role := args[0], args[1]
		method, verb := http.MethodPut, "assigned to"
		if !assign {
			method, verb = http.MethodDelete, "unassigned from"
		}
		if err := in.command(ctx, tenant, tenant, method, pathf("/t/%s/clients/%s/roles/%s", tenant, id, role), nil, nil); err != nil {
			return err
		}
		if in.opts.json {
			return printJSON(in.env.Out, clientResult{Tenant: tenant, ClientID: id, Role: role, Assigned: &assign})
		}
		fmt.Fprintf(in.env.Out, "role %s %s client %s of tenant %s\n", role, verb, id, tenant)
		return nil
	}
}
