package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/config"
	"github.com/schollz/progressbar/v3"
)

var auditCommands = []*command{
	{
		name: "audit history", synopsis: "[--tenant T] USER_ID [--as-of TIME]",
		summary: "show an account's events from the log, or its state at an instant (needs audit:read)",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.String("as-of", "", "show the account's state at this `instant` (RFC 3339, e.g. 2025-03-14T10:00:00Z)")
		},
		run: auditHistory,
	},
	{
		name: "audit export", synopsis: "[--tenant T] [--user ID] --out FILE",
		summary: "write a tenant's (or one account's) events to a JSON Lines file (needs audit:read)",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.String("user", "", "export only this user `id`'s account")
			fs.String("out", "", "the `file` to write (replaced if it exists)")
		},
		run: auditExport,
	},
	{
		name: "audit verify", synopsis: "FILE [--checkpoint CKPT --key KEY] | [--tenant T] [--user ID]",
		summary: "recompute every hash and link of an export, or of the live log; with a checkpoint, prove the export is exactly the log it signs; report the first broken line or size",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.String("user", "", "verify this user `id`'s account in the live log")
			fs.String("checkpoint", "", "a signed checkpoint `file` (audit checkpoint): the export must hold exactly the events it signs, in order")
			keyFlag(fs)
		},
		run: auditVerify,
	},
	{
		name: "audit checkpoint", synopsis: "[--tenant T] --out FILE",
		summary: "keep the latest signed checkpoint of a tenant's log in FILE, and print its verifier key (needs audit:read)",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.String("out", "", "the `file` to write the signed checkpoint to (replaced if it exists)")
		},
		run: auditCheckpoint,
	},
	{
		name: "audit consistency", synopsis: "OLD NEW [--key KEY]...",
		summary: "prove that checkpoint NEW extends checkpoint OLD: the log only grew (needs audit:read)",
		flags: func(fs *flag.FlagSet) {
			keyFlag(fs)
		},
		run: auditConsistency,
	},
}

