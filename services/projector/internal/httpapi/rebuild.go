package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/projector/internal/rebuild"
	"github.com/go-chi/chi/v5"
)

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
