// Package app is the dispatcher: it follows the webhook endpoints' events
// in the log, runs one durable JetStream consumer per active endpoint, and
// delivers each endpoint's events, signed, in order per aggregate, at
// least once, retrying with backoff until they are delivered or the
// dead-letter time has passed; every attempt is recorded.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/dispatcher/internal/domain"
	"github.com/authstream/authstream/services/dispatcher/internal/natsjs"
	"github.com/authstream/authstream/services/dispatcher/internal/outbound"
	"github.com/authstream/authstream/services/dispatcher/internal/postgres"
)

// Defaults of Config.
const (
	DefaultFirstRetry      = time.Second
	DefaultMaxRetry        = 10 * time.Minute
	DefaultDeadLetterAfter = 24 * time.Hour
	DefaultWorkers         = 64
	DefaultBatch           = 256
	DefaultAckWait         = 30 * time.Second
)

// Config tunes the dispatcher; zero members take their defaults.
type Config struct {
	// Backoff is the retry schedule of a failing delivery.
	Backoff domain.Backoff
	// DeadLetterAfter is how long a delivery is retried before it is
	// given up on (recorded dead) and the next event of its aggregate
	// goes.
	DeadLetterAfter time.Duration
	// Workers bounds the deliveries in flight across every endpoint.
	Workers int
	// Batch is how many messages an endpoint fetches at a time, and twice
	// it the most it holds unacknowledged.
	Batch int
	// AckWait is how long a message fetched by a dispatcher that went
	// silent stays out before the server offers it again.
	AckWait time.Duration
}

