package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/app"
)

// webhookBody is the body of POST /t/{tenant}/webhooks and PUT
// /t/{tenant}/webhooks/{id}.
type webhookBody struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description,omitempty"`
}

// webhookAnswer is the answer of the webhook commands: the endpoint id,
// the secret when one was just made, and the endpoint.
type webhookAnswer struct {
	ID                      string     `json:"id"`
	Secret                  string     `json:"secret,omitempty"`
	URL                     string     `json:"url"`
	EventTypes              []string   `json:"event_types"`
	Description             string     `json:"description,omitempty"`
	Paused                  bool       `json:"paused"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
}

// rotateWebhookSecretBody is the optional body of POST
// /t/{tenant}/webhooks/{id}/secret.
type rotateWebhookSecretBody struct {
	OverlapSeconds *int64 `json:"overlap_seconds,omitempty"`
}

// replayBody is the body of POST /t/{tenant}/webhooks/{id}/replay.
type replayBody struct {
	FromSequence uint64    `json:"from_sequence,omitempty"`
	FromTime     time.Time `json:"from_time,omitzero"`
}

func (b webhookBody) config() events.WebhookConfig {
	return events.WebhookConfig{URL: b.URL, EventTypes: b.EventTypes, Description: b.Description}
}

func answerWebhook(id string, o *app.WebhookOutcome) webhookAnswer {
	a := webhookAnswer{ID: id, Secret: o.Secret, URL: o.Config.URL, EventTypes: o.Config.EventTypes,
		Description: o.Config.Description, Paused: o.Paused}
	if !o.PreviousSecretExpiresAt.IsZero() {
		a.PreviousSecretExpiresAt = new(o.PreviousSecretExpiresAt.UTC())
	}
	return a
}

// registerWebhook serves POST /t/{tenant}/webhooks (webhooks:write): the
// answer carries the signing secret, once.
func (h *handlers) registerWebhook(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	var b webhookBody
	req, ok := h.begin(w, r, &b, false, func() any { return b })
	if !ok {
		return
	}
	res, err := h.app.Commands.RegisterWebhook.Handle(r.Context(), app.RegisterWebhook{Request: req, Tenant: tenant, Config: b.config()})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	noStore(w)
	w.Header().Set("Location", "/t/"+tenant+"/webhooks/"+res.ID)
	h.done(w, r, res, http.StatusCreated, answerWebhook(res.ID, res.Webhook))
}

// updateWebhook serves PUT /t/{tenant}/webhooks/{id} (webhooks:write): the
// body replaces the whole configuration.
func (h *handlers) updateWebhook(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var b webhookBody
	req, ok := h.begin(w, r, &b, false, func() any { return b })
	if !ok {
		return
	}
	res, err := h.app.Commands.UpdateWebhook.Handle(r.Context(), app.UpdateWebhook{
		Request: req, Tenant: chi.URLParam(r, "tenant"), WebhookID: id, Config: b.config(),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.done(w, r, res, http.StatusOK, answerWebhook(id, res.Webhook))
}

// deleteWebhook serves DELETE /t/{tenant}/webhooks/{id}, pauseWebhook
// POST .../pause and resumeWebhook POST .../resume (webhooks:write).
func (h *handlers) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	h.webhookAction(w, r, func(req app.Request, tenant, id string) (app.Result, error) {
		return h.app.Commands.DeleteWebhook.Handle(r.Context(), app.DeleteWebhook{Request: req, Tenant: tenant, WebhookID: id})
	})
}

func (h *handlers) pauseWebhook(w http.ResponseWriter, r *http.Request) {
	h.webhookAction(w, r, func(req app.Request, tenant, id string) (app.Result, error) {
		return h.app.Commands.PauseWebhook.Handle(r.Context(), app.PauseWebhook{Request: req, Tenant: tenant, WebhookID: id})
	})
}

func (h *handlers) resumeWebhook(w http.ResponseWriter, r *http.Request) {
	h.webhookAction(w, r, func(req app.Request, tenant, id string) (app.Result, error) {
		return h.app.Commands.ResumeWebhook.Handle(r.Context(), app.ResumeWebhook{Request: req, Tenant: tenant, WebhookID: id})
	})
}

// webhookAction runs a bodiless command on one endpoint and answers 204.
func (h *handlers) webhookAction(w http.ResponseWriter, r *http.Request, run func(req app.Request, tenant, id string) (app.Result, error)) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := run(req, chi.URLParam(r, "tenant"), chi.URLParam(r, "id"))
	h.noContent(w, r, res, err)
}

// rotateWebhookSecret serves POST /t/{tenant}/webhooks/{id}/secret
// (webhooks:write): a new secret, shown once, and until when the previous
// one keeps signing beside it.
func (h *handlers) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var b rotateWebhookSecretBody
	req, ok := h.begin(w, r, &b, true, func() any { return b })
	if !ok {
		return
	}
	cmd := app.RotateWebhookSecret{Request: req, Tenant: chi.URLParam(r, "tenant"), WebhookID: id}
	if b.OverlapSeconds != nil {
		secs := max(min(*b.OverlapSeconds, int64(app.MaxWebhookOverlap/time.Second)+1), -1)
		cmd.Overlap = new(time.Duration(secs) * time.Second)
	}
	res, err := h.app.Commands.RotateWebhookSecret.Handle(r.Context(), cmd)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	noStore(w)
	h.done(w, r, res, http.StatusOK, answerWebhook(id, res.Webhook))
}

// replayWebhook serves POST /t/{tenant}/webhooks/{id}/replay
// (webhooks:write): {"from_sequence"} or {"from_time"}; 202, since the
// dispatcher follows the request asynchronously.
func (h *handlers) replayWebhook(w http.ResponseWriter, r *http.Request) {
	var b replayBody
	req, ok := h.begin(w, r, &b, false, func() any { return b })
	if !ok {
		return
	}
	if (b.FromSequence == 0) == b.FromTime.IsZero() {
		h.fail(w, r, fault.New(fault.Invalid, "invalid-webhook-replay", "give exactly one of from_sequence (1 or more) and from_time"))
		return
	}
	res, err := h.app.Commands.ReplayWebhook.Handle(r.Context(), app.ReplayWebhook{
		Request: req, Tenant: chi.URLParam(r, "tenant"), WebhookID: chi.URLParam(r, "id"),
		FromSequence: b.FromSequence, FromTime: b.FromTime,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.done(w, r, res, http.StatusAccepted, answerWebhook(res.ID, res.Webhook))
}
