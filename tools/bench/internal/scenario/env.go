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
	// SeedTenants and SeedUsers shape the large permission-check data set;
	// SeedBudget bounds the time spent seeding it.
	SeedTenants int
	SeedUsers   int
	SeedBudget  time.Duration
	// ProfileDir, when set, receives one CPU profile per measured part.
	ProfileDir string
	// Progress receives a line per step; nil discards them.
	Progress io.Writer
}

// Env is what scenarios share in one run: the platforms by bcrypt cost,
// the rows measured so far, and measurements that later scenarios reuse.
type Env struct {
	opts      Options
	platforms map[int]*platform.Platform
	rows      []Row

	rawRates map[int]*loadgen.Result // raw JetStream publishes by clients
	big      *dataset                // the seeded multi-tenant data set
}

// NewEnv returns an Env with no platform started.
func NewEnv(o Options) *Env {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return &Env{opts: o, platforms: map[int]*platform.Platform{}, rawRates: map[int]*loadgen.Result{}}
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

// Platform returns the running platform that hashes at cost, starting it
// on first use.
func (e *Env) Platform(ctx context.Context, cost int) (*platform.Platform, error) {
	if p, ok := e.platforms[cost]; ok {
		return p, nil
	}
	e.logf("starting the platform (bcrypt cost %d)", cost)
	p, err := platform.Start(ctx, platform.Options{ServerURL: e.opts.ServerURL, BcryptCost: cost, Name: fmt.Sprintf("c%d", cost)})
	if err != nil {
		return nil, err
	}
	e.platforms[cost] = p
	return p, nil
}

// Release stops every platform whose cost is not in keep.
func (e *Env) Release(keep ...int) error {
	var errs []error
	for cost, p := range e.platforms {
		if slices.Contains(keep, cost) {
			continue
		}
		e.logf("stopping the platform (bcrypt cost %d)", cost)
		if err := p.Stop(); err != nil {
			errs = append(errs, err)
		}
		delete(e.platforms, cost)
		if cost == seedCost {
			e.big = nil
			clear(e.rawRates)
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
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		e.logf("  cpu profile: %s", path)
	}
}

// Scenario is one named scenario: the bcrypt costs of the platforms it
// needs, and the function that measures it.
type Scenario struct {
	Name  string
	About string
	Costs []int
	Run   func(ctx context.Context, e *Env) error
}

// All returns the scenarios in the order a full run takes them: the login
// scenarios on their own platforms first, then everything that shares the
// cheap-hash platform, the seeded data set last since it is the largest.
func All() []Scenario {
	return []Scenario{
		{"login", "password login at bcrypt cost 10 and 12", []int{10, 12}, runLogin},
		{"refresh", "refresh-token grant, rotating every request", []int{seedCost}, runRefresh},
		{"commands", "role assignment commands vs raw JetStream publishes", []int{seedCost}, runCommands},
		{"lag", "projection lag at steady rates, revoke-to-deny", []int{seedCost}, runLag},
		{"checks", "permission checks, one tenant and many", []int{seedCost}, runChecks},
		{"memory", "resident size after seeding", []int{seedCost}, runMemory},
		{"replay", "full rebuild of the accounts projection", []int{seedCost}, runReplay},
	}
}

// seedCost is the bcrypt cost of the platform every scenario but login
// uses: registering thousands of users at a production cost would spend
// the run hashing.
const seedCost = 4
