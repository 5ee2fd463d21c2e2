package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/authstream/authstream/libs/auditlog"
	"golang.org/x/mod/sumdb/tlog"
)

// The tenant's verifiable log (docs/auditing.md): its checkpoints, kept by
// auditors, prove offline that an export is exactly the log they sign,
// and that a later checkpoint extends an earlier one.

func keyFlag(fs *flag.FlagSet) {
	fs.Var(&stringList{}, "key", "a note verifier `key` (name+hash+base64), or a file holding such keys one a line (repeatable; default the keys the query service publishes)")
}

// checkpointResult is what audit checkpoint prints.
type checkpointResult struct {
	Origin string `json:"origin"`
	Size   int64  `json:"size"`
	Root   string `json:"root"`
	Key    string `json:"key"`
	File   string `json:"file"`
}

func auditCheckpoint(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	out, tenant, err := in.outAndTenant(fs, args)
	if err != nil {
		return err
	}
	note, err := in.auditText(ctx, tenant, "/t/%s/audit/checkpoint", nil)
	if err != nil {
		return err
	}
	keys, err := in.auditText(ctx, tenant, "/t/%s/audit/checkpoint/key", url.Values{"all": {"true"}})
	if err != nil {
		return err
	}
	cp, err := auditlog.Open(note, splitKeys(string(keys))...)
	if err != nil {
		return fmt.Errorf("the query service's checkpoint does not verify with the tenant's published keys: %w", err)
	}
	if err := os.WriteFile(out, note, 0o644); err != nil { //nolint:gosec // G306: a checkpoint is public evidence, meant to be shared
		return fmt.Errorf("checkpoint: %w", err)
	}
	res := checkpointResult{Origin: cp.Origin, Size: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Root[:]),
		Key: splitKeys(string(keys))[0], File: out}
	if in.opts.json {
		return printJSON(in.env.Out, res)
	}
	fmt.Fprintf(in.env.Out, "kept the checkpoint of %s at size %d (root %s) in %s\nits verifier key: %s\n",
		res.Origin, res.Size, res.Root, out, res.Key)
	return nil
}

// auditText reads a text/plain answer of the query service for tenant.
func (in *inv) auditText(ctx context.Context, tenant, format string, query url.Values) ([]byte, error) {
	tok, err := in.token(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var raw []byte
	_, err = in.do(ctx, call{service: "query", base: in.opts.queryURL, method: http.MethodGet,
		path: pathf(format, tenant), query: query, token: tok, raw: &raw})
	return raw, err
}

// splitKeys returns the non-blank lines of s.
func splitKeys(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// verifierKeys returns the keys of --key: each a note verifier key, or a
// file of them.
func verifierKeys(fs *flag.FlagSet) ([]string, error) {
	var out []string
	for _, k := range *fs.Lookup("key").Value.(*stringList) {
		b, err := os.ReadFile(k)
		switch {
		case err == nil:
			out = append(out, splitKeys(string(b))...)
		case strings.Count(k, "+") >= 2:
			out = append(out, k) // a key, not a file
		default:
			return nil, fmt.Errorf("--key %s: neither a verifier key nor a readable file: %w", k, err)
		}
	}
	return out, nil
}

// readCheckpoint reads a signed checkpoint from a file and, with keys,
// verifies it; without keys it only reads what it says.
func readCheckpoint(path string, keys []string) (auditlog.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return auditlog.Checkpoint{}, err
	}
	if len(keys) == 0 {
		return auditlog.Unverified(b)
	}
	cp, err := auditlog.Open(b, keys...)
	if err != nil {
		return auditlog.Checkpoint{}, fmt.Errorf("checkpoint %s does not verify: %w", path, err)
	}
	return cp, nil
}

// tenantOf returns the tenant of a log's origin (".../t/<tenant>").
func tenantOf(origin string) (string, error) {
	i := strings.LastIndex(origin, "/t/")
	if i < 0 || strings.Contains(origin[i+3:], "/") || origin[i+3:] == "" {
		return "", fmt.Errorf("origin %q names no tenant", origin)
	}
	return origin[i+3:], nil
}

// consistencyResult is what audit consistency prints.
type consistencyResult struct {
	OK      bool   `json:"ok"`
	Origin  string `json:"origin"`
	From    int64  `json:"from"`
	To      int64  `json:"to"`
	Problem string `json:"problem,omitempty"`
}

func auditConsistency(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args, "OLD", "NEW"); err != nil {
		return err
	}
	keys, err := verifierKeys(fs)
	if err != nil {
		return err
	}
	old, err := readCheckpoint(args[0], nil)
	if err != nil {
		return fmt.Errorf("consistency: %w", err)
	}
	tenant, err := tenantOf(old.Origin)
	if err != nil {
		return fmt.Errorf("consistency: %s: %w", args[0], err)
	}
	published := len(keys) == 0
	if published {
		raw, err := in.auditText(ctx, tenant, "/t/%s/audit/checkpoint/key", url.Values{"all": {"true"}})
		if err != nil {
			return err
		}
		keys = splitKeys(string(raw))
	}
	if old, err = readCheckpoint(args[0], keys); err != nil {
		return fmt.Errorf("consistency: %w", err)
	}
	cur, err := readCheckpoint(args[1], keys)
	if err != nil {
		return fmt.Errorf("consistency: %w", err)
	}
	res := consistencyResult{Origin: old.Origin, From: old.Size, To: cur.Size}
	switch {
	case cur.Origin != old.Origin:
		res.Problem = fmt.Sprintf("%s is a checkpoint of %s, %s of %s: two different logs", args[0], old.Origin, args[1], cur.Origin)
	case cur.Size < old.Size:
		res.Problem = fmt.Sprintf("%s (size %d) is older than %s (size %d): give the older one first", args[1], cur.Size, args[0], old.Size)
	case cur.Size == old.Size && cur.Root != old.Root:
		res.Problem = fmt.Sprintf("both sign size %d with different roots: the log was rewritten (a fork)", cur.Size)
	case cur.Size > old.Size:
		var proof struct {
			Hashes []tlog.Hash `json:"hashes"`
		}
		tok, err := in.token(ctx, tenant)
		if err != nil {
			return err
		}
		if _, err := in.do(ctx, call{service: "query", base: in.opts.queryURL, method: http.MethodGet,
			path: pathf("/t/%s/audit/proof/consistency", tenant), token: tok, out: &proof,
			query: url.Values{"from": {strconv.FormatInt(old.Size, 10)}, "to": {strconv.FormatInt(cur.Size, 10)}}}); err != nil {
			return err
		}
		if err := tlog.CheckTree(proof.Hashes, cur.Size, cur.Root, old.Size, old.Root); err != nil {
			res.Problem = fmt.Sprintf("the log of size %d is not a prefix of the log of size %d: the log was rewritten after size %d signed it (%v)",
				old.Size, cur.Size, old.Size, err)
		}
	}
	res.OK = res.Problem == ""
	if in.opts.json {
		if err := printJSON(in.env.Out, res); err != nil {
			return err
		}
	}
	if !res.OK {
		return errors.New("not consistent: " + res.Problem)
	}
	if !in.opts.json {
		how := "with the keys given"
		if published {
			how = "with the keys the query service publishes"
		}
		fmt.Fprintf(in.env.Out, "consistent: the log of %s at size %d is a prefix of the log at size %d (signatures checked %s)\n",
			res.Origin, res.From, res.To, how)
	}
	return nil
}

