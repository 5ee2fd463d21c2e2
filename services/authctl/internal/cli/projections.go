package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
)

var projectionCommands = []*command{
	{
		name: "projections status", synopsis: "",
		summary: "show every partition of the projections: checkpoint, lag, quarantine (platform operators)",
		run:     projectionsStatus,
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
		name: "projections resume", synopsis: "NAME PARTITION [--skip]",
		summary: "resume a quarantined partition, retrying or skipping its event (platform operators)",
		flags: func(fs *flag.FlagSet) {
			fs.Bool("skip", false, "move past the quarantined event for good instead of retrying it")
		},
		run: projectionsResume,
	},
}

// jobPoll is how often projections rebuild asks how its job is doing.
const jobPoll = 500 * time.Millisecond

// partitionStatus is one partition in GET /projections.
type partitionStatus struct {
	Projection string      `json:"projection"`
	Generation int         `json:"generation"`
	State      string      `json:"state"`
	Partition  int         `json:"partition"`
	Checkpoint uint64      `json:"checkpoint"`
	UpdatedAt  time.Time   `json:"updated_at"`
	LagEvents  uint64      `json:"lag_events"`
	LagSeconds float64     `json:"lag_seconds"`
	Quarantine *quarantine `json:"quarantine,omitempty"`
}

type quarantine struct {
	Seq       uint64    `json:"seq"`
	Subject   string    `json:"subject"`
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
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
	t := newTable(in.env.Out, "PROJECTION", "GENERATION", "STATE", "PARTITION", "CHECKPOINT", "LAG", "LAG AGE", "QUARANTINED AT")
	var stuck []partitionStatus
	for _, p := range out.Items {
		age, q := "0s", ""
		if p.LagSeconds > 0 {
			age = (time.Duration(p.LagSeconds * float64(time.Second))).Round(time.Second).String()
		}
		if p.Quarantine != nil {
			q = strconv.FormatUint(p.Quarantine.Seq, 10)
			stuck = append(stuck, p)
		}
		t.row(p.Projection, strconv.Itoa(p.Generation), p.State, strconv.Itoa(p.Partition),
			strconv.FormatUint(p.Checkpoint, 10), strconv.FormatUint(p.LagEvents, 10), age, q)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, p := range stuck {
		q := p.Quarantine
		fmt.Fprintf(in.env.Out, "\n%s@%d partition %d is quarantined at sequence %d (%s, event %s, %s): %s\n"+
			"  after fixing the cause: authctl projections resume %s@%d %d   (or add --skip to pass the event for good)\n",
			p.Projection, p.Generation, p.Partition, q.Seq, orDash(q.EventType), orDash(q.EventID), q.Subject, q.Error,
			p.Projection, p.Generation, p.Partition)
	}
	return nil
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
			total = int64(j.Total)
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
		if j.Total > 0 && bar.GetMax64() != int64(j.Total) {
			bar.ChangeMax64(int64(j.Total))
		}
		switch {
		case j.Partitions > 0:
			bar.Describe(fmt.Sprintf("%d/%d partitions caught up", j.CaughtUp, j.Partitions))
		case j.Tenants > 0:
			bar.Describe(fmt.Sprintf("%d/%d tenants rebuilt", j.TenantsDone, j.Tenants))
		}
		_ = bar.Set64(int64(j.Applied))
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
	}
	return nil
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

// resumed is the answer of the resume endpoint.
type resumed struct {
	Projection string     `json:"projection"`
	Partition  int        `json:"partition"`
	Skipped    bool       `json:"skipped"`
	Quarantine quarantine `json:"quarantine"`
}

func projectionsResume(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "NAME", "PARTITION"); err != nil {
		return err
	}
	name := args[0]
	if _, err := strconv.Atoi(args[1]); err != nil {
		return usageErrorf("PARTITION must be a number, got %q", args[1])
	}
	skip := flagBool(fs, "skip")
	var out resumed
	if err := in.operator(ctx, http.MethodPost, pathf("/projections/%s/partitions/%s/resume", name, args[1]),
		map[string]bool{"skip": skip}, &out); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	if out.Skipped {
		fmt.Fprintf(in.env.Out, "%s partition %d resumed past sequence %d (%s): that event is skipped for good\n",
			out.Projection, out.Partition, out.Quarantine.Seq, orDash(out.Quarantine.EventType))
	} else {
		fmt.Fprintf(in.env.Out, "%s partition %d resumed: sequence %d is retried\n", out.Projection, out.Partition, out.Quarantine.Seq)
	}
	return nil
}
