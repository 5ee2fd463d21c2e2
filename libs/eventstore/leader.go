package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Leader reads by direct get (ADR 0016). A decision reads the last
// message of each subject it depends on from the stream leader, through
// the JetStream API (STREAM.MSG.GET): a JSON answer with the message
// base64-encoded, handed by the server to its API workers. A direct get is
// answered where the message is stored, in the server's own read path,
// headers and body as stored; but any replica, or a mirror that serves
// direct gets, may answer it, and a follower can be a few milliseconds
// behind. On a stream of one replica there is only the leader to answer,
// so leaderLast takes the direct get there. Whether the stream has one
// replica is asked from its info and asked again every
// directCheckInterval; until the first answer, and after a failed one,
// reads go through the API. An answer from another stream (a mirror
// serving direct gets, which the platform's NATS permissions let nobody
// create) turns direct reads off for the stream for good; such a mirror's
// "not found" names no stream, and can only make a subject look empty:
// a claim or aggregate that looks free is still refused by the append's
// expected sequence, and a caller that looks absent is refused.

// directCheckInterval is how long the store trusts what it learned of a
// stream's replicas.
const directCheckInterval = 5 * time.Second

// leaderRoutes remembers, per stream, whether a direct get can only be
// answered by the stream leader.
type leaderRoutes struct {
	mu      sync.Mutex
	streams map[string]*leaderRoute
}

type leaderRoute struct {
	direct   bool
	checked  time.Time
	checking bool
	foreign  bool // another stream answered a direct get: never again
}

// directIsLeader reports whether a direct get on stream is answered by its
// leader alone: one replica, and no mirror or alternate that serves direct
// gets. One caller at a time refreshes what is known; the others go on
// with the last answer (false before the first).
func (s *Store) directIsLeader(ctx context.Context, stream string) bool {
	r := &s.leaders
	r.mu.Lock()
	if r.streams == nil {
		r.streams = map[string]*leaderRoute{}
	}
	lr := r.streams[stream]
	if lr == nil {
		lr = &leaderRoute{}
		r.streams[stream] = lr
	}
	if lr.foreign || lr.checking || time.Since(lr.checked) < directCheckInterval {
		direct := lr.direct
		r.mu.Unlock()
		return direct
	}
	lr.checking = true
	r.mu.Unlock()

	direct := false
	if str, err := s.js.Stream(ctx, stream); err == nil {
		info := str.CachedInfo()
		direct = info.Config.Replicas <= 1 && info.Config.AllowDirect
		for _, alt := range info.Alternates { // listed in clusters only
			if alt.Name != stream {
				direct = false
			}
		}
	}
	r.mu.Lock()
	lr.direct, lr.checked, lr.checking = direct && !lr.foreign, time.Now(), false
	r.mu.Unlock()
	return direct
}

// notLeader records that a direct get on stream was answered by another
// stream: leader reads go through the API from now on.
func (s *Store) notLeader(stream string) {
	r := &s.leaders
	r.mu.Lock()
	defer r.mu.Unlock()
	if lr := r.streams[stream]; lr != nil {
		lr.foreign, lr.direct = true, false
	}
}

// errForeignAnswer is directLast's answer when another stream answered.
var errForeignAnswer = errors.New("direct get answered by another stream")

// directLast returns the last message on a subject, or of a subject
// filter, by direct get, nil if there is none. Only for streams where directIsLeader holds.
func (s *Store) directLast(ctx context.Context, stream, subject string) (*jetstream.RawStreamMsg, error) {
	msg, err := s.js.Conn().RequestWithContext(ctx, s.apiSubject("DIRECT.GET."+stream+"."+subject), nil)
	if err != nil {
		return nil, fmt.Errorf("get last message: %w", err)
	}
	if len(msg.Data) == 0 {
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "404":
			return nil, nil
		default:
			return nil, fmt.Errorf("get last message: direct get answered %s %s", status, msg.Header.Get("Description"))
		}
	}
	if name := msg.Header.Get(jetstream.StreamHeader); name != stream {
		return nil, errForeignAnswer
	}
	raw, err := directGetMsg(msg)
	if err != nil {
		return nil, fmt.Errorf("get last message: %w", err)
	}
	return raw, nil
}
