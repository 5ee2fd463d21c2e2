package app

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
)

// Limits of the event feed.
const (
	// FeedBuffer is how many events one feed connection holds ahead of
	// its client at most: a reader that falls behind is disconnected (by
	// the HTTP edge's write deadline) rather than buffered without bound.
	FeedBuffer = 256
	// MaxFeedTypes bounds the type filter.
	MaxFeedTypes = 64
	// feedIdle is how long a following feed waits for events before it
	// says it is alive.
	feedIdle = 15 * time.Second
)

// ErrInvalidFeedFilter refuses a type or aggregate filter of the feed.
var ErrInvalidFeedFilter = fault.New(fault.Invalid, "invalid-feed-filter", "the feed's filter is invalid")

// FeedRequest is what a reader of the feed asks for.
type FeedRequest struct {
	// After is the cursor of the last event the reader has; "" starts at
	// the beginning of the tenant's log.
	After string
	// Types, when set, keeps events of these types only.
	Types []string
	// Aggregate, when set, keeps the events of one aggregate kind (user,
	// role...); AggregateID, with it, of one aggregate.
	Aggregate, AggregateID string
	// Follow keeps the feed open once it has caught up, sending events as
	// they are appended; without it the feed ends there.
	Follow bool
}

// FeedItem is one event of the feed and the cursor that resumes just past
// it.
type FeedItem struct {
	Cursor string          `json:"cursor"`
	Event  events.Envelope `json:"event"`
}

// Feed is an open feed of a tenant's account events.
type Feed struct {
	a      *App
	tenant string
	from   uint64
	filter string
	types  map[string]bool
	follow bool
}

// OpenFeed checks the caller (audit:read) and the request: a cursor this
// service did not give is ErrInvalidCursor, an unknown type or aggregate
// ErrInvalidFeedFilter.
func (a *App) OpenFeed(ctx context.Context, c Caller, req FeedRequest) (*Feed, error) {
	if err := a.require(ctx, c, PermAuditRead); err != nil {
		return nil, err
	}
	f := &Feed{a: a, tenant: c.Tenant, from: 1, follow: req.Follow}
	if req.After != "" {
		seq, err := strconv.ParseUint(req.After, 10, 64)
		if err != nil || len(req.After) > 20 || seq == 0 && req.After != "0" {
			return nil, ErrInvalidCursor
		}
		f.from = seq + 1
	}
	if len(req.Types) > MaxFeedTypes {
		return nil, ErrInvalidFeedFilter
	}
	for _, t := range req.Types {
		s, ok := events.Lookup(t)
		if !ok || events.StreamFor(s.Aggregate) != events.StreamEvents {
			return nil, ErrInvalidFeedFilter
		}
		if f.types == nil {
			f.types = map[string]bool{}
		}
		f.types[t] = true
	}
	f.filter = events.SubjectPrefixEvents + "." + c.Tenant + ".>"
	switch {
	case req.Aggregate == "" && req.AggregateID != "":
		return nil, ErrInvalidFeedFilter
	case req.Aggregate == "":
	case events.StreamFor(req.Aggregate) != events.StreamEvents:
		return nil, ErrInvalidFeedFilter
	case req.AggregateID == "":
		f.filter = strings.Join([]string{events.SubjectPrefixEvents, c.Tenant, req.Aggregate, ">"}, ".")
	case !events.ValidToken(req.AggregateID):
		return nil, ErrInvalidFeedFilter
	default:
		f.filter = strings.Join([]string{events.SubjectPrefixEvents, c.Tenant, req.Aggregate, req.AggregateID, "*"}, ".")
	}
	return f, nil
}

// Run reads the feed in stream order and calls each for every event that
// passes its filters, then batch once the events read at a time are out
// (caughtUp when there is nothing more for now). Without Follow it returns
// nil once caught up; with it, it goes on, calling batch every so often
// while idle, until ctx ends or a callback fails.
func (f *Feed) Run(ctx context.Context, each func(FeedItem) error, batch func(caughtUp bool) error) error {
	rd, err := f.a.store.Read(ctx, eventstore.ReadOptions{Filters: []string{f.filter}, FromSequence: f.from, Buffer: FeedBuffer})
	if err != nil {
		return readError("feed", err)
	}
	defer rd.Close()
	wait := firstWait
	for {
		got, err := rd.Fetch(ctx, FeedBuffer, wait)
		var corrupt *eventstore.DecodeError
		if err != nil && !errors.As(err, &corrupt) {
			if ctx.Err() != nil {
				return nil
			}
			return readError("feed", err)
		}
		for _, st := range got {
			if !auditlog.IsLeaf(st.Subject, st.Envelope) || (f.types != nil && !f.types[st.Envelope.Type]) {
				continue
			}
			if err := each(FeedItem{Cursor: strconv.FormatUint(st.Sequence, 10), Event: st.Envelope}); err != nil {
				return err
			}
		}
		caughtUp := rd.Pending() == 0 && corrupt == nil
		if err := batch(caughtUp); err != nil {
			return err
		}
		if caughtUp && !f.follow {
			return nil
		}
		wait = nextWait
		if caughtUp {
			wait = feedIdle
		}
	}
}
