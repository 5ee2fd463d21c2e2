package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

var webhookCommands = []*command{
	{
		name:     "webhooks create",
		synopsis: "[--tenant T] URL --event-type TYPE... [--description D]",
		summary:  "register a webhook endpoint; its signing secret is shown once",
		flags:    webhookFlags,
		run:      webhooksWrite(true),
	},
	{
		name:     "webhooks update",
		synopsis: "[--tenant T] ID URL --event-type TYPE... [--description D]",
		summary:  "replace an endpoint's URL, event types and description",
		flags:    webhookFlags,
		run:      webhooksWrite(false),
	},
	{
		name: "webhooks list", synopsis: "[--tenant T]",
		summary: "list the webhook endpoints of a tenant with their delivery state (every page)",
		flags:   tenantFlag,
		run:     webhooksList,
	},
	{
		name: "webhooks show", synopsis: "[--tenant T] ID",
		summary: "show one endpoint: configuration and delivery state (never its secret)",
		flags:   tenantFlag,
		run:     webhooksShow,
	},
	{
		name: "webhooks delete", synopsis: "[--tenant T] ID",
		summary: "delete an endpoint for good: nothing more is delivered to it",
		flags:   tenantFlag,
		run:     webhooksAction(http.MethodDelete, "", "deleted"),
	},
	{
		name: "webhooks pause", synopsis: "[--tenant T] ID",
		summary: "pause an endpoint's deliveries; its events wait",
		flags:   tenantFlag,
		run:     webhooksAction(http.MethodPost, "/pause", "paused"),
	},
	{
		name: "webhooks resume", synopsis: "[--tenant T] ID",
		summary: "resume a paused endpoint's deliveries where they stopped",
		flags:   tenantFlag,
		run:     webhooksAction(http.MethodPost, "/resume", "resumed"),
	},
	{
		name: "webhooks rotate", synopsis: "[--tenant T] ID [--overlap D]",
		summary: "give an endpoint a new signing secret, shown once; both sign during the overlap",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.Duration("overlap", 0, "how long the previous secret also signs (`duration`, whole seconds, at most 720h; default 24h)")
		},
		run: webhooksRotate,
	},
	{
		name: "webhooks replay", synopsis: "[--tenant T] ID (--from-sequence N | --from-time RFC3339)",
		summary: "deliver an endpoint's events again from a stream sequence or an instant",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.Uint64("from-sequence", 0, "the stream `sequence` to start from (as the delivery log shows them)")
			fs.String("from-time", "", "the `instant` to start from (RFC 3339)")
		},
		run: webhooksReplay,
	},
	{
		name: "webhooks deliveries", synopsis: "[--tenant T] ID [--limit N]",
		summary: "show an endpoint's latest delivery attempts: status, response code, latency, next attempt",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.Int("limit", 50, "how many attempts, newest first (`1 to 200`)")
		},
		run: webhooksDeliveries,
	},
}

func webhookFlags(fs *flag.FlagSet) {
	tenantFlag(fs)
	fs.Var(&stringList{}, "event-type", "an event `type` (user.registered), every type of an aggregate (user.*), or * (repeatable)")
	fs.String("description", "", "free `text` for the tenant's admins")
}

