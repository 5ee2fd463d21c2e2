package audit

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
)

// HoldersAnswer is the answer of GET /audit/holders.
type HoldersAnswer struct {
	At           time.Time `json:"at"`
	Permission   string    `json:"permission"`
	TenantStatus string    `json:"tenant_status"` // active, disabled, or absent before the tenant existed
	Holders      []Holder  `json:"holders"`
}

// Replay bounds.
const (
	// firstWait is how long a replay waits for the first event: an
	// ordered consumer takes a moment to start, and a tenant without
	// events never sends one.
	firstWait = 2 * time.Second
	// nextWait is how long it waits for each later batch while events are
	// still pending.
	nextWait = 5 * time.Second
	// replayBatch is how many events a replay fetches at a time.
	replayBatch = 512
	// commitSlack is how long after its occurred_at an event may be stored:
	// a command decides, then appends. A replay up to an instant T reads
	// events stored up to T plus this, so that an event decided before T
	// but stored just after it still counts.
	commitSlack = time.Minute
)

// replay calls fn for each event of tenant in stream order, from the first
// up to the stream's last sequence when the replay began, or up to the
// first event stored after until (when until is not zero). first, when
// set, is called once before the first event with an upper bound of the
// number of events to come.
func (h *Handler) replay(ctx context.Context, tenant string, until time.Time, first func(upTo uint64), fn func(eventstore.Stored) error) error {
	last, err := h.store.LastSequence(ctx, events.StreamEvents)
	if err != nil {
		return storeError("replay", err)
	}
	if last == 0 {
		return nil
	}
	filter := events.SubjectPrefixEvents + "." + tenant + ".>"
	rd, err := h.store.Read(ctx, eventstore.ReadOptions{Filters: []string{filter}, FromSequence: 1, Buffer: replayBatch})
	if err != nil {
		return storeError("replay", err)
	}
	defer rd.Close()
	wait, started := firstWait, false
	for {
		batch, err := rd.Fetch(ctx, replayBatch, wait)
		if err != nil {
			return storeError("replay", err)
		}
		if len(batch) == 0 {
			if started && rd.Pending() > 0 {
				return fault.New(fault.Unavailable, "replay-stalled", "the event log did not deliver in time, retry shortly")
			}
			return nil // nothing (more) for this tenant
		}
		if !started && first != nil {
			first(uint64(len(batch)) + rd.Pending())
		}
		started, wait = true, nextWait
		for _, st := range batch {
			if st.Sequence > last || (!until.IsZero() && st.Time.After(until)) {
				return nil
			}
			if err := fn(st); err != nil {
				return err
			}
		}
		if rd.Pending() == 0 {
			return nil
		}
	}
}

// holders is GET /audit/holders?permission=P&at=T: who held P at T,
// answered by replaying the tenant's events up to T (default now).
func (h *Handler) holders(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("permission")
	if raw == "" {
		httpserver.WriteError(w, r, h.log, fault.New(fault.Invalid, "missing-permission-parameter", "permission is required, e.g. ?permission=invoices:approve"))
		return
	}
	p, err := authz.Parse(raw)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	at, err := parseInstant(r, "at", time.Now().UTC())
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	tenant := tenantOf(r)
	t, seen := NewTenant(at), false
	// The tenant exists when it has any event, even one after at.
	exists := func(uint64) { seen = true }
	err = h.replay(r.Context(), tenant, at.Add(commitSlack), exists, func(st eventstore.Stored) error {
		if err := t.Apply(st.Envelope); err != nil {
			return fault.Wrap(fault.Internal, err, "internal error")
		}
		return nil
	})
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	if !seen {
		httpserver.WriteError(w, r, h.log, errNotFound) // no event at all: no tenant
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, HoldersAnswer{At: at, Permission: p.String(), TenantStatus: t.Status(), Holders: t.Holders(p)})
}

// tenantEvents is GET /audit/events?format=jsonl: every account event of
// the tenant (AUTH_EVENTS) in stream order, up to the stream's last
// sequence when the request began, as JSON Lines. It is what
// `authctl audit export` reads for a whole tenant.
func (h *Handler) tenantEvents(w http.ResponseWriter, r *http.Request) {
	format, err := formatOf(r)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	if format != formatJSONL {
		httpserver.WriteError(w, r, h.log, fault.New(fault.Invalid, "invalid-format", "a tenant's log is served as JSON Lines only: add format=jsonl"))
		return
	}
	var lw *lineWriter
	start := func(upTo uint64) {
		w.Header().Set(HeaderEventCount, strconv.FormatUint(upTo, 10))
		lw = newLineWriter(w)
	}
	err = h.replay(r.Context(), tenantOf(r), time.Time{}, start, func(st eventstore.Stored) error {
		return lw.write(Event{Sequence: st.Sequence, Envelope: st.Envelope})
	})
	switch {
	case err != nil && lw != nil:
		h.abort(r, err)
	case err != nil:
		httpserver.WriteError(w, r, h.log, err)
	case lw == nil:
		httpserver.WriteError(w, r, h.log, errNotFound) // no event at all: no tenant
	default:
		lw.flush()
	}
}
