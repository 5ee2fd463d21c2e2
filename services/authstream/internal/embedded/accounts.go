package embedded

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// AuthConf is deployments/nats/auth.conf, the accounts and users of the
// production cluster, byte for byte (a test keeps the copy identical; `go
// generate` refreshes it). The embedded server loads it as it is, so that
// the all-in-one process and production grant the same permissions.
//
//go:generate cp ../../../../deployments/nats/auth.conf auth.conf
//go:embed auth.conf
var AuthConf string

// StreamAccount is the account of AuthConf that holds the streams, the key
// bucket and the platform's services.
const StreamAccount = "AUTH"

// passwordVar matches the references of AuthConf to its users' passwords,
// NATS_<USER>_PASSWORD, which the production servers read from their
// environment.
var passwordVar = regexp.MustCompile(`\$(NATS_([A-Z0-9]+)_PASSWORD)\b`)

// variableRef matches a variable reference of the configuration language
// outside quoted strings and comments ($JS.API... in quotes is a subject).
var variableRef = regexp.MustCompile(`\$([A-Za-z_][A-Za-z0-9_]*)`)

// unquoted returns conf without its comments and quoted strings.
func unquoted(conf string) string {
	return regexp.MustCompile(`(?m)"[^"\n]*"|'[^'\n]*'|(#|//).*$`).ReplaceAllString(conf, "")
}

// Users returns the users AuthConf defines (command, query, projector,
// subscriber, backup), in the order it names them.
func Users() []string {
	var users []string
	for _, m := range passwordVar.FindAllStringSubmatch(unquoted(AuthConf), -1) {
		if u := strings.ToLower(m[2]); !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	return users
}

// authOptions returns the server options of AuthConf with passwords (user
// → password) in place of the variables. The passwords are defined as
// variables at the top of the configuration text, which the parser looks
// up before the environment: the process environment is neither read nor
// changed, so a NATS_*_PASSWORD set by chance cannot replace a generated
// one, and concurrent starts (tests) do not race on it. Every variable
// AuthConf refers to must be given, and every user must come out with its
// password.
func authOptions(passwords map[string]string) (*server.Options, error) {
	var (
		defs    strings.Builder
		defined = map[string]bool{}
	)
	for _, m := range variableRef.FindAllStringSubmatch(unquoted(AuthConf), -1) {
		if defined[m[1]] {
			continue
		}
		defined[m[1]] = true
		sub := passwordVar.FindStringSubmatch("$" + m[1])
		if sub == nil {
			return nil, fmt.Errorf("auth.conf refers to $%s, which the embedded server does not define", m[1])
		}
		pw, ok := passwords[strings.ToLower(sub[2])]
		if !ok || pw == "" {
			return nil, fmt.Errorf("no password for NATS user %s", strings.ToLower(sub[2]))
		}
		// A quoted string, whatever the password looks like (the parser
		// would read an unquoted 1234 as a number).
		fmt.Fprintf(&defs, "%s: %s\n", m[1], strconv.Quote(pw))
	}
	opts := &server.Options{}
	if err := opts.ProcessConfigString(defs.String() + AuthConf); err != nil {
		return nil, fmt.Errorf("auth.conf: %w", err)
	}
	for user, pw := range passwords {
		i := slices.IndexFunc(opts.Users, func(u *server.User) bool { return u.Username == user })
		if i < 0 || opts.Users[i].Password != pw {
			return nil, fmt.Errorf("auth.conf: user %s did not get its password", user)
		}
	}
	if !slices.ContainsFunc(opts.Accounts, func(a *server.Account) bool { return a.Name == StreamAccount }) {
		return nil, fmt.Errorf("auth.conf: no account %s", StreamAccount)
	}
	return opts, nil
}

// moveGlobalStore moves the JetStream data of the global account, where a
// server without accounts kept it (the all-in-one process before it loaded
// AuthConf), to StreamAccount, so that a data folder from then keeps its
// event log. It does nothing when there is no such data or StreamAccount
// has data already.
func moveGlobalStore(storeDir string) error {
	jsDir := filepath.Join(storeDir, server.JetStreamStoreDir)
	from, to := filepath.Join(jsDir, server.DEFAULT_GLOBAL_ACCOUNT), filepath.Join(jsDir, StreamAccount)
	if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("move the event log to account %s: %w", StreamAccount, err)
	}
	return nil
}
