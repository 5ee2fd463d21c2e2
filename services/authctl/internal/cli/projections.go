package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

var projectionCommands = []*command{
	{
		name: "projections status", synopsis: "",
		summary: "show every partition of the projections (checkpoint, lag) and the quarantined tenants, with the commands that resume them (platform operators)",
		run:     projectionsStatus,
	},
	{
		name: "projections skipped", synopsis: "NAME [--limit N]",
		summary: "list the messages a projection passed without applying them: no events of the platform, or events skipped by an operator (platform operators)",
		flags: func(fs *flag.FlagSet) {
			fs.Int("limit", 20, "show at most `N` messages, newest first")
		},
		run: projectionsSkipped,
	},
	{
		name: "projections rebuild", synopsis: "NAME [--tenant T | --since TIME]",
		summary: "rebuild a projection, one tenant's rows of it, or the rows of the tenants created since a time, with a progress bar (platform operators)",
		flags: func(fs *flag.FlagSet) {
			fs.String("tenant", "", "rebuild only this `tenant`'s rows")
			fs.String("since", "", "rebuild only the rows of the tenants whose first event is at or after `TIME` "+
				"(RFC 3339, such as 2026-01-02T15:04:05Z, or a duration ago, such as 2h)")
		},
		run: projectionsRebuild,
	},
	{
		name: "projections resume", synopsis: "NAME (--tenant T | PARTITION) [--skip]",
		summary: "resume a quarantined tenant (or every quarantined tenant of a partition), retrying or skipping the event it stopped at (platform operators)",
		flags: func(fs *flag.FlagSet) {
			fs.String("tenant", "", "resume this quarantined `tenant`")
			fs.Bool("skip", false, "pass the event the tenant stopped at for good instead of retrying it")
		},
		run: projectionsResume,
	},
}

// jobPoll is how often projections rebuild asks how its job is doing.
const jobPoll = 500 * time.Millisecond

// resumeWait bounds how long projections resume waits for the projector's
// worker to carry the resume out (it does so between two batches, within
// a second or so); resumePoll is how often it looks.
const (
	resumeWait = 30 * time.Second
	resumePoll = 200 * time.Millisecond
)

// partitionStatus is one partition in GET /projections.
type partitionStatus struct {
	Projection string    `json:"projection"`
	Generation int       `json:"generation"`
	State      string    `json:"state"`
	Partition  int       `json:"partition"`
	Checkpoint uint64    `json:"checkpoint"`
	UpdatedAt  time.Time `json:"updated_at"`
	LagEvents  uint64    `json:"lag_events"`
	LagSeconds float64   `json:"lag_seconds"`
	// QuarantinedTenants are the partition's tenants whose projection
	// stopped at an event that cannot be applied.
	QuarantinedTenants []quarantine `json:"quarantined_tenants,omitempty"`
}

// quarantine is the event a tenant's projection stopped at.
type quarantine struct {
	Projection string     `json:"projection"`
	Generation int        `json:"generation"`
	Tenant     string     `json:"tenant"`
	Partition  int        `json:"partition"`
	Seq        uint64     `json:"seq"`
	Subject    string     `json:"subject"`
	EventID    string     `json:"event_id"`
	EventType  string     `json:"event_type"`
	Error      string     `json:"error"`
	At         time.Time  `json:"at"`
	Action     string     `json:"action,omitempty"`
	ActionAt   *time.Time `json:"action_at,omitempty"`
}

// name is how the resume and rebuild commands name the quarantine's
// generation: the projection alone for the active one.
func (q quarantine) name(state string) string {
	if state == "active" {
		return q.Projection
	}
	return q.Projection + "@" + strconv.Itoa(q.Generation)
}

