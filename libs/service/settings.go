package service

import (
	"slices"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/readmodel"
)

// The settings more than one service reads, read the same way everywhere
// so that the all-in-one binary, which reads every service's, reports a
// bad value once.

// kekHint says how to make a key-encryption key.
const kekHint = "base64 of 32 random bytes, e.g. from `openssl rand -base64 32`"

// ReadKEK reads AUTH_KEK (comma-separated "id:base64" keys, newest first),
// or returns nil when it is unset: the all-in-one binary generates one, and
// RequireKEK reports it missing elsewhere.
func ReadKEK(r *config.Reader) *events.Keyring {
	v, ok := r.Lookup("AUTH_KEK")
	if !ok {
		return nil
	}
	kek, err := events.ParseKeyring(v)
	if err != nil {
		r.Problemf("AUTH_KEK", "%v (want %s)", err, kekHint)
	}
	return kek
}

// RequireKEK records on r that a service that seals or opens secrets has no
// key-encryption key.
func RequireKEK(r *config.Reader, kek *events.Keyring) {
	if kek == nil {
		r.Problemf("AUTH_KEK", "required (%s)", kekHint)
	}
}

// ReadPublicURL reads AUTH_PUBLIC_URL, the externally visible base URL of
// the query service (issuers are <public URL>/t/<tenant>), without a
// trailing slash.
func ReadPublicURL(r *config.Reader) string {
	return strings.TrimRight(r.URL("AUTH_PUBLIC_URL", "http://127.0.0.1:8080", "http", "https"), "/")
}

// ReadActivityRetention reads AUTH_ACTIVITY_RETENTION, how long sign-in and
// session events are kept: 0 (forever) or at least the streams' duplicate
// window, within which a shorter age would defeat de-duplication.
func ReadActivityRetention(r *config.Reader) time.Duration {
	d := r.Duration("AUTH_ACTIVITY_RETENTION", 0, 0, 100*365*24*time.Hour)
	if d != 0 && d < eventstore.DefaultDuplicateWindow {
		r.Problemf("AUTH_ACTIVITY_RETENTION", "must be 0 (keep forever) or at least %s, got %s", eventstore.DefaultDuplicateWindow, d)
		return 0
	}
	return d
}

// ReadStreamReplicas reads AUTH_STREAM_REPLICAS, the replication factor of
// the event streams and the key bucket: 1 for a single server, 3 in
// production.
func ReadStreamReplicas(r *config.Reader) int { return r.Int("AUTH_STREAM_REPLICAS", 1, 1, 5) }

// ReadBcryptCost reads AUTH_BCRYPT_COST.
func ReadBcryptCost(r *config.Reader) int { return r.Int("AUTH_BCRYPT_COST", 12, 4, 31) }

// CheckBcryptCost records a cost bcrypt refuses.
func CheckBcryptCost(r *config.Reader, cost int) {
	if cost < 4 || cost > 31 {
		r.Problemf("AUTH_BCRYPT_COST", "must be an integer between 4 and 31, got %d", cost)
	}
}

// DefaultDatabaseURL is the read model database when DATABASE_URL is unset:
// the local server, without TLS, which on loopback only costs CPU (pgx
// would otherwise try TLS first when the server offers it).
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/authstream?sslmode=disable"

// ReadDatabaseURL reads DATABASE_URL, the read model database of the
// services that keep or read projections.
func ReadDatabaseURL(r *config.Reader) config.Secret {
	u := config.Secret(r.String("DATABASE_URL", DefaultDatabaseURL))
	CheckDatabaseURL(r, u)
	return u
}

// CheckDatabaseURL records a DATABASE_URL PostgreSQL cannot parse.
func CheckDatabaseURL(r *config.Reader, u config.Secret) {
	if problem := readmodel.CheckURL(u.Reveal()); problem != "" {
		r.Problemf("DATABASE_URL", "%s", problem)
	}
}

// ReadMetricsTenants reads AUTH_METRICS_TENANTS, the comma-separated
// tenant slugs whose measurements carry a tenant label in the domain
// metrics (telemetry.WithMetricTenants). Keep it to a handful: each
// tenant named adds a series to every labelled family.
func ReadMetricsTenants(r *config.Reader) []string {
	v, ok := r.Lookup("AUTH_METRICS_TENANTS")
	if !ok {
		return nil
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" || slices.Contains(out, item) {
			continue
		}
		if err := authz.ValidTenantSlug(item); err != nil {
			r.Problemf("AUTH_METRICS_TENANTS", "%q is not a tenant slug (want comma-separated slugs like acme,globex)", item)
			return nil
		}
		if len(out) == maxMetricsTenants {
			r.Problemf("AUTH_METRICS_TENANTS", "names more than %d tenants: each adds a series to every labelled metric", maxMetricsTenants)
			return nil
		}
		out = append(out, item)
	}
	return out
}

// maxMetricsTenants bounds AUTH_METRICS_TENANTS: the allow-list is for a
// few tenants watched apart, not a way back to a label per tenant.
const maxMetricsTenants = 100

// ReadWebhookAllowPrivate reads AUTH_WEBHOOK_ALLOW_PRIVATE: whether webhook
// endpoints may be plain http and private, loopback or link-local
// addresses (development and tests); false by default.
func ReadWebhookAllowPrivate(r *config.Reader) bool {
	return r.Bool("AUTH_WEBHOOK_ALLOW_PRIVATE", false)
}