func (c Config) withDefaults() Config {
	if c.Backoff.First <= 0 {
		c.Backoff.First = DefaultFirstRetry
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = DefaultMaxRetry
	}
	c.Backoff.Max = max(c.Backoff.Max, c.Backoff.First)
	if c.DeadLetterAfter <= 0 {
		c.DeadLetterAfter = DefaultDeadLetterAfter
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.Batch <= 0 {
		c.Batch = DefaultBatch
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	return c
}

// Deps are the adapters the dispatcher runs on.
type Deps struct {
	Store     *eventstore.Store
	Consumers *natsjs.Consumers
	Log       *postgres.Log
	Client    *outbound.Client
	KEK       *events.Keyring
	Telemetry *telemetry.Telemetry
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Dispatcher delivers webhooks. Run it once.
type Dispatcher struct {
	deps    Deps
	cfg     Config
	log     *slog.Logger
	sem     chan struct{}
	metrics *metrics

	endpoints map[domain.Key]*domain.Endpoint
	mu        sync.Mutex // guards runs for the metrics
	runs      map[domain.Key]*run
}

// New returns a Dispatcher.
func New(deps Deps, cfg Config) (*Dispatcher, error) {
	if deps.Store == nil || deps.Consumers == nil || deps.Log == nil || deps.Client == nil || deps.KEK == nil {
		return nil, errors.New("dispatcher: store, consumers, log, client and kek are required")
	}
	if deps.Telemetry == nil {
		deps.Telemetry = telemetry.Nop()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	cfg = cfg.withDefaults()
	d := &Dispatcher{
		deps: deps, cfg: cfg, log: deps.Telemetry.Logger, sem: make(chan struct{}, cfg.Workers),
		endpoints: map[domain.Key]*domain.Endpoint{}, runs: map[domain.Key]*run{},
	}
	m, err := newMetrics(deps.Telemetry, d)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	d.metrics = m
	return d, nil
}

// endpointsFilter are the stored subjects of every webhook endpoint's
// events.
const endpointsFilter = events.SubjectPrefixEvents + ".*." + events.AggregateWebhook + ".>"

// Run follows the endpoints' events and delivers until ctx ends; then it
// stops every endpoint's work (what is not acknowledged comes again to
// the next dispatcher) and returns nil. An endpoint starts only once the
// dispatcher has read every endpoint event there was at its start, so
// that nothing goes to an endpoint deleted or paused since.
func (d *Dispatcher) Run(ctx context.Context) error {
	// The streams may not exist yet: the command and query services
	// create them when they start, maybe after this one.
	var r *eventstore.Reader
	for attempt := 1; ; attempt++ {
		var err error
		if r, err = d.deps.Store.Read(ctx, eventstore.ReadOptions{Filters: []string{endpointsFilter}}); err == nil {
			break
		}
		if errors.Is(err, eventstore.ErrInvalidArgument) {
			return fmt.Errorf("dispatcher: %w", err)
		}
		if attempt%20 == 0 {
			d.log.WarnContext(ctx, "the event log cannot be read yet; retrying", "err", err)
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return nil
		}
	}
	defer r.Close()
	defer d.stopAll()
	caughtUp := r.Pending() == 0
	changed := map[domain.Key]bool{}
	for {
		batch, err := r.Fetch(ctx, 256, 250*time.Millisecond)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, eventstore.ErrCorrupt) {
			return fmt.Errorf("dispatcher: read endpoints: %w", err)
		}
		for _, st := range batch {
			k := domain.Key{Tenant: st.Envelope.Tenant, ID: st.Envelope.AggregateID}
			ep := d.endpoints[k]
			next := &domain.Endpoint{}
			if ep != nil {
				*next = *ep
			}
			if err := next.Apply(st.Envelope, st.Sequence); err != nil {
				d.log.ErrorContext(ctx, "webhook endpoint event not applied", "tenant", k.Tenant, "webhook", k.ID, "seq", st.Sequence, "err", err)
				continue
			}
			d.endpoints[k] = next
			changed[k] = true
		}
		if !caughtUp && r.Pending() > 0 {
			continue
		}
		caughtUp = true
		for k := range changed {
			d.reconcile(ctx, k)
		}
		clear(changed)
	}
}

// reconcile brings the work on endpoint k in line with its state.
func (d *Dispatcher) reconcile(ctx context.Context, k domain.Key) {
	ep := d.endpoints[k]
	cur := d.runs[k]
	gen := ep.Replay.Seq
	restart := cur != nil && (!ep.Active() || cur.gen != gen || !slices.Equal(cur.subjects, ep.Subjects()))
	if restart {
		d.stop(k)
		cur = nil
	}
	if gen != ep.PreviousReplay.Seq || ep.Deleted {
		// A replay starts a new consumer; the one before it goes.
		if err := d.deps.Consumers.Delete(ctx, natsjs.Name(k.Tenant, k.ID, ep.PreviousReplay.Seq)); err != nil {
			d.log.WarnContext(ctx, "webhook consumer not deleted", "tenant", k.Tenant, "webhook", k.ID, "err", err)
		}
	}
	if ep.Deleted {
		if err := d.deps.Consumers.Delete(ctx, natsjs.Name(k.Tenant, k.ID, gen)); err != nil {
			d.log.WarnContext(ctx, "webhook consumer not deleted", "tenant", k.Tenant, "webhook", k.ID, "err", err)
		}
		delete(d.endpoints, k)
		return
	}
	if !ep.Active() {
		return
	}
	keys, err := d.openSecrets(ep)
	if err != nil {
		d.log.ErrorContext(ctx, "webhook secret cannot be opened: deliveries wait", "tenant", k.Tenant, "webhook", k.ID, "err", err)
		return
	}
	snap := &snapshot{ep: ep, keys: keys}
	if cur != nil {
		cur.snap.Store(snap)
		return
	}
	d.start(ctx, snap)
}

// openSecrets opens an endpoint's signing secrets: the current one first.
func (d *Dispatcher) openSecrets(ep *domain.Endpoint) ([][]byte, error) {
	aad := events.WebhookSecretAAD(ep.Tenant, ep.ID)
	cur, err := d.deps.KEK.Open(ep.Secret, aad)
	if err != nil {
		return nil, err
	}
	keys := [][]byte{cur}
	if !ep.Previous.IsZero() {
		prev, err := d.deps.KEK.Open(ep.Previous, aad)
		if err != nil {
			return nil, err
		}
		keys = append(keys, prev)
	}
	return keys, nil
}

// stopAll stops every endpoint's work.
func (d *Dispatcher) stopAll() {
	for k := range d.runs {
		d.stop(k)
	}
}

func (d *Dispatcher) stop(k domain.Key) {
	r := d.runs[k]
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	d.mu.Lock()
	delete(d.runs, k)
	d.mu.Unlock()
}

// start starts the work on an endpoint.
func (d *Dispatcher) start(ctx context.Context, snap *snapshot) {
	ep := snap.ep
	ctx, cancel := context.WithCancel(ctx)
	r := &run{key: ep.Key, gen: ep.Replay.Seq, subjects: ep.Subjects(), cancel: cancel, done: make(chan struct{}),
		lanes: map[string]*lane{}, held: map[uint64]natsjs.Msg{}}
	r.snap.Store(snap)
	r.lag.Store(-1)
	spec := natsjs.Spec{Name: natsjs.Name(ep.Tenant, ep.ID, r.gen), Subjects: r.subjects}
	switch {
	case r.gen == 0:
		spec.FromSequence = ep.Registered + 1
	case ep.Replay.FromSequence > 0:
		spec.FromSequence = ep.Replay.FromSequence
	default:
		spec.FromTime = ep.Replay.FromTime
	}
	d.mu.Lock()
	d.runs[ep.Key] = r
	d.mu.Unlock()
	go func() {
		defer close(r.done)
		d.work(ctx, r, spec)
	}()
}