func projectionsStatus(ctx context.Context, in *inv, _ *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	var out struct {
		Items []partitionStatus `json:"items"`
	}
	if err := in.operator(ctx, http.MethodGet, "/projections", nil, &out); err != nil {
		return err
	}
	if out.Items == nil {
		out.Items = []partitionStatus{}
	}
	if in.opts.json {
		return printJSON(in.env.Out, out.Items)
	}
	t := newTable(in.env.Out, "PROJECTION", "GENERATION", "STATE", "PARTITION", "CHECKPOINT", "LAG", "LAG AGE", "QUARANTINED")
	type stuck struct {
		q     quarantine
		state string
	}
	var stopped []stuck
	projections := map[string]bool{}
	for _, p := range out.Items {
		age := "0s"
		if p.LagSeconds > 0 {
			age = (time.Duration(p.LagSeconds * float64(time.Second))).Round(time.Second).String()
		}
		for _, q := range p.QuarantinedTenants {
			stopped = append(stopped, stuck{q, p.State})
		}
		projections[p.Projection] = true
		t.row(p.Projection, strconv.Itoa(p.Generation), p.State, strconv.Itoa(p.Partition),
			strconv.FormatUint(p.Checkpoint, 10), strconv.FormatUint(p.LagEvents, 10), age, strconv.Itoa(len(p.QuarantinedTenants)))
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, s := range stopped {
		q, name := s.q, s.q.name(s.state)
		fmt.Fprintf(in.env.Out, "\ntenant %s is quarantined in %s@%d (partition %d) at sequence %d (%s, event %s, %s): %s\n",
			q.Tenant, q.Projection, q.Generation, q.Partition, q.Seq, orDash(q.EventType), orDash(q.EventID), q.Subject, q.Error)
		fmt.Fprintf(in.env.Out, "  its rows hold the state before that event; its later events wait in the log; the other tenants go on\n")
		if q.Action != "" {
			fmt.Fprintf(in.env.Out, "  %s asked at %s: the worker of partition %d has not carried it out yet (is a projector running?)\n",
				q.Action, q.ActionAt.Format(time.RFC3339), q.Partition)
		}
		fmt.Fprintf(in.env.Out, "  after fixing the cause, retry:   authctl projections resume %s --tenant %s\n", name, q.Tenant)
		fmt.Fprintf(in.env.Out, "  or pass the event for good:      authctl projections resume %s --tenant %s --skip\n", name, q.Tenant)
		if s.state == "active" {
			fmt.Fprintf(in.env.Out, "  or rebuild the tenant from log:  authctl projections rebuild %s --tenant %s\n", q.Projection, q.Tenant)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(projections)) {
		var skipped skippedList
		if err := in.operator(ctx, http.MethodGet, pathf("/projections/%s/skipped", name)+"?limit=1", nil, &skipped); err != nil {
			return err
		}
		if len(skipped.Items) > 0 {
			fmt.Fprintf(in.env.Out, "\n%s passed messages without applying them (no events of the platform, or skipped): authctl projections skipped %s\n", name, name)
		}
	}
	return nil
}

// skippedMessage is a message a projection passed without applying it.
type skippedMessage struct {
	Seq       uint64    `json:"seq"`
	Partition int       `json:"partition"`
	Subject   string    `json:"subject"`
	Tenant    string    `json:"tenant"`
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
}

type skippedList struct {
	Items []skippedMessage `json:"items"`
}

func projectionsSkipped(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "NAME"); err != nil {
		return err
	}
	limit := fs.Lookup("limit").Value.(flag.Getter).Get().(int)
	if limit < 1 || limit > 1000 {
		return usageErrorf("--limit must be from 1 to 1000, got %d", limit)
	}
	var out skippedList
	if err := in.operator(ctx, http.MethodGet, pathf("/projections/%s/skipped", args[0])+"?limit="+strconv.Itoa(limit), nil, &out); err != nil {
		return err
	}
	if out.Items == nil {
		out.Items = []skippedMessage{}
	}
	if in.opts.json {
		return printJSON(in.env.Out, out.Items)
	}
	t := newTable(in.env.Out, "SEQ", "PARTITION", "TENANT", "REASON", "EVENT TYPE", "SUBJECT", "AT", "ERROR")
	for _, m := range out.Items {
		t.row(strconv.FormatUint(m.Seq, 10), strconv.Itoa(m.Partition), orDash(m.Tenant), m.Reason, orDash(m.EventType),
			m.Subject, m.At.Format(time.RFC3339), m.Error)
	}
	return t.flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// job is a rebuild job as the projector shows it.
type job struct {
	ID          string     `json:"id"`
	Projection  string     `json:"projection"`
	Kind        string     `json:"kind"`
	Tenant      string     `json:"tenant,omitempty"`
	Since       *time.Time `json:"since,omitempty"`
	Tenants     int        `json:"tenants,omitempty"`
	TenantsDone int        `json:"tenants_done,omitempty"`
	State       string     `json:"state"`
	Generation  int        `json:"generation,omitempty"`
	Partitions  int        `json:"partitions,omitempty"`
	CaughtUp    int        `json:"caught_up,omitempty"`
	Applied     uint64     `json:"applied"`
	Total       uint64     `json:"total"`
	Rate        float64    `json:"rate"`
	ETASeconds  *float64   `json:"eta_seconds,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Error       string     `json:"error,omitempty"`
	// QuarantinedTenants are the tenants of the job's scope quarantined in
	// the live generation once it succeeded.
	QuarantinedTenants []string `json:"quarantined_tenants,omitempty"`
}

func projectionsRebuild(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "NAME"); err != nil {
		return err
	}
	name := args[0]
	var body any
	tenant, since := flagString(fs, "tenant"), flagString(fs, "since")
	switch {
	case tenant != "" && since != "":
		return usageErrorf("--tenant and --since cannot be used together")
	case tenant != "":
		body = map[string]string{"tenant": tenant}
	case since != "":
		at, err := parseSince(since, in.env.Now())
		if err != nil {
			return err
		}
		body = map[string]string{"since": at.UTC().Format(time.RFC3339Nano)}
	}
	var j job
	if err := in.operator(ctx, http.MethodPost, pathf("/projections/%s/rebuild", name), body, &j); err != nil {
		return err
	}
	what := name
	switch {
	case j.Tenant != "":
		what += " for tenant " + j.Tenant
	case j.Since != nil:
		what += " for the tenants created since " + j.Since.Format(time.RFC3339)
	}

	var bar *progressbar.ProgressBar
	if !in.opts.json {
		fmt.Fprintf(in.env.Err, "rebuilding %s (job %s)\n", what, j.ID)
		total := int64(-1) // a spinner until the total is known
		if j.Total > 0 {
			total = count64(j.Total)
		}
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(in.env.Err),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	show := func(j job) {
		if bar == nil {
			return
		}
		if j.Total > 0 && bar.GetMax64() != count64(j.Total) {
			bar.ChangeMax64(count64(j.Total))
		}
		switch {
		case j.Partitions > 0:
			bar.Describe(fmt.Sprintf("%d/%d partitions caught up", j.CaughtUp, j.Partitions))
		case j.Tenants > 0:
			bar.Describe(fmt.Sprintf("%d/%d tenants rebuilt", j.TenantsDone, j.Tenants))
		}
		_ = bar.Set64(count64(j.Applied))
	}
	show(j)

	tick := time.NewTicker(jobPoll)
	defer tick.Stop()
	for j.State == "running" {
		select {
		case <-ctx.Done():
			if bar != nil {
				_ = bar.Exit()
			}
			return fmt.Errorf("stopped watching; the rebuild goes on in the projector (job %s)", j.ID)
		case <-tick.C:
		}
		if err := in.operator(ctx, http.MethodGet, pathf("/projections/jobs/%s", j.ID), nil, &j); err != nil {
			if ctx.Err() != nil {
				continue // reported above
			}
			if bar != nil {
				_ = bar.Exit()
				fmt.Fprintln(in.env.Err)
			}
			return err
		}
		show(j)
	}

	if bar != nil {
		if j.State == "succeeded" {
			_ = bar.Finish()
		} else {
			_ = bar.Exit()
		}
		fmt.Fprintln(in.env.Err)
	}
	if in.opts.json {
		if err := printJSON(in.env.Out, j); err != nil {
			return err
		}
	}
	if j.State != "succeeded" {
		return errors.New("rebuild of " + what + " failed: " + orDash(j.Error))
	}
	if !in.opts.json {
		took := time.Duration(0)
		if j.FinishedAt != nil {
			took = j.FinishedAt.Sub(j.StartedAt).Round(time.Millisecond)
		}
		switch j.Kind {
		case "full":
			fmt.Fprintf(in.env.Out, "rebuild of %s done: generation %d is live (%d events in %s)\n", what, j.Generation, j.Total, took)
		case "since":
			fmt.Fprintf(in.env.Out, "rebuild of %s done (%d tenants, %d events in %s)\n", what, j.Tenants, j.Total, took)
		default:
			fmt.Fprintf(in.env.Out, "rebuild of %s done (%d events in %s)\n", what, j.Total, took)
		}
		for _, tenant := range j.QuarantinedTenants {
			fmt.Fprintf(in.env.Out, "tenant %s stays quarantined at an event that cannot be applied (the rebuild completed for the others): see authctl projections status\n", tenant)
		}
	}
	return nil
}

// count64 returns a job's count as the progress bar holds it (int64); a
// count past that range, which only a broken answer can carry, shows as
// the largest the bar holds instead of a negative one.
func count64(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}

// parseSince reads --since: an RFC 3339 time, or a positive duration
// meaning that long before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageErrorf("--since must be an RFC 3339 time such as 2026-01-02T15:04:05Z or a duration such as 2h, got %q", s)
}

// resumed is the answer of the resume endpoints.
type resumed struct {
	Projection string       `json:"projection"`
	Partition  *int         `json:"partition,omitempty"`
	Tenant     string       `json:"tenant,omitempty"`
	Skip       bool         `json:"skip"`
	Tenants    []quarantine `json:"tenants"`
}

// resumeOutcome is what became of a tenant a resume was asked for.
type resumeOutcome struct {
	Tenant    string      `json:"tenant"`
	Released  bool        `json:"released"`
	Pending   bool        `json:"pending,omitempty"`    // the worker did not carry it out in time
	StoppedAt *quarantine `json:"stopped_at,omitempty"` // quarantined again, at this event
}

func projectionsResume(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	tenant := flagString(fs, "tenant")
	var path string
	switch {
	case len(args) == 0:
		return usageErrorf("missing NAME")
	case tenant != "" && len(args) > 1:
		return usageErrorf("--tenant and PARTITION cannot be used together")
	case tenant != "":
		path = pathf("/projections/%s/tenants/%s/resume", args[0], tenant)
	case len(args) == 1:
		return usageErrorf("missing --tenant T or PARTITION")
	case len(args) > 2:
		return usageErrorf("unexpected argument %q", args[2])
	default:
		if _, err := strconv.Atoi(args[1]); err != nil {
			return usageErrorf("PARTITION must be a number, got %q", args[1])
		}
		path = pathf("/projections/%s/partitions/%s/resume", args[0], args[1])
	}
	skip := flagBool(fs, "skip")
	var asked resumed
	if err := in.operator(ctx, http.MethodPost, path, map[string]bool{"skip": skip}, &asked); err != nil {
		return err
	}
	outcomes, err := in.awaitResume(ctx, args[0], asked.Tenants)
	if err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, outcomes)
	}
	for i, o := range outcomes {
		q := asked.Tenants[i]
		switch {
		case o.Released && skip:
			fmt.Fprintf(in.env.Out, "tenant %s resumed past sequence %d (%s): that event is skipped for good\n", o.Tenant, q.Seq, orDash(q.EventType))
		case o.Released:
			fmt.Fprintf(in.env.Out, "tenant %s resumed: sequence %d and the events after it are applied\n", o.Tenant, q.Seq)
		case o.StoppedAt != nil:
			fmt.Fprintf(in.env.Out, "tenant %s is quarantined again at sequence %d (%s, event %s): %s\n",
				o.Tenant, o.StoppedAt.Seq, orDash(o.StoppedAt.EventType), orDash(o.StoppedAt.EventID), o.StoppedAt.Error)
		default:
			fmt.Fprintf(in.env.Out, "tenant %s: resume asked; the worker of partition %d has not carried it out within %s (is a projector running?)\n",
				o.Tenant, q.Partition, resumeWait)
		}
	}
	return nil
}

// awaitResume waits until the projector's worker has carried out the
// resume of each quarantine in asked: the tenant released, or quarantined
// again (its action cleared).
func (in *inv) awaitResume(ctx context.Context, name string, asked []quarantine) ([]resumeOutcome, error) {
	deadline := time.Now().Add(resumeWait)
	for {
		var now struct {
			Items []quarantine `json:"items"`
		}
		if err := in.operator(ctx, http.MethodGet, pathf("/projections/%s/quarantine", strings.SplitN(name, "@", 2)[0]), nil, &now); err != nil {
			return nil, err
		}
		outcomes, waiting := make([]resumeOutcome, len(asked)), false
		for i, a := range asked {
			outcomes[i] = resumeOutcome{Tenant: a.Tenant, Released: true}
			for _, q := range now.Items {
				if q.Tenant != a.Tenant || q.Generation != a.Generation {
					continue
				}
				outcomes[i].Released = false
				if q.Action != "" {
					outcomes[i].Pending, waiting = true, true
				} else {
					outcomes[i].StoppedAt = &q
				}
			}
		}
		if !waiting || time.Now().After(deadline) {
			return outcomes, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(resumePoll):
		}
	}
}