// webhookAnswer is an endpoint as the services answer it.
type webhookAnswer struct {
	ID                      string     `json:"id"`
	Secret                  string     `json:"secret,omitempty"`
	URL                     string     `json:"url"`
	EventTypes              []string   `json:"event_types"`
	Description             string     `json:"description,omitempty"`
	Paused                  bool       `json:"paused"`
	State                   string     `json:"state,omitempty"`
	FailingSince            *time.Time `json:"failing_since,omitempty"`
	DeadLetters             int64      `json:"dead_letters,omitempty"`
	LastDeliveredSeq        uint64     `json:"last_delivered_sequence,omitempty"`
	LastDeliveredAt         *time.Time `json:"last_delivered_at,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	Version                 int64      `json:"version,omitempty"`
}

// webhookSecretShownOnce is what authctl says, on standard error, when it
// prints a signing secret.
//
//nolint:gosec // G101: a message about a secret, not one
const webhookSecretShownOnce = "authctl: the signing secret is shown this once: give it to the receiver now\n"

func webhooksWrite(create bool) func(context.Context, *inv, *flag.FlagSet, []string) error {
	return func(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
		names := []string{"URL"}
		if !create {
			names = []string{"ID", "URL"}
		}
		if err := wantArgs(args, names...); err != nil {
			return err
		}
		tenant, err := in.tenant(flagString(fs, "tenant"))
		if err != nil {
			return err
		}
		body := map[string]any{
			"url":         args[len(args)-1],
			"event_types": []string(*fs.Lookup("event-type").Value.(*stringList)),
		}
		if d := flagString(fs, "description"); d != "" {
			body["description"] = d
		}
		method, path := http.MethodPost, pathf("/t/%s/webhooks", tenant)
		if !create {
			method, path = http.MethodPut, pathf("/t/%s/webhooks/%s", tenant, args[0])
		}
		var out webhookAnswer
		if err := in.command(ctx, tenant, tenant, method, path, body, &out); err != nil {
			return err
		}
		return printWebhook(in, tenant, out)
	}
}

// printWebhook prints an endpoint a command answered, with its secret
// when one was just made.
func printWebhook(in *inv, tenant string, out webhookAnswer) error {
	if out.Secret != "" {
		fmt.Fprint(in.env.Err, webhookSecretShownOnce)
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	kv := []string{"id", out.ID, "tenant", tenant}
	if out.Secret != "" {
		kv = append(kv, "secret", out.Secret)
	}
	if out.PreviousSecretExpiresAt != nil {
		kv = append(kv, "previous_secret", "signs until "+timeString(*out.PreviousSecretExpiresAt))
	}
	return fields(in.env.Out, append(kv, "url", out.URL, "event_types", strings.Join(out.EventTypes, " "),
		"description", out.Description, "paused", strconv.FormatBool(out.Paused))...)
}

func webhooksList(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	all, err := readPages[webhookAnswer](ctx, in, tenant, pathf("/t/%s/webhooks", tenant))
	if err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, all)
	}
	t := newTable(in.env.Out, "ID", "URL", "EVENT_TYPES", "PAUSED", "STATE")
	for _, w := range all {
		t.row(w.ID, w.URL, list(w.EventTypes), strconv.FormatBool(w.Paused), w.State)
	}
	return t.flush()
}

func webhooksShow(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	var w webhookAnswer
	if err := in.read(ctx, tenant, pathf("/t/%s/webhooks/%s", tenant, args[0]), nil, &w); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, w)
	}
	opt := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return timeString(*t)
	}
	return fields(in.env.Out, "id", w.ID, "tenant", tenant, "url", w.URL, "event_types", strings.Join(w.EventTypes, " "),
		"description", w.Description, "paused", strconv.FormatBool(w.Paused), "state", w.State,
		"failing_since", opt(w.FailingSince), "dead_letters", strconv.FormatInt(w.DeadLetters, 10),
		"last_delivered_sequence", strconv.FormatUint(w.LastDeliveredSeq, 10), "last_delivered_at", opt(w.LastDeliveredAt),
		"previous_secret_signs_until", opt(w.PreviousSecretExpiresAt), "version", strconv.FormatInt(w.Version, 10))
}

// webhookResult is what webhooks delete, pause and resume print.
type webhookResult struct {
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
	Done   string `json:"done"`
}

func webhooksAction(method, suffix, done string) func(context.Context, *inv, *flag.FlagSet, []string) error {
	return func(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(args, "ID"); err != nil {
			return err
		}
		tenant, err := in.tenant(flagString(fs, "tenant"))
		if err != nil {
			return err
		}
		id := args[0]
		if err := in.command(ctx, tenant, tenant, method, pathf("/t/%s/webhooks/%s", tenant, id)+suffix, nil, nil); err != nil {
			return err
		}
		if in.opts.json {
			return printJSON(in.env.Out, webhookResult{Tenant: tenant, ID: id, Done: done})
		}
		fmt.Fprintf(in.env.Out, "webhook %s of tenant %s %s\n", id, tenant, done)
		return nil
	}
}

func webhooksRotate(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	body := map[string]any{}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "overlap" })
	if given {
		overlap := fs.Lookup("overlap").Value.(flag.Getter).Get().(time.Duration)
		if overlap < 0 || overlap%time.Second != 0 {
			return usageErrorf("--overlap must be a whole number of seconds, 0s or more (24h, 90m, 0s)")
		}
		body["overlap_seconds"] = int64(overlap / time.Second)
	}
	var out webhookAnswer
	if err := in.command(ctx, tenant, tenant, http.MethodPost, pathf("/t/%s/webhooks/%s/secret", tenant, args[0]), body, &out); err != nil {
		return err
	}
	return printWebhook(in, tenant, out)
}

func webhooksReplay(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	seq := fs.Lookup("from-sequence").Value.(flag.Getter).Get().(uint64)
	at := flagString(fs, "from-time")
	body := map[string]any{}
	switch {
	case seq > 0 && at == "":
		body["from_sequence"] = seq
	case seq == 0 && at != "":
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return usageErrorf("--from-time must be an RFC 3339 time (2026-01-02T15:04:05Z)")
		}
		body["from_time"] = t.UTC()
	default:
		return usageErrorf("give exactly one of --from-sequence and --from-time")
	}
	var out webhookAnswer
	if err := in.command(ctx, tenant, tenant, http.MethodPost, pathf("/t/%s/webhooks/%s/replay", tenant, args[0]), body, &out); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	fmt.Fprintf(in.env.Out, "webhook %s of tenant %s will deliver its events again from %s\n", args[0], tenant, strings.TrimSpace(fmt.Sprint(body["from_sequence"], " ", at)))
	return nil
}

// deliveryAnswer is one attempt of the delivery log.
type deliveryAnswer struct {
	ID            int64      `json:"id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	Sequence      uint64     `json:"sequence"`
	Attempt       int        `json:"attempt"`
	Status        string     `json:"status"`
	ResponseCode  *int       `json:"response_code,omitempty"`
	LatencyMS     float64    `json:"latency_ms"`
	Error         string     `json:"error,omitempty"`
	AttemptedAt   time.Time  `json:"attempted_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

func webhooksDeliveries(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	limit := fs.Lookup("limit").Value.(flag.Getter).Get().(int)
	if limit < 1 || limit > 200 {
		return usageErrorf("--limit must be between 1 and 200")
	}
	var page struct {
		Items []deliveryAnswer `json:"items"`
	}
	path := pathf("/t/%s/webhooks/%s/deliveries", tenant, args[0]) + "?limit=" + strconv.Itoa(limit)
	if err := in.read(ctx, tenant, path, nil, &page); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, page.Items)
	}
	t := newTable(in.env.Out, "ATTEMPTED", "SEQUENCE", "EVENT_TYPE", "ATTEMPT", "STATUS", "CODE", "LATENCY_MS", "NEXT_ATTEMPT", "ERROR")
	for _, d := range page.Items {
		code, next := "", ""
		if d.ResponseCode != nil {
			code = strconv.Itoa(*d.ResponseCode)
		}
		if d.NextAttemptAt != nil {
			next = timeString(*d.NextAttemptAt)
		}
		t.row(timeString(d.AttemptedAt), strconv.FormatUint(d.Sequence, 10), d.EventType, strconv.Itoa(d.Attempt), d.Status, code,
			strconv.FormatFloat(d.LatencyMS, 'f', 1, 64), next, d.Error)
	}
	return t.flush()
}
