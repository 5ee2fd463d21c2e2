package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/go-chi/chi/v5"
)

// The auditors' read API: an account's, a role's or a user's sign-in
// history read from the log (not the projection), each event with its
// stream sequence, hash and prev; the state of an account at any instant;
// the holders of a permission at an instant; and a tenant's whole log as
// JSON Lines for export. Events are served exactly as stored: sealed
// fields (password hashes) stay sealed.

// Formats of the event lists.
const (
	formatJSON  = "json"
	formatJSONL = "jsonl"
)

// ContentTypeJSONL is the media type of the JSON Lines answers.
const ContentTypeJSONL = "application/jsonl"

// HeaderEventCount carries, on event lists, how many events the answer
// holds (exactly, for one aggregate) or at most holds (for a tenant, whose
// count is read before streaming begins): clients size progress bars
// with it.
const HeaderEventCount = "Event-Count"

var (
	errInvalidFormat = fault.New(fault.Invalid, "invalid-format", "format must be json or jsonl")
	errAsOfFormat    = fault.New(fault.Invalid, "invalid-format", "as_of gives a state, not a list of events: drop format")
	errAsOfEmpty     = fault.New(fault.Invalid, "invalid-instant", "as_of must be an RFC 3339 instant such as 2025-03-14T10:00:00Z")
	errLogFormat     = fault.New(fault.Invalid, "invalid-format", "a tenant's log is served as JSON Lines only: add format=jsonl")
)

// formatOf reads ?format=: json (the default) or jsonl.
func formatOf(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", formatJSON:
		return formatJSON, nil
	case formatJSONL:
		return formatJSONL, nil
	default:
		return "", errInvalidFormat
	}
}

// userHistory is GET /users/{id}/history: the user's events in order, or
// its state at ?as_of=.
func (h *handlers) userHistory(w http.ResponseWriter, r *http.Request) {
	hist, err := h.app.UserHistory(r.Context(), callerOf(r), chi.URLParam(r, "id"))
	h.serveHistory(w, r, hist, err)
}

// roleHistory is GET /roles/{name}/history.
func (h *handlers) roleHistory(w http.ResponseWriter, r *http.Request) {
	hist, err := h.app.RoleHistory(r.Context(), callerOf(r), chi.URLParam(r, "name"))
	h.serveHistory(w, r, hist, err)
}

// signins is GET /users/{id}/signins: the user's sign-in aggregate on
// AUTH_ACTIVITY.
func (h *handlers) signins(w http.ResponseWriter, r *http.Request) {
	hist, err := h.app.SigninHistory(r.Context(), callerOf(r), chi.URLParam(r, "id"))
	h.serveHistory(w, r, hist, err)
}

// serveHistory answers a history in the form the query asks for: the state
// at ?as_of=, JSON Lines with ?format=jsonl, or {"events": [...]}; or the
// error that reading it gave.
func (h *handlers) serveHistory(w http.ResponseWriter, r *http.Request, hist app.History, err error) {
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	format, err := formatOf(r)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	if q := r.URL.Query(); q.Has("as_of") {
		asOf, err := app.ParseInstant("as_of", q.Get("as_of"), time.Time{})
		if err == nil && asOf.IsZero() {
			err = errAsOfEmpty
		}
		if err == nil && q.Get("format") != "" {
			err = errAsOfFormat
		}
		if err != nil {
			httpserver.WriteError(w, r, h.log, err)
			return
		}
		state, err := hist.StateAt(asOf)
		if err != nil {
			httpserver.WriteError(w, r, h.log, err)
			return
		}
		httpserver.WriteJSON(w, http.StatusOK, state)
		return
	}
	w.Header().Set(HeaderEventCount, strconv.Itoa(len(hist.Events)))
	if format == formatJSON {
		httpserver.WriteJSON(w, http.StatusOK, hist)
		return
	}
	lw := newLineWriter(w)
	for _, e := range hist.Events {
		// An export is the stored events, which verify, and keeps personal
		// members sealed: a file kept by an auditor holds no name an
		// erasure could not reach.
		e.Personal = nil
		if err := lw.write(e); err != nil {
			h.abort(r, err)
		}
	}
	lw.flush()
}

// holders is GET /audit/holders?permission=P&at=T: who held P at T
// (default now).
func (h *handlers) holders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ans, err := h.app.PermissionHolders(r.Context(), callerOf(r), q.Get("permission"), q.Get("at"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, ans)
}

// tenantEvents is GET /audit/events?format=jsonl: every account event of
// the tenant (AUTH_EVENTS) in stream order, up to the stream's last
// sequence when the request began, as JSON Lines. It is what
// `authctl audit export` reads for a whole tenant.
func (h *handlers) tenantEvents(w http.ResponseWriter, r *http.Request) {
	log, err := h.app.ExportEvents(r.Context(), callerOf(r))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	format, err := formatOf(r)
	if err == nil && format != formatJSONL {
		err = errLogFormat
	}
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	var lw *lineWriter
	start := func(upTo uint64) {
		w.Header().Set(HeaderEventCount, strconv.FormatUint(upTo, 10))
		lw = newLineWriter(w)
	}
	err = log.Stream(r.Context(), start, func(e app.Event) error { return lw.write(e) })
	switch {
	case err != nil && lw != nil:
		h.abort(r, err)
	case err != nil:
		httpserver.WriteError(w, r, h.log, err)
	default:
		lw.flush()
	}
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
func (h *handlers) abort(r *http.Request, err error) {
	if r.Context().Err() == nil {
		h.log.WarnContext(r.Context(), "audit stream aborted", "path", r.URL.Path, "error", err.Error())
	}
	panic(http.ErrAbortHandler)
}

// ContentTypeText is the media type of the checkpoint and its keys: the
// signed note and the verifier keys as the formats define them.
const ContentTypeText = "text/plain; charset=utf-8"

// checkpoint is GET /audit/checkpoint: the latest signed checkpoint of the
// tenant's verifiable log, a signed note in the C2SP checkpoint format.
func (h *handlers) checkpoint(w http.ResponseWriter, r *http.Request) {
	note, err := h.app.LatestCheckpoint(r.Context(), callerOf(r))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	writeText(w, note)
}

// checkpointKey is GET /audit/checkpoint/key: the note verifier key that
// signs the tenant's checkpoints, or with ?all=true every key that signed
// any, the current one first, one a line.
func (h *handlers) checkpointKey(w http.ResponseWriter, r *http.Request) {
	all := false
	switch v := r.URL.Query().Get("all"); v {
	case "", "false":
	case "true":
		all = true
	default:
		httpserver.WriteError(w, r, h.log, fault.New(fault.Invalid, "invalid-all", "all must be true or false"))
		return
	}
	keys, err := h.app.CheckpointKeys(r.Context(), callerOf(r), all)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	writeText(w, strings.Join(keys, "\n")+"\n")
}

// inclusionProof is GET /audit/proof/inclusion?index=I&size=N.
func (h *handlers) inclusionProof(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := h.app.ProveInclusion(r.Context(), callerOf(r), q.Get("index"), q.Get("size"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, p)
}

// consistencyProof is GET /audit/proof/consistency?from=M&to=N.
func (h *handlers) consistencyProof(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := h.app.ProveConsistency(r.Context(), callerOf(r), q.Get("from"), q.Get("to"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, p)
}

func writeText(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", ContentTypeText)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body) //nolint:gosec // G705: text/plain with nosniff: a signed note or verifier keys, never HTML
}