// leafLine is a line of an export as a leaf of the tenant's tree.
type leafLine struct {
	line   int
	hash   string
	seq    uint64
	hasSeq bool
}

// TreeVerdict is the outcome of checking an export against a checkpoint:
// whether its lines are exactly the leaves the checkpoint signs.
type TreeVerdict struct {
	OK     bool   `json:"ok"`
	Origin string `json:"origin"`
	Size   int64  `json:"size"`   // the checkpoint's
	Events int    `json:"events"` // the export's
	// Line is the first offending line, when the export names it; 0 when
	// only the sizes or the root tell.
	Line    int    `json:"line,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// String is the one-line report of a failed verdict.
func (v TreeVerdict) String() string {
	if v.Line > 0 {
		return fmt.Sprintf("not the log the checkpoint signs, from line %d: %s", v.Line, v.Problem)
	}
	return "not the log the checkpoint signs: " + v.Problem
}

// verifyTree checks that leaves, the lines of an export in order, are
// exactly the first cp.Size leaves of the log cp signs: same number, same
// root. Stream sequences must grow line after line.
func verifyTree(leaves []leafLine, cp auditlog.Checkpoint) TreeVerdict {
	v := TreeVerdict{Origin: cp.Origin, Size: cp.Size, Events: len(leaves)}
	for i := 1; i < len(leaves); i++ {
		if a, b := leaves[i-1], leaves[i]; a.hasSeq && b.hasSeq && b.seq <= a.seq {
			v.Line, v.Problem = b.line, fmt.Sprintf("sequence %d comes after %d: events reordered", b.seq, a.seq)
			return v
		}
	}
	var tree auditlog.Tree
	for _, l := range leaves[:min(int64(len(leaves)), cp.Size)] {
		if err := tree.Append(l.hash); err != nil {
			v.Line, v.Problem = l.line, err.Error()
			return v
		}
	}
	if int64(len(leaves)) < cp.Size {
		v.Problem = fmt.Sprintf("the checkpoint signs %d events, the export holds %d: %d missing (events cut off, or whole accounts left out)",
			cp.Size, len(leaves), cp.Size-int64(len(leaves)))
		return v
	}
	root, err := tree.Root(cp.Size)
	if err != nil {
		v.Problem = err.Error()
		return v
	}
	switch {
	case root != cp.Root && int64(len(leaves)) > cp.Size:
		v.Problem = fmt.Sprintf("its first %d lines do not hash to the checkpoint's root, and %d more follow: events inserted or altered",
			cp.Size, int64(len(leaves))-cp.Size)
	case root != cp.Root:
		v.Problem = fmt.Sprintf("its %d lines do not hash to the checkpoint's root: an event was left out and another inserted, altered or moved", cp.Size)
	case int64(len(leaves)) > cp.Size:
		v.Line = leaves[cp.Size].line
		v.Problem = fmt.Sprintf("the checkpoint signs %d events, the export holds %d: the lines after %d are not covered (the export is longer; keep a later checkpoint)",
			cp.Size, len(leaves), cp.Size)
	default:
		v.OK = true
	}
	return v
}
