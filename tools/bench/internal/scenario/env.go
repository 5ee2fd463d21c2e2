// Package scenario holds the benchmark's scenarios: each drives the
// in-process platform over HTTP (or, where the brief is the broker itself,
// over NATS), measures a bound in the same run, and adds rows to the report.
package scenario

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// Options are the run's settings, from the command line.
type Options struct {
	// ServerURL is the PostgreSQL server the platforms create their
	// databases on.
	ServerURL string
	// Duration is the measured window of each closed-loop run; Warmup
	// precedes it unmeasured.
	Duration time.Duration
	Warmup   time.Duration
	// Clients, when not empty, replaces every scenario's client counts.
	Clients []int
	// SeedTenants and SeedUsers shape the many-tenant data set of the
	// permission checks: tenants, and users of each.
	SeedTenants int
	SeedUsers   int
	// MemoryTenants and MemoryUsers shape the memory scenario's data set:
	// MemoryUsers users in all, spread evenly over MemoryTenants tenants.
	MemoryTenants int
	MemoryUsers   int
	// ReplayEvents is how many events AUTH_EVENTS holds, at least, when
	// the replay rebuilds: the bulk seeder adds what the earlier scenarios
	// did not write.
	ReplayEvents int
	// ImportUsers is how many users the bulk import scenario imports.
	ImportUsers int
	// FeedEvents is how many events the tenant holds whose feed the
	// webhooks scenario reads (bulk seeded; 0 reads the scenario's own).
	FeedEvents int
	// ProfileDir, when set, receives one CPU profile per measured part.
	ProfileDir string
	// Progress receives a line per step; nil discards them.
	Progress io.Writer
}

// Env is what scenarios share in one run: the platforms by bcrypt cost,
// the rows measured so far, and measurements that later scenarios reuse.
type Env struct {
	opts      Options
	platforms map[Setup]*platform.Platform
	rows      []Row

	rawRates map[Setup]map[string]*loadgen.Result // raw JetStream publishes by platform, stream and clients
	big      *dataset                             // the seeded multi-tenant data set
}

// NewEnv returns an Env with no platform started.
func NewEnv(o Options) *Env {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return &Env{opts: o, platforms: map[Setup]*platform.Platform{}, rawRates: map[Setup]map[string]*loadgen.Result{}}
}

// Rows returns the rows measured so far.
func (e *Env) Rows() []Row { return e.rows }

func (e *Env) add(r Row) {
	if msg := failure.Swap(nil); msg != nil && r.Errors > 0 {
		r.Notes += "; first error: " + strings.TrimSpace(*msg)
	}
	e.rows = append(e.rows, r)
	e.logf("  %s", r.String())
}

