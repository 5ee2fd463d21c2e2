package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

var settingsCommands = []*command{
	{
		name: "tenants settings set",
		synopsis: "TENANT [--display-name N] [--password-grant true|false] [--self-signup true|false] [--account-attempts N] [--address-attempts N] " +
			"[--unset MEMBER]... | TENANT --patch JSON",
		summary: "change a tenant's settings (its users with settings:write)",
		flags: func(fs *flag.FlagSet) {
			fs.String("display-name", "", "the tenant's `name` on the hosted login page")
			fs.String("password-grant", "", "whether the token endpoint accepts grant_type=password (`bool`: true or false)")
			fs.String("self-signup", "", "whether people may create their own account on the hosted sign-up page (`bool`: true or false)")
			fs.Int("account-attempts", 0, "login attempts allowed on one account per minute (`n`, 1 to 100000)")
			fs.Int("address-attempts", 0, "login attempts allowed from one client address per minute (`n`, 1 to 100000)")
			fs.Var(&stringList{}, "unset", "a settings `member` to remove, back to the platform's default: display_name, password_grant, self_signup, rate_limits, rate_limits.account_attempts_per_minute... (repeatable)")
			fs.String("patch", "", "a JSON merge patch (RFC 7396) of the settings `document`, instead of the flags above")
		},
		run: tenantsSettingsSet,
	},
}

// settingsFlags are the flags of tenants settings set that build a patch,
// with the member each sets.
var settingsFlags = []struct{ flag, member string }{
	{"display-name", "display_name"},
	{"password-grant", "password_grant"},
	{"self-signup", "self_signup"},
	{"account-attempts", "rate_limits.account_attempts_per_minute"},
	{"address-attempts", "rate_limits.address_attempts_per_minute"},
}

// tenantSettings is the settings document the command service answers.
type tenantSettings struct {
	DisplayName   string `json:"display_name,omitempty"`
	PasswordGrant *bool  `json:"password_grant,omitempty"`
	SelfSignup    *bool  `json:"self_signup,omitempty"`
	RateLimits    *struct {
		AccountAttemptsPerMinute int `json:"account_attempts_per_minute,omitempty"`
		AddressAttemptsPerMinute int `json:"address_attempts_per_minute,omitempty"`
	} `json:"rate_limits,omitempty"`
}

func tenantsSettingsSet(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "TENANT"); err != nil {
		return err
	}
	tenant := args[0]
	patch, err := settingsPatch(fs)
	if err != nil {
		return err
	}
	// The settings are the tenant's own: its login changes them.
	var out tenantSettings
	if err := in.command(ctx, tenant, tenant, http.MethodPatch, pathf("/t/%s/settings", tenant), patch, &out); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	fmt.Fprintf(in.env.Out, "settings of tenant %s:\n", tenant)
	display, grant, signup := "(the tenant's name)", "true (default)", "false (default)"
	account, address := "(platform default)", "(platform default)"
	if out.DisplayName != "" {
		display = out.DisplayName
	}
	if out.PasswordGrant != nil {
		grant = strconv.FormatBool(*out.PasswordGrant)
	}
	if out.SelfSignup != nil {
		signup = strconv.FormatBool(*out.SelfSignup)
	}
	if l := out.RateLimits; l != nil {
		if l.AccountAttemptsPerMinute > 0 {
			account = strconv.Itoa(l.AccountAttemptsPerMinute)
		}
		if l.AddressAttemptsPerMinute > 0 {
			address = strconv.Itoa(l.AddressAttemptsPerMinute)
		}
	}
	return fields(in.env.Out,
		"display_name", display,
		"password_grant", grant,
		"self_signup", signup,
		"rate_limits.account_attempts_per_minute", account,
		"rate_limits.address_attempts_per_minute", address)
}

// settingsPatch builds the merge patch of tenants settings set: --patch as
// it is, or else an object of the flags given, --unset members as null.
// The service validates the values.
func settingsPatch(fs *flag.FlagSet) (json.RawMessage, error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	unset := []string(*fs.Lookup("unset").Value.(*stringList))
	if given["patch"] {
		if !onlyCommon(given) {
			return nil, usageErrorf("--patch goes alone, without the other settings flags")
		}
		p := flagString(fs, "patch")
		if !json.Valid([]byte(p)) {
			return nil, usageErrorf("--patch is not valid JSON")
		}
		return json.RawMessage(p), nil
	}
	patch := map[string]any{}
	set := func(member string, v any) error {
		parent, name, nested := strings.Cut(member, ".")
		if !nested {
			if _, dup := patch[member]; dup {
				return usageErrorf("%s is given twice", member)
			}
			patch[member] = v
			return nil
		}
		m, ok := patch[parent].(map[string]any)
		if !ok {
			if _, dup := patch[parent]; dup {
				return usageErrorf("%s is given twice", parent)
			}
			m = map[string]any{}
			patch[parent] = m
		}
		if _, dup := m[name]; dup {
			return usageErrorf("%s is given twice", member)
		}
		m[name] = v
		return nil
	}
	for _, f := range settingsFlags {
		if !given[f.flag] {
			continue
		}
		var v any = flagString(fs, f.flag)
		switch f.flag {
		case "password-grant", "self-signup":
			b, err := strconv.ParseBool(flagString(fs, f.flag))
			if err != nil {
				return nil, usageErrorf("--%s takes true or false", f.flag)
			}
			v = b
		case "account-attempts", "address-attempts":
			v = fs.Lookup(f.flag).Value.(flag.Getter).Get().(int)
		}
		if err := set(f.member, v); err != nil {
			return nil, err
		}
	}
	for _, member := range unset {
		if err := set(member, nil); err != nil {
			return nil, err
		}
	}
	if len(patch) == 0 {
		return nil, usageErrorf("nothing to change: give a settings flag, --unset or --patch")
	}
	return json.Marshal(patch)
}

// onlyCommon reports whether the flags given besides --patch are common
// ones (--json, --command-url...), not settings.
func onlyCommon(given map[string]bool) bool {
	for name := range given {
		if name != "patch" && !commonFlag(name) {
			return false
		}
	}
	return true
}

// commonFlag reports whether name is one of the flags every command takes.
func commonFlag(name string) bool {
	switch name {
	case "json", "query-url", "command-url", "projector-url", "idempotency-key":
		return true
	}
	return false
}
