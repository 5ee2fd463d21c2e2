package eventstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// Tally is what Count found: how many messages match, and the first of
// them.
type Tally struct {
	// Messages is how many messages of the stream match the filter from
	// the start sequence on.
	Messages uint64
	// FirstSequence and FirstTime are the stream sequence and the storage
	// time of the first of them; zero when there is none.
	FirstSequence uint64
	FirstTime     time.Time
}

// Count counts the messages of stream (events.StreamEvents or
// events.StreamActivity) whose stored subject matches filter, from stream
// sequence from on (0 counts from the start), without creating a consumer:
// one batched direct get of a single message, whose end-of-batch answer
// carries the server's pending count. A projector's lag, a rebuild's
// progress and "does this tenant have events" cost one request each,
// whatever the count. filter is a subject filter on stored subjects under
// the stream's event prefix, as for ReadOptions.Filters ("auth.evt.>",
// "auth.evt.acme.>", "auth.evt.*.*.*.3"); claims are never counted.
//
// Any replica may answer a direct get, and a follower can be a few
// milliseconds behind the leader: the count is what that replica holds,
// which suits progress and lag figures, not decisions. It fails with
// ErrInvalidArgument for an unknown stream or a filter outside the
// stream's events, and with ErrUnavailable when no server answers in time.
func (s *Store) Count(ctx context.Context, stream, filter string, from uint64) (Tally, error) {
	var prefix string
	switch stream {
	case events.StreamEvents:
		prefix = events.SubjectPrefixEvents + "."
	case events.StreamActivity:
		prefix = events.SubjectPrefixActivity + "."
	default:
		return Tally{}, fmt.Errorf("count: %w: unknown stream %q", ErrInvalidArgument, stream)
	}
	if !strings.HasPrefix(filter, prefix) || len(filter) == len(prefix) {
		return Tally{}, fmt.Errorf("count: %w: filter %q is not under %s", ErrInvalidArgument, filter, prefix+">")
	}
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	b, err := s.startBatch(stream, filter, max(from, 1), 1)
	if err != nil {
		return Tally{}, fmt.Errorf("count %s: %w: %w", filter, ErrUnavailable, err)
	}
	msgs, pending, err := b.collect(ctx)
	if err != nil {
		return Tally{}, fmt.Errorf("count %s: %w: %w", filter, ErrUnavailable, err)
	}
	if len(msgs) == 0 {
		return Tally{}, nil
	}
	// The end of the batch counts the matching messages after the one
	// returned.
	return Tally{Messages: pending + 1, FirstSequence: msgs[0].Sequence, FirstTime: msgs[0].Time}, nil
}
