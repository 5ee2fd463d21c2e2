package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/eventstore"
)

// TenantLog is a tenant's account log, ready to stream to an auditor.
type TenantLog struct {
	a      *App
	tenant string
}

// ExportEvents returns the caller's tenant's account log (AUTH_EVENTS) for
// an auditor, who needs audit:read; TenantLog.Stream reads it.
func (a *App) ExportEvents(ctx context.Context, c Caller) (TenantLog, error) {
	if err := a.require(ctx, c, PermAuditRead); err != nil {
		return TenantLog{}, err
	}
	return TenantLog{a: a, tenant: c.Tenant}, nil
}

// Stream calls each for every event of the log in stream order, up to the
// stream's last sequence when it began; start is called once before the
// first event with an upper bound of the number of events to come. A
// tenant without events is ErrUnknownTenant, before any call of start.
// Once start has been called, an error means the stream is incomplete.
func (l TenantLog) Stream(ctx context.Context, start func(upTo uint64), each func(Event) error) error {
	started := false
	err := l.a.replay(ctx, l.tenant, time.Time{}, func(upTo uint64) {
		started = true
		start(upTo)
	}, func(st eventstore.Stored) error {
		return each(Event{Sequence: st.Sequence, Envelope: st.Envelope})
	})
	if err == nil && !started {
		return ErrUnknownTenant // no event at all: no tenant
	}
	return err
}
