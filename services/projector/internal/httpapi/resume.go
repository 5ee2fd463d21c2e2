package httpapi

import (
	"net/http"
	"strconv"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/go-chi/chi/v5"
)

// ResumeRequest is the body of the resume endpoints.
type ResumeRequest struct {
	// Skip passes the event a tenant stopped at for good (it is never
	// applied, in any generation or rebuild); without it the event is
	// retried.
	Skip bool `json:"skip"`
}

// ResumeResponse says which quarantined tenants the action was recorded
// on. The worker that holds their partition carries it out between two
// of its batches, within a second or so when the partition is idle; the
// quarantine list then no longer shows them, or shows them stopped at a
// later event.
type ResumeResponse struct {
	Projection string             `json:"projection"`
	Partition  *int               `json:"partition,omitempty"`
	Tenant     string             `json:"tenant,omitempty"`
	Skip       bool               `json:"skip"`
	Tenants    []TenantQuarantine `json:"tenants"`
}

// beginResume begins a resume: the caller may act, the projection exists,
// the body decodes. On failure it has answered and returns false.
func (h *operatorHandlers) beginResume(w http.ResponseWriter, r *http.Request) (string, ResumeRequest, bool) {
	var body ResumeRequest
	name, ok := h.named(w, r, true, permProjectionsWrite)
	if !ok {
		return "", body, false
	}
	if err := decodeOptional(w, r, &body); err != nil {
		h.fail(w, r, err)
		return "", body, false
	}
	return name, body, true
}

// resumeTenant is POST /projections/{name}/tenants/{tenant}/resume: 202.
func (h *operatorHandlers) resumeTenant(w http.ResponseWriter, r *http.Request) {
	name, body, ok := h.beginResume(w, r)
	if !ok {
		return
	}
	tenant := chi.URLParam(r, "tenant")
	if err := authz.ValidTenantSlug(tenant); err != nil {
		h.fail(w, r, err)
		return
	}
	q, err := postgres.RequestResume(r.Context(), h.op.d.Pool, name, tenant, body.Skip)
	if err != nil {
		h.fail(w, r, unavailable(err))
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, ResumeResponse{
		Projection: name, Tenant: tenant, Skip: body.Skip, Tenants: tenantQuarantines([]postgres.Quarantine{q}),
	})
}

// resumePartition is POST /projections/{name}/partitions/{partition}/resume:
// the action for every quarantined tenant of the partition; 202.
func (h *operatorHandlers) resumePartition(w http.ResponseWriter, r *http.Request) {
	name, body, ok := h.beginResume(w, r)
	if !ok {
		return
	}
	p, err := strconv.Atoi(chi.URLParam(r, "partition"))
	if err != nil {
		h.fail(w, r, fault.Errorf(fault.Invalid, "partition must be an integer, got %q", chi.URLParam(r, "partition")))
		return
	}
	qs, err := postgres.RequestPartitionResume(r.Context(), h.op.d.Pool, name, p, body.Skip)
	if err != nil {
		h.fail(w, r, unavailable(err))
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, ResumeResponse{
		Projection: name, Partition: &p, Skip: body.Skip, Tenants: tenantQuarantines(qs),
	})
}
