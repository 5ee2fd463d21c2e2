// Package cli is authctl's commands: parsing the command line (a
// flag.FlagSet per subcommand), talking to the query, command and
// projector services over HTTP, caching logins, and printing aligned
// tables or JSON.
package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/authstream/authstream/services/authctl/internal/credentials"
)

// ErrUsage marks a command line authctl does not understand; the binary
// exits with status 2 for it.
var ErrUsage = errors.New("usage")

// usageErrorf returns an error wrapping ErrUsage.
func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUsage}, args...)...)
}

// Env is what the commands work with.
type Env struct {
	// QueryURL, CommandURL and ProjectorURL are the services' base URLs;
	// the --query-url, --command-url and --projector-url flags override
	// them.
	QueryURL, CommandURL, ProjectorURL string
	// NATSURL is the NATS server list of backup and restore
	// (AUTH_NATS_URL); their --nats flag overrides it.
	NATSURL string
	// Out receives the results, Err the prompts, progress and usage.
	Out, Err io.Writer
	// In is standard input: passwords with --password-stdin, or typed at
	// the terminal when it is one.
	In io.Reader
	// HTTP is the client for the services.
	HTTP *http.Client
	// Credentials is the path of the credentials file.
	Credentials string
	// Now is the clock (token expiry).
	Now func() time.Time
}

// options are the flags every command accepts.
type options struct {
	json           bool
	queryURL       string
	commandURL     string
	projectorURL   string
	idempotencyKey string
}

// addCommon registers the common flags on fs, with the values parsed so
// far as defaults, so that they may come before or after the command.
func (o *options) addCommon(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", o.json, "print JSON instead of tables")
	fs.StringVar(&o.queryURL, "query-url", o.queryURL, "query and login service `URL` (AUTH_QUERY_URL)")
	fs.StringVar(&o.commandURL, "command-url", o.commandURL, "command service `URL` (AUTH_COMMAND_URL)")
	fs.StringVar(&o.projectorURL, "projector-url", o.projectorURL, "projector `URL` (AUTH_PROJECTOR_URL)")
	fs.StringVar(&o.idempotencyKey, "idempotency-key", o.idempotencyKey, "Idempotency-Key of the command (default: a random one)")
}

// inv is one invocation: the environment, the parsed common flags and the
// credentials.
type inv struct {
	env   Env
	opts  options
	creds credentials.Store
}

// command is one leaf of the command tree.
type command struct {
	name     string // "users create"
	synopsis string // the arguments after the name
	summary  string
	run      func(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error
	// flags registers the command's own flags before parsing.
	flags func(fs *flag.FlagSet)
}

// commands is the command tree, in the order help shows it.
var commands []*command

func init() {
	commands = slices.Concat(sessionCommands, tenantCommands, settingsCommands, mailTemplateCommands, userCommands, roleCommands, clientCommands, webhookCommands, keyCommands, projectionCommands, auditCommands, backupCommands)
}

// Run runs the command line args. It returns an error wrapping ErrUsage
// for a command line it does not understand, an *APIError for an error
// answer of a service, and other errors naming what failed.
func Run(ctx context.Context, env Env, args []string) error {
	if env.Out == nil {
		env.Out = io.Discard
	}
	if env.Err == nil {
		env.Err = io.Discard
	}
	if env.In == nil {
		env.In = strings.NewReader("")
	}
	if env.HTTP == nil {
		env.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	in := &inv{env: env, opts: options{
		queryURL: env.QueryURL, commandURL: env.CommandURL, projectorURL: env.ProjectorURL,
	}}

	global := flag.NewFlagSet("authctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	in.opts.addCommon(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(env.Out)
			return nil
		}
		printUsage(env.Err)
		return usageErrorf("%v", err)
	}
	args = global.Args()
	if len(args) == 0 {
		printUsage(env.Err)
		return usageErrorf("no command given")
	}
	if args[0] == "help" {
		if len(args) > 1 {
			if c, _ := find(args[1:]); c != nil {
				printCommandUsage(env.Out, c, nil)
				return nil
			}
			if group := groupOf(args[1]); group != "" {
				printGroupUsage(env.Out, group)
				return nil
			}
		}
		printUsage(env.Out)
		return nil
	}
	c, rest := find(args)
	if c == nil {
		if group := groupOf(args[0]); group != "" {
			printGroupUsage(env.Err, group)
			if len(args) == 1 || strings.HasPrefix(args[1], "-") {
				return usageErrorf("%s needs a subcommand", group)
			}
			return usageErrorf("unknown command %q", group+" "+args[1])
		}
		printUsage(env.Err)
		return usageErrorf("unknown command %q", args[0])
	}

	fs := flag.NewFlagSet("authctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs)
	}
	in.opts.addCommon(fs)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandUsage(env.Out, c, fs)
			return nil
		}
		printCommandUsage(env.Err, c, fs)
		return usageErrorf("%s: %v", c.name, err)
	}
	for _, u := range []struct{ name, val string }{
		{"--query-url", in.opts.queryURL}, {"--command-url", in.opts.commandURL}, {"--projector-url", in.opts.projectorURL},
	} {
		if err := checkBaseURL(u.val); err != nil {
			return usageErrorf("%s: %v", u.name, err)
		}
	}
	in.opts.queryURL = strings.TrimRight(in.opts.queryURL, "/")
	in.opts.commandURL = strings.TrimRight(in.opts.commandURL, "/")
	in.opts.projectorURL = strings.TrimRight(in.opts.projectorURL, "/")
	if in.opts.idempotencyKey == "" {
		in.opts.idempotencyKey = randomKey()
	}
	in.creds = credentials.Store{Path: env.Credentials}
	err = c.run(ctx, in, fs, pos)
	if errors.Is(err, ErrUsage) {
		printCommandUsage(env.Err, c, fs)
	}
	return err
}

