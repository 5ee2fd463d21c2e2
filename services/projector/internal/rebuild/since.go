package rebuild

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/nats-io/nats.go/jetstream"
)

// SinceOptions tunes Since.
type SinceOptions struct {
	// Progress, when set, is called once the tenants are known and after
	// each tenant is rebuilt.
	Progress func(SinceProgress)
}

// SinceProgress says how far a Since is.
type SinceProgress struct {
	Tenants []string // the tenants to rebuild, in the order of their first event
	Done    int      // how many of them are rebuilt
}

// TenantsSince returns the tenants whose first event was stored in
// AUTH_EVENTS at or after since (by the stream's timestamps), in the order
// of that event. A tenant's history starts with its tenant.created event,
// so the candidates are the tenants with an event of the tenant aggregate
// stored at or after since (a handful per tenant, whatever the traffic);
// each is kept only when its very first event, of any aggregate, is at or
// after since. It fails with fault.Invalid for a zero since.
func TenantsSince(ctx context.Context, d runner.Deps, since time.Time) ([]string, error) {
	if since.IsZero() {
		return nil, fault.New(fault.Invalid, "missing-since", "since must be set")
	}
	store, err := eventstore.New(d.JS)
	if err != nil {
		return nil, err
	}
	stream, err := d.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("tenants since: %w", err)
	}
	// The last tenant event stored now bounds the read: an ordered
	// consumer has no end of its own, and one started at a time past the
	// last message would only wait.
	tenantFilter := events.SubjectPrefixEvents + ".*." + events.AggregateTenant + ".*.*"
	last, err := stream.GetLastMsgForSubject(ctx, tenantFilter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tenants since: %w", err)
	}
	if last.Time.Before(since) {
		return nil, nil
	}
	r, err := store.Read(ctx, eventstore.ReadOptions{Filters: []string{tenantFilter}, FromTime: since})
	if err != nil {
		return nil, fmt.Errorf("tenants since: %w", err)
	}
	defer r.Close()
	var out []string
	seen := map[string]bool{}
	for empty := 0; ; {
		batch, err := r.Fetch(ctx, 1000, time.Second)
		var corrupt *eventstore.DecodeError
		if errors.As(err, &corrupt) {
			return nil, fault.Wrap(fault.Unavailable, err, fmt.Sprintf("tenants since: event %d cannot be read", corrupt.Sequence))
		}
		if err != nil {
			return nil, fmt.Errorf("tenants since: %w", err)
		}
		// Done at the bounding event, or past it, or when nothing comes
		// for a while (the stream's clock went back and the read started
		// past it).
		done := false
		if empty++; len(batch) > 0 {
			empty = 0
		} else if empty >= 5 {
			done = true
		}
		for _, ev := range batch {
			if ev.Sequence > last.Sequence {
				done = true // stored after the call began: left to the live projection
				break
			}
			done = ev.Sequence == last.Sequence
			t := ev.Envelope.Tenant
			if seen[t] {
				continue
			}
			seen[t] = true
			first, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(runner.TenantFilter(t)))
			if err != nil {
				return nil, fmt.Errorf("tenants since: first event of %s: %w", t, err)
			}
			if !first.Time.Before(since) {
				out = append(out, t)
			}
		}
		if done {
			return out, nil
		}
	}
}

// Since rebuilds, one after the other and each as Tenant does, the tenants whose first event was stored at or after since (see
// TenantsSince): the tenants created since then, whose whole history lies
// after since. Their rows of the live generation are replaced; the rows of
// older tenants are never touched, even when they have events after since,
// because replaying only part of a tenant's history cannot give its state
// (that needs a rebuild of the tenant, or a full one).
//
// The tenants are chosen when the call starts; tenants created later are
// left to the live projection. Since returns the tenants rebuilt
// (none is not an error). It fails with fault.Invalid for an unknown
// projection or a since that is zero or in the future, and stops at the
// first tenant that fails, having rebuilt the ones before it.
func Since(ctx context.Context, d runner.Deps, projection string, since time.Time, opts SinceOptions) ([]string, error) {
	if projection != accounts.Name {
		return nil, fault.Errorf(fault.Invalid, "unknown projection %q", projection)
	}
	if err := ValidSince(since, time.Now()); err != nil {
		return nil, err
	}
	tenants, err := TenantsSince(ctx, d, since)
	if err != nil {
		return nil, err
	}
	if opts.Progress != nil {
		opts.Progress(SinceProgress{Tenants: tenants})
	}
	for i, t := range tenants {
		if _, err := Tenant(ctx, d, t); err != nil {
			return tenants[:i], fmt.Errorf("rebuild of tenant %s: %w", t, err)
		}
		if opts.Progress != nil {
			opts.Progress(SinceProgress{Tenants: tenants, Done: i + 1})
		}
	}
	d.Log.InfoContext(ctx, "projection tenants rebuilt", "projection", projection, "since", since, "tenants", len(tenants))
	return tenants, nil
}

// ValidSince checks the instant of a rebuild since a time: set, and not
// after now (no tenant can have been created in the future, so such a
// request is a mistake, most likely a time zone).
func ValidSince(since, now time.Time) error {
	if since.IsZero() {
		return fault.New(fault.Invalid, "missing-since", "since must be set")
	}
	if since.After(now) {
		return fault.New(fault.Invalid, "since-in-future",
			fmt.Sprintf("since %s is in the future", since.UTC().Format(time.RFC3339)))
	}
	return nil
}
