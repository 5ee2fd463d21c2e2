package audit

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/go-chi/chi/v5"
)

// Event is one event of a history: the envelope exactly as stored (hash,
// prev and sealed fields included) with the stream sequence beside its
// members.
type Event struct {
	Sequence uint64 `json:"sequence"`
	events.Envelope
}

// History is the JSON answer of a history: {"events": [...]}.
type History struct {
	Events []Event `json:"events"`
}

// State is the answer of a history with ?as_of=: the aggregate's state at
// that instant and the version of the last event folded into it (0 when
// the aggregate did not exist yet).
type State struct {
	AsOf    time.Time `json:"as_of"`
	Version uint64    `json:"version"`
	State   any       `json:"state"`
}

var (
	errUserNotFound = fault.New(fault.NotFound, "user-not-found", "no such user")
	errRoleNotFound = fault.New(fault.NotFound, "role-not-found", "no such role (or a built-in one, which has no history)")
	errAsOfFormat   = fault.New(fault.Invalid, "invalid-format", "as_of gives a state, not a list of events: drop format")
)

// folder folds one aggregate's events into its state as of an instant.
type folder func(id string, envs []events.Envelope, asOf time.Time) (any, uint64, error)

// userHistory is GET /users/{id}/history: the user's events in order, or
// its state at ?as_of=.
func (h *Handler) userHistory(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !validID(id) {
		httpserver.WriteError(w, r, h.log, errUserNotFound)
		return
	}
	hist, err := h.store.Load(r.Context(), tenantOf(r), events.AggregateUser, id)
	if err != nil {
		httpserver.WriteError(w, r, h.log, storeError("load user", err))
		return
	}
	if len(hist.Events) == 0 {
		httpserver.WriteError(w, r, h.log, errUserNotFound)
		return
	}
	h.serveHistory(w, r, hist, func(id string, envs []events.Envelope, asOf time.Time) (any, uint64, error) {
		return FoldUser(id, envs, asOf)
	})
}

// roleHistory is GET /roles/{name}/history.
func (h *Handler) roleHistory(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if authz.ValidRoleName(name) != nil {
		httpserver.WriteError(w, r, h.log, errRoleNotFound)
		return
	}
	hist, err := h.store.Load(r.Context(), tenantOf(r), events.AggregateRole, name)
	if err != nil {
		httpserver.WriteError(w, r, h.log, storeError("load role", err))
		return
	}
	if len(hist.Events) == 0 {
		httpserver.WriteError(w, r, h.log, errRoleNotFound)
		return
	}
	h.serveHistory(w, r, hist, func(id string, envs []events.Envelope, asOf time.Time) (any, uint64, error) {
		return FoldRole(id, envs, asOf)
	})
}

// signins is GET /users/{id}/signins: the user's sign-in aggregate on
// AUTH_ACTIVITY. A user that never signed in has an empty list; an unknown
// user is 404.
func (h *Handler) signins(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !validID(id) {
		httpserver.WriteError(w, r, h.log, errUserNotFound)
		return
	}
	tenant := tenantOf(r)
	if _, ok, err := h.store.Last(r.Context(), tenant, events.AggregateUser, id); err != nil {
		httpserver.WriteError(w, r, h.log, storeError("load user", err))
		return
	} else if !ok {
		httpserver.WriteError(w, r, h.log, errUserNotFound)
		return
	}
	hist, err := h.store.Load(r.Context(), tenant, events.AggregateSignin, id)
	if err != nil {
		httpserver.WriteError(w, r, h.log, storeError("load sign-ins", err))
		return
	}
	h.serveHistory(w, r, hist, func(id string, envs []events.Envelope, asOf time.Time) (any, uint64, error) {
		return FoldSignin(id, envs, asOf)
	})
}

// serveHistory answers a loaded history in the form the query asks for:
// the state at ?as_of=, JSON Lines with ?format=jsonl, or {"events": [...]}.
func (h *Handler) serveHistory(w http.ResponseWriter, r *http.Request, hist eventstore.History, fold folder) {
	format, err := formatOf(r)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	if r.URL.Query().Has("as_of") {
		asOf, err := parseInstant(r, "as_of", time.Time{})
		if err == nil && asOf.IsZero() {
			err = fault.New(fault.Invalid, "invalid-instant", "as_of must be an RFC 3339 instant such as 2025-03-14T10:00:00Z")
		}
		if err != nil {
			httpserver.WriteError(w, r, h.log, err)
			return
		}
		if r.URL.Query().Get("format") != "" {
			httpserver.WriteError(w, r, h.log, errAsOfFormat)
			return
		}
		state, version, err := fold(hist.ID, hist.Envelopes(), asOf)
		if err != nil {
			httpserver.WriteError(w, r, h.log, fault.Wrap(fault.Internal, err, "internal error"))
			return
		}
		httpserver.WriteJSON(w, http.StatusOK, State{AsOf: asOf, Version: version, State: state})
		return
	}
	out := make([]Event, len(hist.Events))
	for i, st := range hist.Events {
		out[i] = Event{Sequence: st.Sequence, Envelope: st.Envelope}
	}
	w.Header().Set(HeaderEventCount, strconv.Itoa(len(out)))
	if format == formatJSON {
		httpserver.WriteJSON(w, http.StatusOK, History{Events: out})
		return
	}
	lw := newLineWriter(w)
	for _, e := range out {
		if err := lw.write(e); err != nil {
			h.abort(r, err)
		}
	}
	lw.flush()
}

// lineWriter writes JSON Lines to a response, flushing every so often so
// that a client sees progress on long answers.
type lineWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *json.Encoder
	n   int
}

// linesPerFlush is how many lines go out between flushes.
const linesPerFlush = 256

func newLineWriter(w http.ResponseWriter) *lineWriter {
	w.Header().Set("Content-Type", ContentTypeJSONL)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// Encoder.Encode ends each value with a newline: one event per line.
	// Strings go out as stored, without HTML escapes.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &lineWriter{w: w, rc: http.NewResponseController(w), enc: enc}
}

func (lw *lineWriter) write(v any) error {
	if err := lw.enc.Encode(v); err != nil {
		return err
	}
	if lw.n++; lw.n%linesPerFlush == 0 {
		lw.flush()
	}
	return nil
}

func (lw *lineWriter) flush() { _ = lw.rc.Flush() }

// abort ends a streamed answer that failed after its status was sent:
// the connection is cut so that the client sees an error rather than a
// list that looks complete.
func (h *Handler) abort(r *http.Request, err error) {
	if r.Context().Err() == nil {
		h.log.WarnContext(r.Context(), "audit stream aborted", "path", r.URL.Path, "error", err)
	}
	panic(http.ErrAbortHandler)
}
