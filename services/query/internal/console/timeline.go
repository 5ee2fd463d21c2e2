package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
	"github.com/go-chi/chi/v5"
)

// The account timeline: every event of a user as GET /users/{id}/history
// serves it (audit:read), who caused each, the state of the account as of
// any of them, folded here from the events the API gave (the same fold
// as the history API's as_of), and the hash chain checked here: every
// event's hash recomputed from its content and every prev the hash of the
// event before (libs/events.VerifyChain).

// timelineEvent is one event as the page shows it.
type timelineEvent struct {
	Version    uint64
	Sequence   uint64
	Type       string
	OccurredAt time.Time
	Actor      string // who caused it, as a person reads it
	ActorLink  string // the actor's user page in this tenant, when it is one
	Hash       string
	Data       string
	Selected   bool
	Href       string
}

// timelineData is the timeline page's.
type timelineData struct {
	UserID    string
	Username  string
	Events    []timelineEvent
	At        uint64 // the version the state is of
	State     domain.UserState
	Chain     string // the chain check's verdict
	ChainOK   bool
	Prev      string
	Next      string
	StateJSON string
}

// historyEvent is an event of the history API: the envelope and its
// stream sequence beside its members.
type historyEvent map[string]json.RawMessage

func (c *Console) timeline(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	k := c.clientOf(r)
	var hist struct {
		Events []historyEvent `json:"events"`
	}
	if err := k.query(r.Context(), "/users/"+url.PathEscape(id)+"/history", nil, &hist); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	envs := make([]events.Envelope, 0, len(hist.Events))
	seqs := make([]uint64, 0, len(hist.Events))
	// views are the events with their personal members opened (or
	// "[erased]"), which the states fold; envs are as stored, which the
	// chain check verifies.
	views := make([]events.Envelope, 0, len(hist.Events))
	for _, h := range hist.Events {
		var seq uint64
		_ = json.Unmarshal(h["sequence"], &seq)
		var personal map[string]string
		_ = json.Unmarshal(h["personal"], &personal)
		delete(h, "sequence")
		delete(h, "personal")
		b, err := json.Marshal(h)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		e, err := events.ParseEnvelope(b)
		if err != nil {
			c.renderError(w, r, http.StatusBadGateway, "The history holds an event that is not an envelope: "+err.Error())
			return
		}
		view, err := events.WithPersonal(e, personal)
		if err != nil {
			c.renderError(w, r, http.StatusBadGateway, "The history holds an event that does not decode: "+err.Error())
			return
		}
		envs = append(envs, e)
		views = append(views, view)
		seqs = append(seqs, seq)
	}
	if len(envs) == 0 {
		c.renderError(w, r, http.StatusNotFound, "There is nothing here.")
		return
	}
	d := timelineData{UserID: id, At: uint64(len(envs))}
	if v, err := strconv.ParseUint(r.URL.Query().Get("at"), 10, 64); err == nil && v >= 1 && v <= uint64(len(envs)) {
		d.At = v
	}
	if err := events.VerifyChain(envs); err != nil {
		var ce *events.ChainError
		if errors.As(err, &ce) {
			d.Chain = fmt.Sprintf("The chain is broken at version %d: %s.", ce.Version, ce.Problem)
		} else {
			d.Chain = "The chain does not verify: " + err.Error()
		}
	} else {
		d.ChainOK = true
		d.Chain = fmt.Sprintf("The hash chain verifies: each of the %d events' hashes recomputed from its content, each linked to the one before.", len(envs))
	}
	state, _, err := domain.UserAsOf(id, views[:d.At], farFuture)
	if err != nil {
		c.renderError(w, r, http.StatusBadGateway, "The history does not fold: "+err.Error())
		return
	}
	d.State = state
	if b, err := json.MarshalIndent(state, "", "  "); err == nil {
		d.StateJSON = string(b)
	}
	if s, _, err := domain.UserAsOf(id, views, farFuture); err == nil {
		d.Username = s.Username
	}
	names := map[string]string{}
	tenant := sessionOf(r.Context()).Tenant
	page := base(tenant) + "/users/" + url.PathEscape(id) + "/timeline"
	for i, e := range envs {
		te := timelineEvent{Version: e.Version, Sequence: seqs[i], Type: e.Type, OccurredAt: e.OccurredAt, Hash: e.Hash,
			Data: string(e.Data), Selected: e.Version == d.At, Href: page + "?at=" + strconv.FormatUint(e.Version, 10)}
		te.Actor, te.ActorLink = c.actorName(r, k, tenant, e.Actor, names)
		d.Events = append(d.Events, te)
	}
	if d.At > 1 {
		d.Prev = page + "?at=" + strconv.FormatUint(d.At-1, 10)
	}
	if d.At < uint64(len(envs)) {
		d.Next = page + "?at=" + strconv.FormatUint(d.At+1, 10)
	}
	c.page(w, r, "timeline.html", view{Title: "Timeline of " + d.Username, Section: "/users", Data: d})
}

// actorName says who caused an event: the system, a user of this tenant
// by username (read once per page), or a platform admin.
func (c *Console) actorName(r *http.Request, k client, tenant string, a events.Actor, names map[string]string) (string, string) {
	switch {
	case a.Sub == events.ActorSystem && a.Tenant == "":
		return "the platform (system)", ""
	case a.Tenant != "" && a.Tenant != tenant:
		return a.Sub + " of tenant " + a.Tenant, ""
	}
	name, ok := names[a.Sub]
	if !ok {
		var u userRow
		if k.query(r.Context(), "/users/"+url.PathEscape(a.Sub), nil, &u) == nil {
			name = u.Username
		}
		names[a.Sub] = name
	}
	if name == "" {
		return a.Sub, ""
	}
	return name, base(tenant) + "/users/" + url.PathEscape(a.Sub)
}

// farFuture is the instant the timeline folds to: the events chosen by
// version, all of them visible.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
