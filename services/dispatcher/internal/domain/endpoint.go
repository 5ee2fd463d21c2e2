package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// Key names an endpoint: its tenant and id.
type Key struct{ Tenant, ID string }

// String is "<tenant>/<id>".
func (k Key) String() string { return k.Tenant + "/" + k.ID }

// Replay is a replay request of an endpoint: the stream sequence of its
// webhook.replay_requested event, and where it asks to start.
type Replay struct {
	Seq          uint64
	FromSequence uint64
	FromTime     time.Time
}

// Endpoint is a webhook endpoint as the dispatcher knows it from its
// events, in the order of the log.
type Endpoint struct {
	Key
	Config  events.WebhookConfig
	Paused  bool
	Deleted bool
	// Secret is the current signing secret, sealed; Previous the one
	// before the last rotation, which also signs until PreviousUntil.
	Secret, Previous events.Sealed
	PreviousUntil    time.Time
	// Registered is the stream sequence of webhook.registered: deliveries
	// start after it.
	Registered uint64
	// Replay is the last replay request; zero when none. PreviousReplay
	// is the one before it.
	Replay, PreviousReplay Replay
}

// Apply folds one event of the endpoint, stored at stream sequence seq.
// It refuses an event of another aggregate or an unknown payload.
func (e *Endpoint) Apply(env events.Envelope, seq uint64) error {
	if env.Aggregate != events.AggregateWebhook {
		return fmt.Errorf("endpoint cannot apply an event of %s", env.Aggregate)
	}
	data, err := events.Decode(env)
	if err != nil {
		return err
	}
	ev, ok := data.(events.WebhookEvent)
	if !ok {
		return fmt.Errorf("endpoint cannot apply %T", data)
	}
	e.Key = Key{Tenant: env.Tenant, ID: env.AggregateID}
	switch d := ev.(type) {
	case events.WebhookRegistered:
		e.Config, e.Secret, e.Registered = d.Config, d.Secret, seq
	case events.WebhookUpdated:
		e.Config = d.Config
	case events.WebhookSecretRotated:
		e.Previous, e.PreviousUntil, e.Secret = e.Secret, d.PreviousSecretExpiresAt, d.Secret
	case events.WebhookPaused:
		e.Paused = true
	case events.WebhookResumed:
		e.Paused = false
	case events.WebhookReplayRequested:
		e.PreviousReplay, e.Replay = e.Replay, Replay{Seq: seq, FromSequence: d.FromSequence, FromTime: d.FromTime}
	case events.WebhookDeleted:
		e.Deleted = true
		e.Secret, e.Previous = events.Sealed{}, events.Sealed{}
	}
	return nil
}

// Active reports whether deliveries should run: registered, not deleted,
// not paused.
func (e *Endpoint) Active() bool { return e.Registered > 0 && !e.Deleted && !e.Paused }

// Subjects are the stored subjects the endpoint's consumer reads: the
// tenant's whole log for "*", else the subjects of each aggregate its
// event types name. The event type is in a header, never in the subject,
// so Wants filters the types within an aggregate.
func (e *Endpoint) Subjects() []string {
	prefix := events.SubjectPrefixEvents + "." + e.Tenant + "."
	var out []string
	for _, t := range e.Config.EventTypes {
		if t == "*" {
			return []string{prefix + ">"}
		}
		agg, _, _ := strings.Cut(t, ".")
		out = append(out, prefix+agg+".>")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Wants reports whether the endpoint receives events of type typ.
func (e *Endpoint) Wants(typ string) bool {
	agg, _, _ := strings.Cut(typ, ".")
	for _, t := range e.Config.EventTypes {
		if t == "*" || t == typ || t == agg+".*" {
			return true
		}
	}
	return false
}

// Secrets returns the sealed secrets that sign at instant now: the
// current one, and the previous one during the overlap of a rotation.
func (e *Endpoint) Secrets(now time.Time) []events.Sealed {
	out := []events.Sealed{e.Secret}
	if !e.Previous.IsZero() && now.Before(e.PreviousUntil) {
		out = append(out, e.Previous)
	}
	return out
}
