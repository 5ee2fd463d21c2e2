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
	if err := checkEventFilter(stream, filter); err != nil {
		return Tally{}, fmt.Errorf("count: %w", err)
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

// LastMatching returns the stream sequence of the last message of stream
// whose stored subject matches filter (as for Count), 0 when there is none.
// Unlike Count it asks the stream leader, so it sees every acknowledged
// write: a reader that must not stop short of the log's end reads up to it.
func (s *Store) LastMatching(ctx context.Context, stream, filter string) (uint64, error) {
	if err := checkEventFilter(stream, filter); err != nil {
		return 0, fmt.Errorf("last matching: %w", err)
	}
	raw, err := s.leaderLast(ctx, stream, filter)
	if err != nil {
		return 0, fmt.Errorf("last message of %s: %w: %w", filter, ErrUnavailable, err)
	}
	if raw == nil {
		return 0, nil
	}
	return raw.Sequence, nil
}

// checkEventFilter refuses a stream other than the two event streams and a
// filter outside the stream's events.
func checkEventFilter(stream, filter string) error {
	var prefix string
	switch stream {
	case events.StreamEvents:
		prefix = events.SubjectPrefixEvents + "."
	case events.StreamActivity:
		prefix = events.SubjectPrefixActivity + "."
	default:
		return fmt.Errorf("%w: unknown stream %q", ErrInvalidArgument, stream)
	}
	if !strings.HasPrefix(filter, prefix) || len(filter) == len(prefix) {
		return fmt.Errorf("%w: filter %q is not under %s", ErrInvalidArgument, filter, prefix+">")
	}
	return nil
}
