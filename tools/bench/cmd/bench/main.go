// Command bench starts the authstream platform in-process on loopback and
// measures it under a closed-loop load, scenario by scenario, each against
// a bound measured in the same run; it prints one table at the end. See
// docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/scenario"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench: "+err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, progress io.Writer) error {
	all := scenario.All()
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(progress)
	var (
		o         scenario.Options
		clients   string
		scenarios string
		markdown  bool
	)
	fs.StringVar(&o.ServerURL, "database-url", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL server the platforms create (and drop) their databases on (the loopback default skips TLS, which only costs CPU there)")
	fs.DurationVar(&o.Duration, "duration", 8*time.Second, "measured window of each run")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "unmeasured warm-up before each window")
	fs.StringVar(&clients, "clients", "", "comma-separated client counts replacing every scenario's own (e.g. 1,8,32)")
	fs.StringVar(&scenarios, "scenarios", strings.Join(names, ","), "comma-separated scenarios to run: "+strings.Join(names, ", "))
	fs.IntVar(&o.SeedTenants, "seed-tenants", 1000, "tenants of the large permission-check data set")
	fs.IntVar(&o.SeedUsers, "seed-users", 100, "users per tenant of the large data set")
	fs.IntVar(&o.MemoryTenants, "memory-tenants", 10000, "tenants of the memory scenario's data set")
	fs.IntVar(&o.MemoryUsers, "memory-users", 1000000, "users of the memory scenario's data set, spread evenly over its tenants")
	fs.IntVar(&o.ReplayEvents, "replay-events", 1000000, "events the event log holds, at least, when the replay rebuilds: the bulk seeder adds what the earlier scenarios did not write")
	fs.IntVar(&o.ImportUsers, "import-users", 1000000, "users the bulk import scenario imports")
	fs.IntVar(&o.FeedEvents, "feed-events", 100000, "events of the tenant whose feed one reader takes in the webhooks scenario (bulk seeded; the issue's figure is 1000000)")
	fs.StringVar(&o.ProfileDir, "cpuprofile", "", "directory to write one CPU profile of the process per measured part into")
	fs.BoolVar(&markdown, "markdown", false, "print the table in Markdown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.Duration <= 0 || o.Warmup < 0 {
		return errors.New("-duration must be positive and -warmup not negative")
	}
	if o.ImportUsers < 1 {
		return errors.New("-import-users must be positive")
	}
	if o.ReplayEvents < 0 || o.FeedEvents < 0 {
		return errors.New("-replay-events and -feed-events must not be negative")
	}
	if o.SeedTenants < 1 || o.SeedUsers < 1 || o.MemoryTenants < 1 || o.MemoryUsers < o.MemoryTenants {
		return errors.New("-seed-tenants and -seed-users must be positive, -memory-users at least -memory-tenants")
	}
	for _, c := range splitList(clients) {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			return fmt.Errorf("-clients: %q is not a positive integer", c)
		}
		o.Clients = append(o.Clients, n)
	}
	want := splitList(scenarios)
	for _, w := range want {
		if !slices.Contains(names, w) {
			return fmt.Errorf("-scenarios: unknown scenario %q (known: %s)", w, strings.Join(names, ", "))
		}
	}
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o750); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
	}
	o.Progress = progress

	env := scenario.NewEnv(o)
	var selected []scenario.Scenario
	for _, s := range all {
		if slices.Contains(want, s.Name) {
			selected = append(selected, s)
		}
	}
	start := time.Now()
	fmt.Fprintf(progress, "%s %d CPUs, load average %s\n", start.Format("15:04:05"), runtime.NumCPU(), loadavg())
	var failed error
	for i, s := range selected {
		fmt.Fprintf(progress, "%s == %s: %s\n", time.Now().Format("15:04:05"), s.Name, s.About)
		if err := s.Run(ctx, env); err != nil {
			failed = fmt.Errorf("scenario %s: %w", s.Name, err)
			break
		}
		// Stop the platforms no later scenario needs: an idle platform
		// still costs memory and background work.
		var keep []scenario.Setup
		for _, later := range selected[i+1:] {
			keep = append(keep, later.Needs...)
		}
		if err := env.Release(keep...); err != nil {
			failed = err
			break
		}
	}
	failed = errors.Join(failed, env.Release())
	fmt.Fprintf(progress, "%s done in %s, load average %s\n\n", time.Now().Format("15:04:05"), time.Since(start).Round(time.Second), loadavg())
	write := scenario.WriteTable
	if markdown {
		write = scenario.WriteMarkdown
	}
	if err := write(out, env.Rows()); err != nil {
		return err
	}
	return failed
}

// loadavg returns the 1, 5 and 15 minute load averages: anything else
// running on the machine skews the figures, and this says so.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