// auditEvent is an event of a history as the query service sends it: the
// envelope and its stream sequence.
type auditEvent struct {
	Sequence    uint64          `json:"sequence"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Schema      int             `json:"schema"`
	Tenant      string          `json:"tenant"`
	Aggregate   string          `json:"aggregate"`
	AggregateID string          `json:"aggregate_id"`
	Version     uint64          `json:"version"`
	OccurredAt  time.Time       `json:"occurred_at"`
	Actor       auditActor      `json:"actor"`
	Trace       string          `json:"trace,omitempty"`
	Prev        string          `json:"prev"`
	Hash        string          `json:"hash"`
	Data        json.RawMessage `json:"data"`
}

type auditActor struct {
	Tenant string `json:"tenant,omitempty"`
	Sub    string `json:"sub"`
}

// auditState is the answer of a history with as_of.
type auditState struct {
	AsOf    time.Time      `json:"as_of"`
	Version uint64         `json:"version"`
	State   map[string]any `json:"state"`
}

func auditHistory(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "USER_ID"); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	path := pathf("/t/%s/users/%s/history", tenant, args[0])
	if asOf := flagString(fs, "as-of"); asOf != "" {
		if _, err := time.Parse(time.RFC3339Nano, asOf); err != nil {
			return usageErrorf("--as-of must be an RFC 3339 instant such as 2025-03-14T10:00:00Z, got %q", asOf)
		}
		var st auditState
		if err := in.read(ctx, tenant, path, url.Values{"as_of": {asOf}}, &st); err != nil {
			return err
		}
		if in.opts.json {
			return printJSON(in.env.Out, st)
		}
		return printState(in.env.Out, st)
	}
	var h struct {
		Events []auditEvent `json:"events"`
	}
	if err := in.read(ctx, tenant, path, nil, &h); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, h.Events)
	}
	t := newTable(in.env.Out, "VERSION", "TIME", "TYPE", "ACTOR", "DETAIL", "HASH")
	for _, e := range h.Events {
		t.row(strconv.FormatUint(e.Version, 10), e.OccurredAt.UTC().Format(time.RFC3339), e.Type,
			actorString(e.Tenant, e.Actor), detail(e.Data), shortHash(e.Hash))
	}
	return t.flush()
}

// actorString is "system", the user id of a user of the event's tenant,
// or "<tenant>/<user id>" for a user of another (a platform admin).
func actorString(tenant string, a auditActor) string {
	if a.Tenant == "" || a.Tenant == tenant {
		return a.Sub
	}
	return a.Tenant + "/" + a.Sub
}

// detail summarises an event's data for the table: its plain string,
// number and boolean members, and lists of strings. Objects (a sealed
// credential, a public key) are left out.
func detail(data json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			parts = append(parts, k+"="+v)
		case float64, bool:
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		case []any:
			var items []string
			for _, it := range v {
				if s, ok := it.(string); ok {
					items = append(items, s)
				}
			}
			parts = append(parts, k+"="+strings.Join(items, ","))
		}
	}
	return strings.Join(parts, " ")
}

// shortHash is the first 12 hex digits of a hash, enough to tell events
// apart at a glance.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// stateKeys are the state members printed first, in this order; others
// follow by name.
var stateKeys = []string{"id", "name", "user_id", "username", "status", "reason", "roles", "permissions", "description"}

func printState(w io.Writer, st auditState) error {
	kv := []string{"as of", st.AsOf.UTC().Format(time.RFC3339Nano), "version", strconv.FormatUint(st.Version, 10)}
	seen := map[string]bool{}
	add := func(k string) {
		v, ok := st.State[k]
		if !ok || seen[k] {
			return
		}
		seen[k] = true
		switch v := v.(type) {
		case []any:
			items := make([]string, 0, len(v))
			for _, it := range v {
				items = append(items, fmt.Sprint(it))
			}
			kv = append(kv, k, strings.Join(items, ","))
		default:
			kv = append(kv, k, fmt.Sprint(v))
		}
	}
	for _, k := range stateKeys {
		add(k)
	}
	rest := make([]string, 0, len(st.State))
	for k := range st.State {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	for _, k := range rest {
		add(k)
	}
	return fields(w, kv...)
}

// exportResult is what audit export prints.
type exportResult struct {
	Tenant string `json:"tenant"`
	User   string `json:"user,omitempty"`
	Events int    `json:"events"`
	File   string `json:"file"`
}

// outAndTenant reads the --out and --tenant of a command that writes a
// file and takes no argument.
func (in *inv) outAndTenant(fs *flag.FlagSet, args []string) (out, tenant string, err error) {
	if err := wantArgs(args); err != nil {
		return "", "", err
	}
	if out = flagString(fs, "out"); out == "" {
		return "", "", usageErrorf("--out is required")
	}
	tenant, err = in.tenant(flagString(fs, "tenant"))
	return out, tenant, err
}

func auditExport(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	out, tenant, err := in.outAndTenant(fs, args)
	if err != nil {
		return err
	}
	user := flagString(fs, "user")
	resp, err := in.openEvents(ctx, tenant, user)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	// Write beside the target and rename at the end, so that a failed
	// export never leaves a file that looks complete.
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	// Both are for the failure paths: the file is closed and renamed at the
	// end of a successful export.
	defer os.Remove(tmp.Name()) //nolint:errcheck // see above
	defer tmp.Close()           //nolint:errcheck // see above

	var bar *progressbar.ProgressBar
	if !in.opts.json {
		total := int64(-1)
		if n, err := strconv.ParseInt(resp.Header.Get("Event-Count"), 10, 64); err == nil && n >= 0 {
			total = n
		}
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(in.env.Err),
			progressbar.OptionSetDescription("exporting "+exportWhat(tenant, user)),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	w := bufio.NewWriter(tmp)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	n := 0
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			if !json.Valid(line) {
				return fmt.Errorf("export: the query service sent line %d that is not JSON", n+1)
			}
			if _, err := w.Write(append(line, '\n')); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			n++
			if bar != nil {
				if bar.GetMax64() >= 0 && int64(n) > bar.GetMax64() {
					bar.ChangeMax64(int64(n))
				}
				_ = bar.Add(1)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A cut connection: the service failed after the first line.
			return fmt.Errorf("export interrupted after %d events: %s", n, config.Cause(err))
		}
	}
	if bar != nil {
		if bar.GetMax64() != int64(n) {
			bar.ChangeMax64(int64(n))
		}
		_ = bar.Finish()
		fmt.Fprintln(in.env.Err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	res := exportResult{Tenant: tenant, User: user, Events: n, File: out}
	if in.opts.json {
		return printJSON(in.env.Out, res)
	}
	fmt.Fprintf(in.env.Out, "exported %d events of %s to %s\n", n, exportWhat(tenant, user), out)
	return nil
}

func exportWhat(tenant, user string) string {
	if user != "" {
		return "user " + user + " of tenant " + tenant
	}
	return "tenant " + tenant
}

// openEvents starts a JSON Lines read of a tenant's log, or of one user's
// history, from the query service. The caller closes the body.
func (in *inv) openEvents(ctx context.Context, tenant, user string) (*http.Response, error) {
	path := pathf("/t/%s/audit/events", tenant)
	if user != "" {
		path = pathf("/t/%s/users/%s/history", tenant, user)
	}
	tok, err := in.token(ctx, tenant)
	if err != nil {
		return nil, err
	}
	h, err := in.consistency(tenant)
	if err != nil {
		return nil, err
	}
	u := in.opts.queryURL + path + "?" + url.Values{"format": {"jsonl"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("query service URL %s: %w", in.opts.queryURL, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/jsonl, application/problem+json")
	req.Header.Set("User-Agent", "authctl")
	req.Header.Set("Authorization", "Bearer "+tok)
	// An export may outlast the client's timeout for ordinary answers;
	// ctx (Ctrl-C) still ends it.
	client := *in.env.HTTP
	client.Timeout = 0
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach the query service at %s: %s", in.opts.queryURL, config.Cause(err))
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		return nil, apiError(resp, raw)
	}
	return resp, nil
}

func auditVerify(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	tenantFlagValue, user, ckpt := flagString(fs, "tenant"), flagString(fs, "user"), flagString(fs, "checkpoint")
	keys, err := verifierKeys(fs)
	if err != nil {
		return err
	}
	var (
		src  io.Reader
		what string
	)
	switch {
	case len(args) > 1:
		return usageErrorf("unexpected argument %q", args[1])
	case len(args) == 1 && (tenantFlagValue != "" || user != ""):
		return usageErrorf("give a FILE or --tenant/--user for the live log, not both")
	case ckpt != "" && (len(args) == 0 || len(keys) == 0):
		return usageErrorf("--checkpoint needs an export FILE and the --key that signs it: the proof is offline")
	case len(args) == 1:
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		defer f.Close() //nolint:errcheck // read only
		src, what = f, args[0]
	default:
		tenant, err := in.tenant(tenantFlagValue)
		if err != nil {
			return err
		}
		resp, err := in.openEvents(ctx, tenant, user)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		src, what = resp.Body, "the live log of "+exportWhat(tenant, user)
	}
	var cp *auditlog.Checkpoint
	if ckpt != "" {
		c, err := readCheckpoint(ckpt, keys)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		cp = &c
	}
	var leaves []leafLine
	v, err := verifyLines(src, &leaves)
	if err != nil {
		return fmt.Errorf("verify %s: %s", what, config.Cause(err))
	}
	if cp != nil && v.Broken == nil {
		tv := verifyTree(leaves, *cp)
		v.Tree = &tv
		v.OK = tv.OK
	}
	if in.opts.json {
		if err := printJSON(in.env.Out, v); err != nil {
			return err
		}
	}
	switch {
	case v.Broken != nil:
		return errors.New(v.Broken.String())
	case v.Tree != nil && !v.Tree.OK:
		return errors.New(v.Tree.String())
	case in.opts.json:
	case v.Tree != nil:
		fmt.Fprintf(in.env.Out, "%s verifies: %d events in %d aggregates, every hash and link recomputed, and exactly the %d events the checkpoint of %s signs\n",
			what, v.Events, v.Aggregates, v.Tree.Size, v.Tree.Origin)
	default:
		fmt.Fprintf(in.env.Out, "%s verifies: %d events in %d aggregates, every hash and link recomputed\n", what, v.Events, v.Aggregates)
	}
	return nil
}
