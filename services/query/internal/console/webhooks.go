package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// webhookRow is an endpoint of GET /webhooks and GET /webhooks/{id}.
type webhookRow struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	EventTypes              []string   `json:"event_types"`
	Description             string     `json:"description"`
	Paused                  bool       `json:"paused"`
	State                   string     `json:"state"`
	FailingSince            *time.Time `json:"failing_since"`
	DeadLetters             int        `json:"dead_letters"`
	LastDeliveredSequence   uint64     `json:"last_delivered_sequence"`
	LastDeliveredAt         *time.Time `json:"last_delivered_at"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	Version                 int        `json:"version"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

type webhookPage struct {
	Items      []webhookRow `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

// delivery is an attempt of GET /webhooks/{id}/deliveries.
type delivery struct {
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	Sequence      uint64     `json:"sequence"`
	Attempt       int        `json:"attempt"`
	Status        string     `json:"status"`
	ResponseCode  int        `json:"response_code"`
	LatencyMS     float64    `json:"latency_ms"`
	Error         string     `json:"error"`
	AttemptedAt   time.Time  `json:"attempted_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

type deliveryPage struct {
	Items      []delivery `json:"items"`
	NextCursor string     `json:"next_cursor"`
}

// webhookData is the endpoint page's.
type webhookData struct {
	Hook       webhookRow
	Deliveries deliveryPage
	Idem       string // the rotation form's idempotency key
}

// secretData is the page that shows a signing secret, once.
type secretData struct {
	ID, URL, Secret, Continue string
	Rotated                   bool
	PreviousExpires           *time.Time
}

// newWebhookData is the registration form's.
type newWebhookData struct {
	URL, EventTypes, Description string
	Idem                         string // the form's idempotency key
}

func (c *Console) webhooks(w http.ResponseWriter, r *http.Request) {
	q := url.Values{}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		q.Set("cursor", cur)
	}
	var p webhookPage
	if err := c.clientOf(r).query(r.Context(), "/webhooks", q, &p); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.page(w, r, "webhooks.html", view{Title: "Webhooks", Section: "/webhooks", Data: p})
}

func (c *Console) newWebhook(w http.ResponseWriter, r *http.Request) {
	c.page(w, r, "webhook_new.html", view{Title: "New webhook", Section: "/webhooks", Data: newWebhookData{EventTypes: "*", Idem: formKey()}})
}

// eventTypes splits a form's event types, separated by commas or white
// space.
func eventTypes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// createWebhook registers an endpoint (POST /webhooks) and shows its
// secret, which no later page can show again.
func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request) {
	d := newWebhookData{URL: strings.TrimSpace(r.PostFormValue("url")), EventTypes: r.PostFormValue("event_types"),
		Description: strings.TrimSpace(r.PostFormValue("description"))}
	body := map[string]any{"url": d.URL, "event_types": eventTypes(d.EventTypes)}
	if d.Description != "" {
		body["description"] = d.Description
	}
	var out struct {
		ID     string `json:"id"`
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	ct, err := c.clientOf(r).commandOnce(r.Context(), http.MethodPost, "/webhooks", r.PostFormValue("idem"), body, &out)
	if err != nil {
		if e, ok := asInvalid(err); ok {
			d.Idem = formKey()
			c.page(w, r, "webhook_new.html", view{Title: "New webhook", Section: "/webhooks", Status: e.Status, Error: e.Error(), Data: d})
			return
		}
		c.apiFailure(w, r, err)
		return
	}
	c.showSecret(w, r, secretData{ID: out.ID, URL: out.URL, Secret: out.Secret}, ct, "created")
}

// showSecret renders the page of a new secret, linking on to the
// endpoint's page with the change's consistency token.
func (c *Console) showSecret(w http.ResponseWriter, r *http.Request, d secretData, ct, done string) {
	q := url.Values{"done": {done}}
	if ct != "" {
		q.Set("ct", ct)
	}
	d.Continue = base(chi.URLParam(r, "tenant")) + "/webhooks/" + url.PathEscape(d.ID) + "?" + q.Encode()
	title := "Webhook registered"
	if d.Rotated {
		title = "Secret rotated"
	}
	c.page(w, r, "webhook_secret.html", view{Title: title, Section: "/webhooks", Data: d})
}

// webhook shows an endpoint with its delivery log, newest first.
func (c *Console) webhook(w http.ResponseWriter, r *http.Request) {
	k := c.clientOf(r)
	id := url.PathEscape(chi.URLParam(r, "id"))
	d := webhookData{Idem: formKey()}
	if err := k.query(r.Context(), "/webhooks/"+id, nil, &d.Hook); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	q := url.Values{"limit": {"50"}}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		q.Set("cursor", cur)
	}
	if err := k.query(r.Context(), "/webhooks/"+id+"/deliveries", q, &d.Deliveries); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.page(w, r, "webhook.html", view{Title: "Webhook", Section: "/webhooks", Data: d})
}

// webhookAction posts a command without a body to the endpoint (pause,
// resume).
func (c *Console) webhookAction(suffix, done string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := url.PathEscape(chi.URLParam(r, "id"))
		ct, err := c.clientOf(r).command(r.Context(), http.MethodPost, "/webhooks/"+id+suffix, nil, nil)
		if err != nil {
			c.apiFailure(w, r, err)
			return
		}
		c.after(w, r, "/webhooks/"+id, ct, done)
	}
}

// rotateWebhook gives the endpoint a new secret and shows it, once.
func (c *Console) rotateWebhook(w http.ResponseWriter, r *http.Request) {
	id := url.PathEscape(chi.URLParam(r, "id"))
	var out struct {
		ID                      string     `json:"id"`
		URL                     string     `json:"url"`
		Secret                  string     `json:"secret"`
		PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	}
	ct, err := c.clientOf(r).commandOnce(r.Context(), http.MethodPost, "/webhooks/"+id+"/secret", r.PostFormValue("idem"), map[string]any{}, &out)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.showSecret(w, r, secretData{ID: out.ID, URL: out.URL, Secret: out.Secret, Rotated: true,
		PreviousExpires: out.PreviousSecretExpiresAt}, ct, "rotated")
}

// replayWebhook asks for the endpoint's events again from a stream
// sequence.
func (c *Console) replayWebhook(w http.ResponseWriter, r *http.Request) {
	id := url.PathEscape(chi.URLParam(r, "id"))
	seq, err := strconv.ParseUint(strings.TrimSpace(r.PostFormValue("from_sequence")), 10, 63)
	if err != nil || seq < 1 {
		c.renderError(w, r, http.StatusBadRequest, "A replay starts from a sequence number of 1 or more: nothing was replayed.")
		return
	}
	ct, err := c.clientOf(r).command(r.Context(), http.MethodPost, "/webhooks/"+id+"/replay", map[string]any{"from_sequence": seq}, nil)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/webhooks/"+id, ct, "replay")
}

// deleteWebhook deletes the endpoint once the form repeats its URL: a
// deletion cannot be undone.
func (c *Console) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id := url.PathEscape(chi.URLParam(r, "id"))
	k := c.clientOf(r)
	var h webhookRow
	if err := k.query(r.Context(), "/webhooks/"+id, nil, &h); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	if strings.TrimSpace(r.PostFormValue("confirm")) != h.URL {
		c.renderError(w, r, http.StatusBadRequest, "Type the endpoint's URL exactly to confirm the deletion: nothing was deleted.")
		return
	}
	ct, err := k.command(r.Context(), http.MethodDelete, "/webhooks/"+id, nil, nil)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/webhooks", ct, "deleted")
}
