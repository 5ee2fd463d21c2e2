package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"
)

var keyCommands = []*command{
	{
		name: "keys rotate", synopsis: "[--tenant T] [--alg A] [--overlap D]",
		summary: "give a tenant new signing keys; the old ones verify until their tokens expire",
		flags: func(fs *flag.FlagSet) {
			tenantFlag(fs)
			fs.String("alg", "", "the new access-token key's `algorithm`: EdDSA, ES256 or RS256 (default: the current one's)")
			fs.Duration("overlap", 0, "how long the retired key stays in the JWKS (`duration`, whole seconds; default 16m, the token lifetime plus leeway)")
		},
		run: keysRotate,
	},
	{
		name: "keys rotate-audit", synopsis: "[--tenant T]",
		summary: "give a tenant a new audit key, which signs its checkpoints from now on; the old one stays published",
		flags:   tenantFlag,
		run:     keysRotateAudit,
	},
	{
		name: "keys list", synopsis: "[--tenant T]",
		summary: "list the keys a tenant publishes in its JWKS, newest first",
		flags:   tenantFlag,
		run:     keysList,
	},
}

// keyRotation is the answer of POST /t/{tenant}/keys/rotate: the new
// access-token key, every new key (that one first) and the retired keys.
type keyRotation struct {
	KID        string       `json:"kid"`
	Alg        string       `json:"alg"`
	ActiveFrom time.Time    `json:"active_from"`
	Keys       []newKey     `json:"keys"`
	Retired    []retiredKey `json:"retired"`
}

// newKey is a key a rotation put in place.
type newKey struct {
	KID        string    `json:"kid"`
	Alg        string    `json:"alg"`
	ActiveFrom time.Time `json:"active_from"`
}

// retiredKey is a key a rotation retired.
type retiredKey struct {
	KID      string    `json:"kid"`
	RemoveAt time.Time `json:"remove_at"`
}

func keysRotate(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	overlap := fs.Lookup("overlap").Value.(flag.Getter).Get().(time.Duration)
	if overlap < 0 || overlap%time.Second != 0 {
		return usageErrorf("--overlap must be a positive whole number of seconds (20m, 1h30m, 90s)")
	}
	body := map[string]any{}
	if alg := flagString(fs, "alg"); alg != "" {
		body["alg"] = alg
	}
	if overlap > 0 {
		body["overlap_seconds"] = int64(overlap / time.Second)
	}
	var out keyRotation
	if err := in.command(ctx, tenant, tenant, http.MethodPost, pathf("/t/%s/keys/rotate", tenant), body, &out); err != nil {
		return err
	}
	if out.Keys == nil {
		out.Keys = []newKey{}
	}
	if out.Retired == nil {
		out.Retired = []retiredKey{}
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	fmt.Fprintf(in.env.Out, "tenant %s signs with key %s (%s) from %s\n", tenant, out.KID, out.Alg, out.ActiveFrom.UTC().Format(time.RFC3339))
	for _, k := range out.Keys {
		if k.KID != out.KID {
			fmt.Fprintf(in.env.Out, "its %s key for ID tokens is %s from %s\n", k.Alg, k.KID, k.ActiveFrom.UTC().Format(time.RFC3339))
		}
	}
	for _, r := range out.Retired {
		fmt.Fprintf(in.env.Out, "key %s retired; it stays in the JWKS until %s\n", r.KID, r.RemoveAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// publishedKey is one key of a JWKS, public members only.
type publishedKey struct {
	KID string `json:"kid"`
	Alg string `json:"alg"`
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	Use string `json:"use"`
}

func keysList(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	// The JWKS is public: no login is needed to read it.
	var set struct {
		Keys []publishedKey `json:"keys"`
	}
	if _, err := in.do(ctx, call{
		service: "query", base: in.opts.queryURL, method: http.MethodGet,
		path: pathf("/t/%s/.well-known/jwks.json", tenant), out: &set,
	}); err != nil {
		return err
	}
	keys := set.Keys
	if keys == nil {
		keys = []publishedKey{}
	}
	if in.opts.json {
		return printJSON(in.env.Out, keys)
	}
	t := newTable(in.env.Out, "KID", "ALG", "KTY", "CRV", "USE")
	for _, k := range keys {
		t.row(k.KID, k.Alg, k.Kty, k.Crv, k.Use)
	}
	return t.flush()
}

// auditKeyRotation is the answer of POST /t/{tenant}/keys/audit/rotate.
type auditKeyRotation struct {
	KID        string    `json:"kid"`
	ActiveFrom time.Time `json:"active_from"`
	Retired    string    `json:"retired,omitempty"`
}

func keysRotateAudit(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	tenant, err := in.tenant(flagString(fs, "tenant"))
	if err != nil {
		return err
	}
	var out auditKeyRotation
	if err := in.command(ctx, tenant, tenant, http.MethodPost, pathf("/t/%s/keys/audit/rotate", tenant), nil, &out); err != nil {
		return err
	}
	if in.opts.json {
		return printJSON(in.env.Out, out)
	}
	fmt.Fprintf(in.env.Out, "audit key %s signs the checkpoints of tenant %s from %s", out.KID, tenant, out.ActiveFrom.Format(time.RFC3339))
	if out.Retired != "" {
		fmt.Fprintf(in.env.Out, "; %s is retired and stays published", out.Retired)
	}
	fmt.Fprintln(in.env.Out)
	return nil
}