// find returns the command named by the first one or two words of args and
// the arguments after its name.
func find(args []string) (*command, []string) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return c, args[len(words):]
		}
	}
	return nil, nil
}

// groupOf returns word when it names a group of commands (tenants, users,
// roles, projections).
func groupOf(word string) string {
	for _, c := range commands {
		if g, _, ok := strings.Cut(c.name, " "); ok && g == word {
			return g
		}
	}
	return ""
}

// parseInterspersed parses flags and positional arguments in any order
// (the flag package alone stops at the first positional one); "--" ends
// the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(args []string, names ...string) error {
	switch {
	case len(args) < len(names):
		return usageErrorf("missing %s", strings.Join(names[len(args):], " and "))
	case len(args) > len(names):
		return usageErrorf("unexpected argument %q", args[len(names)])
	}
	return nil
}

// stringList is a repeatable string flag (--role a --role b).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}

func randomKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "authctl-" + hex.EncodeToString(b)
}

const usageHead = `usage: authctl [flags] <command> [arguments]

Administers authstream through its HTTP APIs. Log in first; later commands
use the cached login of the tenant (--tenant, default: the last login).

commands:
`

const usageTail = `
flags (before or after the command):
  --json                 print JSON instead of tables
  --query-url URL        query and login service (AUTH_QUERY_URL, default http://127.0.0.1:8080)
  --command-url URL      command service (AUTH_COMMAND_URL, default http://127.0.0.1:8081)
  --projector-url URL    projector (AUTH_PROJECTOR_URL, default http://127.0.0.1:8082)
  --idempotency-key KEY  Idempotency-Key of a command (default: a random one per invocation)

Run 'authctl help <command>' for a command's flags. Exit status: 0 done,
1 failed, 2 usage error.
`

// printGroupUsage lists the commands of a group.
func printGroupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "usage: authctl %s <command> [arguments]\n\ncommands:\n", group)
	for _, c := range commands {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(w, "  authctl %s %s\n      %s\n", c.name, c.synopsis, c.summary)
		}
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-22s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-22s %s\n", "help [command]", "show this text, or a command's")
	fmt.Fprint(w, usageTail)
}

// printCommandUsage prints a command's synopsis and its own flags (fs may
// be nil: they are registered on a fresh set).
func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: authctl %s %s\n\n%s\n", c.name, c.synopsis, c.summary)
	if fs == nil {
		fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
		if c.flags != nil {
			c.flags(fs)
		}
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if commonFlag(f.Name) {
			return
		}
		if first {
			fmt.Fprintln(w, "\nflags:")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  %-26s %s\n", strings.TrimSpace("--"+f.Name+" "+name), usage)
	})
	fmt.Fprintln(w, "\nThe common flags (--json, --query-url, ...) are listed by 'authctl help'.")
}
