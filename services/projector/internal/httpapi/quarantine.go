package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/projector/internal/postgres"
)

// Bounds of GET /projections/{name}/skipped.
const (
	defaultSkippedLimit = 100
	maxSkippedLimit     = 1000
)

// quarantine is GET /projections/{name}/quarantine: the quarantined
// tenants of the projection's active and building generations.
func (h *operatorHandlers) quarantine(w http.ResponseWriter, r *http.Request) {
	name, ok := h.named(w, r, false, permProjectionsRead, permProjectionsWrite)
	if !ok {
		return
	}
	qs, err := postgres.Quarantines(r.Context(), h.op.d.Pool, name)
	if err != nil {
		h.fail(w, r, unavailable(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Items []TenantQuarantine `json:"items"`
	}{tenantQuarantines(qs)})
}

// SkippedMessage is a message a projection passed without applying it:
// no event of the platform (reason undecodable, malformed-subject,
// subject-mismatch or unknown-tenant), or an event an operator skipped
// (skipped-by-operator).
type SkippedMessage struct {
	Seq       uint64    `json:"seq"`
	Partition int       `json:"partition"`
	Subject   string    `json:"subject"`
	Tenant    string    `json:"tenant,omitempty"`
	EventID   string    `json:"event_id,omitempty"`
	EventType string    `json:"event_type,omitempty"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
}

// skipped is GET /projections/{name}/skipped?limit=&before=: the messages
// the projection passed, newest first; next_before pages on.
func (h *operatorHandlers) skipped(w http.ResponseWriter, r *http.Request) {
	name, ok := h.named(w, r, false, permProjectionsRead, permProjectionsWrite)
	if !ok {
		return
	}
	limit, before := defaultSkippedLimit, uint64(0)
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSkippedLimit {
			h.fail(w, r, fault.Errorf(fault.Invalid, "limit must be a number from 1 to %d, got %q", maxSkippedLimit, v))
			return
		}
		limit = n
	}
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil || n == 0 {
			h.fail(w, r, fault.Errorf(fault.Invalid, "before must be a stream sequence, got %q", v))
			return
		}
		before = n
	}
	ms, err := postgres.SkippedMessages(r.Context(), h.op.d.Pool, name, before, limit)
	if err != nil {
		h.fail(w, r, unavailable(err))
		return
	}
	out := struct {
		Items      []SkippedMessage `json:"items"`
		NextBefore uint64           `json:"next_before,omitempty"`
	}{Items: make([]SkippedMessage, 0, len(ms))}
	for _, m := range ms {
		out.Items = append(out.Items, SkippedMessage{
			Seq: m.Seq, Partition: m.Partition, Subject: m.Subject, Tenant: m.Tenant, EventID: m.EventID,
			EventType: m.EventType, Reason: m.Reason, Error: m.Error, At: m.At,
		})
	}
	if len(ms) == limit {
		out.NextBefore = ms[len(ms)-1].Seq
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, out)
}
