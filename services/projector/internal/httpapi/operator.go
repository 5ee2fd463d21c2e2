package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/operators"
	"github.com/authstream/authstream/services/projector/internal/rebuild"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/go-chi/chi/v5"
)

// maxBodyBytes bounds the operator API's bodies, which hold one field.
const maxBodyBytes = 4 << 10

// OperatorConfig is what the operator API needs.
type OperatorConfig struct {
	// Projections is what the endpoints act on; Log, JS and Pool are
	// required.
	Projections runner.Deps
	// PublicURL is the query service's external base URL: platform tokens
	// are issued by <PublicURL>/t/platform.
	PublicURL string
}

// Operator serves the operator endpoints: projection status, quarantined
// tenants and skipped messages, rebuilds run as background jobs, and the
// resume of quarantined tenants. Every
// endpoint needs a bearer token of a platform user holding
// projections:write (projections:read is enough to look). Close stops the
// running jobs.
type Operator struct {
	d    runner.Deps
	auth *operators.Authenticator
	jobs *rebuild.Jobs
}

// NewOperator checks cfg and returns an Operator. It opens nothing yet:
// the signing key store is opened by the first authenticated request.
func NewOperator(cfg OperatorConfig) (*Operator, error) {
	d := cfg.Projections
	if d.Log == nil || d.JS == nil || d.Pool == nil {
		return nil, errors.New("operator api: Log, JS and Pool are required")
	}
	auth, err := operators.New(d.JS, d.Pool, cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("operator api: %w", err)
	}
	jobs, err := rebuild.NewJobs(d)
	if err != nil {
		return nil, fmt.Errorf("operator api: %w", err)
	}
	return &Operator{d: d, auth: auth, jobs: jobs}, nil
}

// Close stops the running jobs, waits for them and closes the key store.
// A full rebuild cut short keeps its building generation; the next rebuild
// continues it.
func (o *Operator) Close() error {
	o.jobs.Close()
	return o.auth.Close()
}

// Permissions of the operator API. A caller holding projections:write may
// also read: whoever may rebuild a projection may see its state.
var (
	permProjectionsRead  = authz.MustParse("projections:read")
	permProjectionsWrite = authz.MustParse("projections:write")
)

// callerKey is the request context key of the authenticated caller.
type callerKey struct{}

var errNoOperator = fault.New(fault.Unavailable, "not-configured", "the operator API is not configured")

// operatorHandlers are the handlers of the operator endpoints; op may be
// nil (the routes then answer 503).
type operatorHandlers struct {
	op  *Operator
	log *slog.Logger
}

func (h *operatorHandlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpserver.WriteError(w, r, h.log, err)
}

// verify is the authentication middleware's check of a bearer token: the
// request goes on with the caller in its context.
func (h *operatorHandlers) verify(r *http.Request, token string) (*http.Request, error) {
	if h.op == nil {
		return r, errNoOperator
	}
	c, err := h.op.auth.Authenticate(r.Context(), token)
	if err != nil {
		return r, err
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), nil
}

// begin checks that the authenticated caller holds one of perms. On
// failure it has answered and returns false.
func (h *operatorHandlers) begin(w http.ResponseWriter, r *http.Request, perms ...authz.Permission) bool {
	c, ok := r.Context().Value(callerKey{}).(operators.Caller)
	if !ok {
		// Only a route registered outside the authenticated group gets here.
		h.fail(w, r, httpserver.ErrMissingToken)
		return false
	}
	if err := c.Require(perms...); err != nil {
		h.fail(w, r, err)
		return false
	}
	return true
}

// decodeOptional decodes a JSON body into dst unless the request has none.
func decodeOptional(w http.ResponseWriter, r *http.Request, dst any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return httpserver.DecodeJSON(w, r, dst, httpserver.WithMaxBytes(maxBodyBytes))
}

// named begins a request on /projections/{name}/...: the caller holds one
// of perms, and name is a projection (withGeneration: or
// "<projection>@<generation>"). On failure it has answered and returns
// false.
func (h *operatorHandlers) named(w http.ResponseWriter, r *http.Request, withGeneration bool, perms ...authz.Permission) (string, bool) {
	if !h.begin(w, r, perms...) {
		return "", false
	}
	name := chi.URLParam(r, "name")
	if err := knownProjection(name, withGeneration); err != nil {
		h.fail(w, r, err)
		return "", false
	}
	return name, true
}

// knownProjection returns a fault.NotFound for a name that is no
// projection; withGeneration also accepts "<name>@<generation>".
func knownProjection(name string, withGeneration bool) error {
	base := name
	if withGeneration {
		base, _, _ = strings.Cut(name, "@")
	}
	if base != accounts.Name {
		return fault.New(fault.NotFound, "unknown-projection", fmt.Sprintf("no projection %q (there is %q)", name, accounts.Name))
	}
	return nil
}

// unavailable turns an error without a fault code (a database or broker
// failure below the handlers) into a 503 rather than a 500:
// they are outages, not bugs.
func unavailable(err error) error {
	if _, ok := errors.AsType[*fault.Error](err); ok {
		return err
	}
	return fault.Wrap(fault.Unavailable, err, "the read model or the event log is unavailable")
}
