package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/authctl/internal/credentials"
)

var sessionCommands = []*command{
	{
		name: "login", synopsis: "--tenant T --username U [--password-stdin]",
		summary: "log in to a tenant (password grant) and cache the tokens",
		flags: func(fs *flag.FlagSet) {
			fs.String("tenant", "", "the `tenant` to log in to")
			fs.String("username", "", "the `username`")
			fs.Bool("password-stdin", false, "read the password from the first line of standard input")
		},
		run: login,
	},
	{
		name: "logout", synopsis: "[--tenant T]",
		summary: "revoke and forget the cached login of a tenant",
		flags: func(fs *flag.FlagSet) {
			fs.String("tenant", "", "the `tenant` (default: the last login)")
		},
		run: logout,
	},
	{
		name: "status", synopsis: "",
		summary: "check that the query, command and projector services are ready (GET /readyz)",
		run:     status,
	},
}

// flagString and flagBool read a command's own flags.
func flagString(fs *flag.FlagSet, name string) string { return fs.Lookup(name).Value.String() }

func flagBool(fs *flag.FlagSet, name string) bool {
	return fs.Lookup(name).Value.(flag.Getter).Get().(bool)
}

// loginInfo is what login and logout print; never a token.
type loginInfo struct {
	Tenant    string    `json:"tenant"`
	Username  string    `json:"username,omitempty"`
	QueryURL  string    `json:"query_url"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	LoggedOut bool      `json:"logged_out,omitempty"`
}

func login(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	tenant, username := flagString(fs, "tenant"), flagString(fs, "username")
	if tenant == "" || username == "" {
		return usageErrorf("--tenant and --username are required")
	}
	pw, err := in.password("Password for "+username+" in "+tenant+": ", flagBool(fs, "password-stdin"), false, "--password-stdin")
	if err != nil {
		return err
	}
	// A login right after the user was created through authctl waits
	// until the read model has it.
	h, err := in.consistency(tenant)
	if err != nil {
		return err
	}
	var tr tokenResponse
	_, err = in.do(ctx, call{
		service: "query", base: in.opts.queryURL, method: http.MethodPost, path: pathf("/t/%s/oauth/token", tenant),
		form: url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}}, out: &tr, header: h,
	})
	if err != nil {
		return err
	}
	if tr.AccessToken == "" {
		return errors.New("the query service answered the login without an access token")
	}
	now := in.env.Now()
	l := credentials.Login{
		QueryURL: in.opts.queryURL, Tenant: tenant, Username: username,
		AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken,
		ExpiresAt: now.Add(time.Duration(tr.ExpiresIn) * time.Second), LoggedInAt: now,
	}
	if err := in.creds.Put(l); err != nil {
		return err
	}
	info := loginInfo{Tenant: tenant, Username: username, QueryURL: in.opts.queryURL, ExpiresAt: l.ExpiresAt.UTC()}
	if in.opts.json {
		return printJSON(in.env.Out, info)
	}
	fmt.Fprintf(in.env.Out, "logged in to tenant %s at %s as %s (access token valid for %s, renewed automatically)\n",
		tenant, in.opts.queryURL, username, time.Duration(tr.ExpiresIn)*time.Second)
	return nil
}

func logout(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	l, ok, err := in.creds.Get(in.opts.queryURL, tenant)
	if err != nil {
		return err
	}
	if !ok {
		return in.errNotLoggedIn(tenant)
	}
	// Revoke the session first, so a copy of the file is worth nothing; a
	// failure does not keep the login cached.
	var revokeErr error
	if l.RefreshToken != "" {
		_, revokeErr = in.do(ctx, call{
			service: "query", base: in.opts.queryURL, method: http.MethodPost, path: pathf("/t/%s/oauth/revoke", tenant),
			form: url.Values{"token": {l.RefreshToken}, "token_type_hint": {"refresh_token"}},
		})
	}
	if _, err := in.creds.Delete(in.opts.queryURL, tenant); err != nil {
		return err
	}
	if revokeErr != nil {
		fmt.Fprintf(in.env.Err, "authctl: warning: the session was not revoked: %s\n", config.Line(revokeErr))
	}
	if in.opts.json {
		return printJSON(in.env.Out, loginInfo{Tenant: tenant, QueryURL: in.opts.queryURL, LoggedOut: true})
	}
	fmt.Fprintf(in.env.Out, "logged out of tenant %s at %s\n", tenant, in.opts.queryURL)
	return nil
}

// serviceState is one line of status.
type serviceState struct {
	Service string `json:"service"`
	URL     string `json:"url"`
	Ready   bool   `json:"ready"`
	State   string `json:"state"`
}

// status prints one line per service and fails when any is not ready.
func status(ctx context.Context, in *inv, _ *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	var (
		states []serviceState
		failed []string
	)
	for _, s := range []struct{ name, url string }{
		{"query", in.opts.queryURL},
		{"command", in.opts.commandURL},
		{"projector", in.opts.projectorURL},
	} {
		st := serviceState{Service: s.name, URL: s.url, Ready: true, State: "ready"}
		if err := ready(ctx, in.env.HTTP, s.url); err != nil {
			st.Ready, st.State = false, err.Error()
			failed = append(failed, s.name)
		}
		states = append(states, st)
	}
	if in.opts.json {
		if err := printJSON(in.env.Out, states); err != nil {
			return err
		}
	} else {
		t := newTable(in.env.Out, "SERVICE", "URL", "STATE")
		for _, s := range states {
			t.row(s.Service, s.URL, s.State)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("not ready: %s", strings.Join(failed, ", "))
	}
	return nil
}

// ready asks base/readyz; the error describes why it is not ready.
func ready(ctx context.Context, c *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("bad URL: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("unreachable: %s", config.Cause(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var p struct {
		Dependencies []string `json:"dependencies"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
	if len(p.Dependencies) > 0 {
		return fmt.Errorf("not ready (%s)", strings.Join(p.Dependencies, ", "))
	}
	return fmt.Errorf("not ready (HTTP %d)", resp.StatusCode)
}
