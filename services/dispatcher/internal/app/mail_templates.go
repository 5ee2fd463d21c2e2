package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/dispatcher/internal/domain"
)

// tenantsFilter are the stored subjects of every tenant's own events,
// where its mail templates change.
const tenantsFilter = events.SubjectPrefixEvents + ".*." + events.AggregateTenant + ".>"

// MailTemplates keeps the tenants' own mail templates current: it follows
// the tenants' events in the log, as the dispatcher follows the webhook
// endpoints', and applies each tenant.mail_template_changed to the
// templates the mailer renders with. Ready is closed once it has read
// every tenant event there was at its start, so that no mail is rendered
// with the defaults for want of a template written long ago.
type MailTemplates struct {
	store     *eventstore.Store
	templates *domain.Templates
	log       *slog.Logger
	ready     chan struct{}
	once      sync.Once // closes ready
}

// NewMailTemplates returns a MailTemplates that keeps templates current.
func NewMailTemplates(store *eventstore.Store, templates *domain.Templates, tel *telemetry.Telemetry) (*MailTemplates, error) {
	if store == nil || templates == nil {
		return nil, errors.New("mail templates: store and templates are required")
	}
	if tel == nil {
		tel = telemetry.Nop()
	}
	return &MailTemplates{store: store, templates: templates, log: tel.Logger, ready: make(chan struct{})}, nil
}

// Ready is closed once the templates written before the start are known.
func (m *MailTemplates) Ready() <-chan struct{} { return m.ready }

// Run follows the tenants' events until ctx ends, and returns nil then.
// A read that fails (the streams not made yet, a lost connection) is
// opened again after the last event applied.
func (m *MailTemplates) Run(ctx context.Context) error {
	var from uint64 // the next stream sequence to read; 0: the first
	for attempt := 1; ; attempt++ {
		err := m.follow(ctx, &from)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, eventstore.ErrInvalidArgument) {
			return fmt.Errorf("mail templates: %w", err)
		}
		if attempt%20 == 1 {
			m.log.WarnContext(ctx, "the tenants' events cannot be read; retrying", "err", err)
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return nil
		}
	}
}

// follow reads the tenants' events from *from on, applying each and
// moving *from past it, until the read fails.
func (m *MailTemplates) follow(ctx context.Context, from *uint64) error {
	r, err := m.store.Read(ctx, eventstore.ReadOptions{Filters: []string{tenantsFilter}, FromSequence: *from})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		if r.Pending() == 0 {
			m.once.Do(func() { close(m.ready) })
		}
		batch, err := r.Fetch(ctx, 256, 250*time.Millisecond)
		for _, st := range batch {
			m.apply(ctx, st)
			*from = st.Sequence + 1
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, eventstore.ErrCorrupt) {
			return err
		}
	}
}

func (m *MailTemplates) apply(ctx context.Context, st eventstore.Stored) {
	if st.Envelope.Type != events.TypeTenantMailTemplateChanged {
		return
	}
	p, err := events.Decode(st.Envelope)
	if err != nil {
		m.log.ErrorContext(ctx, "mail template event unreadable: the tenant keeps its templates before it", "tenant", st.Envelope.Tenant, "seq", st.Sequence, "err", err)
		return
	}
	e, ok := p.(events.TenantMailTemplateChanged)
	if !ok {
		return
	}
	if err := m.templates.Apply(st.Envelope.Tenant, e); err != nil {
		// The command service checks a template with the same rules
		// before it is written: only a change of the rules since gets
		// here.
		m.log.ErrorContext(ctx, "mail template refused: the tenant's mails of this purpose use the defaults", "tenant", st.Envelope.Tenant, "purpose", e.Purpose, "seq", st.Sequence, "err", err)
	}
}