func (e *Env) logf(format string, args ...any) {
	fmt.Fprintf(e.opts.Progress, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

// clients returns the scenario's client counts, or the command line's.
func (e *Env) clients(def ...int) []int {
	if len(e.opts.Clients) > 0 {
		return e.opts.Clients
	}
	return def
}

// Setup says which platform a scenario runs on: its bcrypt cost and the
// embedded JetStream's sync interval ("" for the platform's default,
// always).
type Setup struct {
	Cost int
	Sync string
	// Tag tells apart platforms of the same settings that hold different
	// data.
	Tag string
	// SMTPURL is the platform's AUTH_SMTP_URL, if any.
	SMTPURL string
}

func (s Setup) String() string {
	sync := "always"
	if s.Sync != "" {
		sync = s.Sync
	}
	return fmt.Sprintf("bcrypt cost %d, sync %s", s.Cost, sync)
}

// The platforms of the scenarios besides login: shared, synced on every
// write as the platform is by default, and grouped, synced every two
// minutes (nats-server's own default), for the commands' comparison, and
// large, synced like grouped, for the memory scenario's data set alone.
var (
	shared  = Setup{Cost: seedCost}
	grouped = Setup{Cost: seedCost, Sync: "2m"}
	large   = Setup{Cost: seedCost, Sync: "2m", Tag: "memory"}
)

// Platform returns the running platform of setup s, starting it on first
// use.
func (e *Env) Platform(ctx context.Context, s Setup) (*platform.Platform, error) {
	if p, ok := e.platforms[s]; ok {
		return p, nil
	}
	e.logf("starting the platform (%s)", s)
	name := fmt.Sprintf("c%d", s.Cost)
	if s.Sync != "" {
		name += "s" + s.Sync
	}
	if s.Tag != "" {
		name += s.Tag
	}
	p, err := platform.Start(ctx, platform.Options{ServerURL: e.opts.ServerURL, BcryptCost: s.Cost, Name: name, SyncInterval: s.Sync, SMTPURL: s.SMTPURL})
	if err != nil {
		return nil, err
	}
	e.platforms[s] = p
	return p, nil
}

// Release stops every platform whose setup is not in keep.
func (e *Env) Release(keep ...Setup) error {
	var errs []error
	for s, p := range e.platforms {
		if slices.Contains(keep, s) {
			continue
		}
		e.logf("stopping the platform (%s)", s)
		if err := p.Stop(); err != nil {
			errs = append(errs, err)
		}
		delete(e.platforms, s)
		delete(e.rawRates, s)
		if s == shared {
			e.big = nil
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("stop platforms: %v", errs)
	}
	return nil
}

// profile starts a CPU profile named name when profiles are asked for,
// and returns the function that stops it.
func (e *Env) profile(name string) func() {
	if e.opts.ProfileDir == "" {
		return func() {}
	}
	path := filepath.Join(e.opts.ProfileDir, strings.NewReplacer(" ", "-", "/", "-").Replace(name)+".pprof")
	f, err := os.Create(path)
	if err != nil {
		e.logf("cpu profile %s: %v", path, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		e.logf("cpu profile %s: %v", path, err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			e.logf("cpu profile %s: %v", path, err)
			return
		}
		e.logf("  cpu profile: %s", path)
	}
}

// Scenario is one named scenario: the platforms it needs, and the
// function that measures it.
type Scenario struct {
	Name  string
	About string
	Needs []Setup
	Run   func(ctx context.Context, e *Env) error
}

// All returns the scenarios in the order a full run takes them: the login
// scenarios on their own platforms first, then everything that shares the
// cheap-hash platform, the seeded data set of the checks last but the
// replay of everything written, topped up to ReplayEvents; the memory scenario runs alone at the end,
// on a platform of its own, so that nothing else is resident, and the
// registrations after it on two more, which start on an empty log.
func All() []Scenario {
	return []Scenario{
		{"login", "password login at bcrypt cost 10 and 12", []Setup{{Cost: 10}, {Cost: 12}}, runLogin},
		{"oidc-login", "hosted-page logins (authorize, sign-in page, form) at bcrypt cost 10", []Setup{{Cost: 10}}, runOIDCLogin},
		{"mfa", "hosted sign-ins with and without a TOTP code at bcrypt cost 12, and parallel replays of one code", []Setup{{Cost: mfaCost}, shared}, runMFA},
		{"refresh", "refresh-token grant, rotating every request", []Setup{shared}, runRefresh},
		{"oidc", "OpenID Connect: client_credentials, authorize with an SSO session, code exchange, introspection", []Setup{shared}, runOIDC},
		{"commands", "role assignment commands vs raw JetStream publishes, sync always and every 2m", []Setup{shared, grouped}, runCommands},
		{"lag", "projection lag at steady rates, the highest rate with bounded lag, revoke-to-deny", []Setup{shared}, runLag},
		{"checks", "permission checks, one tenant and many", []Setup{shared}, runChecks},
		{"import", "bulk import of users with bcrypt hashes through the command API", []Setup{shared}, runImport},
		{"profile", "profile updates (merge patch) vs raw JetStream publishes, sync always", []Setup{shared}, runProfile},
		{"webhooks", "webhook deliveries at 16 endpoints, append-to-delivery latency at 500 events/s, one feed reader", []Setup{hooks}, runWebhooks},
		{"cluster", "register, read, assign and check across 2 command, 2 projector and 3 query processes on a 3-node NATS cluster, next to the all-in-one", []Setup{shared}, runCluster},
		{"replay", "full rebuild of the accounts projection, the event log topped up to -replay-events", []Setup{shared}, runReplay},
		{"memory", "resident size with many tenants and users", []Setup{large}, runMemory},
		{"memory-processes", "resident size of each service and of the NATS server as separate processes, with many tenants and users", nil, runMemoryProcesses},
		{"register", "single registrations through the command API, 16 clients, at bcrypt cost 4 and 10, on platforms of their own", []Setup{register4, register10}, runRegister},
		{"mail", "mails a second from the dispatcher to a local SMTP server, draining a backlog of verification links", []Setup{}, runMail},
		{"erase", "erasure by crypto-shredding: user.erased and the data key destroyed", []Setup{shared}, runErase},
	}
}

// seedCost is the bcrypt cost of the platforms every scenario but login
// uses: registering thousands of users at a production cost would spend
// the run hashing.
const seedCost = 4
