package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/operators"
	"github.com/authstream/authstream/services/projector/internal/postgres"
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

// Operator serves the operator endpoints: projection status, rebuilds run
// as background jobs, and the resume of a quarantined partition. Every
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

// PartitionStatus is one partition in GET /projections.
type PartitionStatus struct {
	Projection string      `json:"projection"`
	Generation int         `json:"generation"`
	State      string      `json:"state"`
	Partition  int         `json:"partition"`
	Checkpoint uint64      `json:"checkpoint"`
	UpdatedAt  time.Time   `json:"updated_at"`
	LagEvents  uint64      `json:"lag_events"`
	LagSeconds float64     `json:"lag_seconds"`
	Quarantine *Quarantine `json:"quarantine,omitempty"`
}

// Quarantine is the event a partition stopped at.
type Quarantine struct {
	Seq       uint64    `json:"seq"`
	Subject   string    `json:"subject"`
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
}

func quarantineOf(q *postgres.Quarantine) *Quarantine {
	if q == nil {
		return nil
	}
	return &Quarantine{Seq: q.Seq, Subject: q.Subject, EventID: q.EventID, EventType: q.EventType, Error: q.Error, At: q.At}
}

// status is GET /projections: every partition of every active or building
// generation.
func (h *operatorHandlers) status(w http.ResponseWriter, r *http.Request) {
	if !h.begin(w, r, permProjectionsRead, permProjectionsWrite) {
		return
	}
	list, err := runner.Status(r.Context(), h.op.d)
	if err != nil {
		h.fail(w, r, unavailable(err))
		return
	}
	out := struct {
		Items []PartitionStatus `json:"items"`
	}{Items: make([]PartitionStatus, 0, len(list))}
	for _, s := range list {
		out.Items = append(out.Items, PartitionStatus{
			Projection: s.Projection, Generation: s.Generation, State: s.State, Partition: s.Partition,
			Checkpoint: s.Checkpoint, UpdatedAt: s.UpdatedAt, LagEvents: s.LagEvents, LagSeconds: s.LagSeconds,
			Quarantine: quarantineOf(s.Quarantine),
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, out)
}

// RebuildRequest is the body of POST /projections/{name}/rebuild.
type RebuildRequest struct {
	// Tenant, when set, rebuilds only that tenant's rows of the live
	// generation; otherwise the whole projection is rebuilt into a new
	// generation and swapped in.
	Tenant string `json:"tenant,omitempty"`
	// Since, an RFC 3339 time, rebuilds the rows of the tenants whose first
	// event was stored at or after it (the tenants created since then),
	// one tenant after the other as for Tenant; older tenants are left
	// alone. It excludes Tenant and may not be in the future.
	Since string `json:"since,omitempty"`
}

// rebuild is POST /projections/{name}/rebuild: 202 with the job.
func (h *operatorHandlers) rebuild(w http.ResponseWriter, r *http.Request) {
	if !h.begin(w, r, permProjectionsWrite) {
		return
	}
	var body RebuildRequest
	if err := decodeOptional(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	if err := knownProjection(name, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if body.Tenant != "" {
		if err := authz.ValidTenantSlug(body.Tenant); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	var since time.Time
	if body.Since != "" {
		t, err := time.Parse(time.RFC3339Nano, body.Since)
		if err != nil {
			h.fail(w, r, fault.New(fault.Invalid, "malformed-since",
				fmt.Sprintf("since must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", body.Since)))
			return
		}
		if err := rebuild.ValidSince(t, time.Now()); err != nil {
			h.fail(w, r, err)
			return
		}
		since = t
	}
	job, err := h.op.jobs.Start(r.Context(), name, body.Tenant, since)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/projections/jobs/"+job.ID)
	httpserver.WriteJSON(w, http.StatusAccepted, job)
}

// job is GET /projections/jobs/{id}.
func (h *operatorHandlers) job(w http.ResponseWriter, r *http.Request) {
	if !h.begin(w, r, permProjectionsRead, permProjectionsWrite) {
		return
	}
	job, ok := h.op.jobs.Get(chi.URLParam(r, "id"))
	if !ok {
		h.fail(w, r, fault.New(fault.NotFound, "unknown-job",
			"no such job in this projector process (jobs are kept in memory, by the process that started them)"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, job)
}

// ResumeRequest is the body of POST
// /projections/{name}/partitions/{partition}/resume.
type ResumeRequest struct {
	// Skip moves the checkpoint past the quarantined event, which is then
	// never applied; without it the event is retried.
	Skip bool `json:"skip"`
}

// ResumeResponse says which quarantine was lifted.
type ResumeResponse struct {
	Projection string     `json:"projection"`
	Partition  int        `json:"partition"`
	Skipped    bool       `json:"skipped"`
	Quarantine Quarantine `json:"quarantine"`
}

// resume is POST /projections/{name}/partitions/{partition}/resume.
func (h *operatorHandlers) resume(w http.ResponseWriter, r *http.Request) {
	if !h.begin(w, r, permProjectionsWrite) {
		return
	}
	var body ResumeRequest
	if err := decodeOptional(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	if err := knownProjection(name, true); err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := strconv.Atoi(chi.URLParam(r, "partition"))
	if err != nil {
		h.fail(w, r, fault.Errorf(fault.Invalid, "partition must be an integer, got %q", chi.URLParam(r, "partition")))
		return
	}
	q, err := postgres.Resume(r.Context(), h.op.d.Pool, h.op.d.Log, name, p, postgres.ResumeOptions{Skip: body.Skip})
	if err != nil {
		h.fail(w, r, unavailable(err))
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, ResumeResponse{
		Projection: name, Partition: p, Skipped: body.Skip, Quarantine: *quarantineOf(&q),
	})
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
