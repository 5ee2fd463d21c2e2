package httpapi

import (
	"net/http"
	"time"

	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/runner"
)

// PartitionStatus is one partition in GET /projections.
type PartitionStatus struct {
	Projection string    `json:"projection"`
	Generation int       `json:"generation"`
	State      string    `json:"state"`
	Partition  int       `json:"partition"`
	Checkpoint uint64    `json:"checkpoint"`
	UpdatedAt  time.Time `json:"updated_at"`
	LagEvents  uint64    `json:"lag_events"`
	LagSeconds float64   `json:"lag_seconds"`
	// QuarantinedTenants are the partition's tenants whose projection is
	// stopped at an event that cannot be applied; the partition goes on
	// for the others.
	QuarantinedTenants []TenantQuarantine `json:"quarantined_tenants,omitempty"`
}

// TenantQuarantine is the event a tenant's projection stopped at.
type TenantQuarantine struct {
	Projection string    `json:"projection"`
	Generation int       `json:"generation"`
	Tenant     string    `json:"tenant"`
	Partition  int       `json:"partition"`
	Seq        uint64    `json:"seq"`
	Subject    string    `json:"subject"`
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	Error      string    `json:"error"`
	At         time.Time `json:"at"`
	// Action is what an operator asked for and the partition's worker has
	// not carried out yet: "retry" or "skip".
	Action   string     `json:"action,omitempty"`
	ActionAt *time.Time `json:"action_at,omitempty"`
}

func tenantQuarantines(qs []postgres.Quarantine) []TenantQuarantine {
	out := make([]TenantQuarantine, 0, len(qs))
	for _, q := range qs {
		out = append(out, TenantQuarantine{
			Projection: q.Projection, Generation: q.Generation, Tenant: q.Tenant, Partition: q.Partition,
			Seq: q.Seq, Subject: q.Subject, EventID: q.EventID, EventType: q.EventType, Error: q.Error, At: q.At,
			Action: q.Action, ActionAt: q.ActionAt,
		})
	}
	return out
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
		p := PartitionStatus{
			Projection: s.Projection, Generation: s.Generation, State: s.State, Partition: s.Partition,
			Checkpoint: s.Checkpoint, UpdatedAt: s.UpdatedAt, LagEvents: s.LagEvents, LagSeconds: s.LagSeconds,
		}
		if len(s.Quarantined) > 0 {
			p.QuarantinedTenants = tenantQuarantines(s.Quarantined)
		}
		out.Items = append(out.Items, p)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, out)
}
