package eventstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultDuplicateWindow is how long the streams remember event ids for
// de-duplication: longer than any client retries the same command.
const DefaultDuplicateWindow = 10 * time.Minute

// StreamOptions configures EnsureStreams. The zero value is the all-in-one
// setup: one replica, activity kept forever.
//
// Durability: nats-server v2.15.2 has no stream-level fsync setting. Its
// stream PersistMode only offers "default" (write, then acknowledge) and
// "async" (acknowledge before the write; never used here). Syncing every
// write to disk is the server option SyncAlways (configuration
// `jetstream { sync_interval: always }`); with replicas above 1 the server
// relaxes it to syncing on raft snapshots, the replicated log providing the
// durability. Whoever starts the server chooses it.
type StreamOptions struct {
	// Replicas of both streams: 1 (the default when 0) in all-in-one mode, 3
	// in production.
	Replicas int
	// ActivityMaxAge is how long sign-in and session events are kept; 0
	// keeps them forever. Account events are always kept forever.
	ActivityMaxAge time.Duration
	// DuplicateWindow overrides DefaultDuplicateWindow when positive.
	DuplicateWindow time.Duration
}

func (o StreamOptions) validate() error {
	switch {
	case o.Replicas < 0 || o.Replicas > 5:
		return fmt.Errorf("stream replicas must be between 1 and 5, got %d", o.Replicas)
	case o.ActivityMaxAge < 0:
		return errors.New("activity max age must not be negative")
	case o.DuplicateWindow < 0:
		return errors.New("duplicate window must not be negative")
	case o.ActivityMaxAge > 0 && o.ActivityMaxAge < o.duplicates():
		// The server refuses a duplicate window longer than the max age.
		return fmt.Errorf("activity max age %s is shorter than the duplicate window %s", o.ActivityMaxAge, o.duplicates())
	}
	return nil
}

func (o StreamOptions) duplicates() time.Duration {
	if o.DuplicateWindow > 0 {
		return o.DuplicateWindow
	}
	return DefaultDuplicateWindow
}

// StreamConfigs returns the configurations EnsureStreams applies:
// AUTH_EVENTS then AUTH_ACTIVITY. They are exported so that operators and
// tests can compare them with what a server holds.
func StreamConfigs(opts StreamOptions) ([]jetstream.StreamConfig, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	replicas := max(opts.Replicas, 1)
	base := func(stream string) jetstream.StreamConfig {
		src, dst := events.PartitionTransform(stream)
		return jetstream.StreamConfig{
			Name: stream,
			// Published subjects stay "<prefix>.<tenant>.<aggregate>.<id>";
			// the transform stores them with the tenant's partition appended,
			// so a projector worker filters "<prefix>.*.*.*.<p>" and a
			// tenant's events stay in order. Subjects that do not match the
			// transform's source (claims) are stored unchanged.
			Subjects:          []string{src},
			SubjectTransform:  &jetstream.SubjectTransformConfig{Source: src, Destination: dst},
			Retention:         jetstream.LimitsPolicy,
			MaxMsgs:           -1,
			MaxBytes:          -1,
			MaxMsgsPerSubject: -1,
			// A limit set by mistake must fail writes, never delete history.
			Discard:            jetstream.DiscardNew,
			Storage:            jetstream.FileStorage,
			Replicas:           replicas,
			Duplicates:         opts.duplicates(),
			DenyDelete:         true,
			DenyPurge:          true,
			AllowDirect:        true,
			AllowAtomicPublish: true,
		}
	}
	evt := base(events.StreamEvents)
	evt.Description = "authstream account events (tenants, users, roles, keys) and uniqueness claims; kept forever"
	evt.Subjects = append(evt.Subjects, events.SubjectPrefixClaims+".>")
	act := base(events.StreamActivity)
	act.Description = "authstream sign-in and session events"
	act.MaxAge = opts.ActivityMaxAge
	return []jetstream.StreamConfig{evt, act}, nil
}

// EnsureStreams creates AUTH_EVENTS and AUTH_ACTIVITY or updates them to
// the configuration of opts. It is idempotent and safe to call at every
// start of every service.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, opts StreamOptions) error {
	return ensure(ctx, js, opts, events.StreamEvents, events.StreamActivity)
}

// EnsureStream is EnsureStreams for the named streams only (a service that
// writes AUTH_ACTIVITY alone needs no rights on AUTH_EVENTS' configuration).
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts StreamOptions, streams ...string) error {
	return ensure(ctx, js, opts, streams...)
}

func ensure(ctx context.Context, js jetstream.JetStream, opts StreamOptions, streams ...string) error {
	cfgs, err := StreamConfigs(opts)
	if err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	for _, name := range streams {
		i := slices.IndexFunc(cfgs, func(c jetstream.StreamConfig) bool { return c.Name == name })
		if i < 0 {
			return fmt.Errorf("ensure stream %s: not a stream of authstream", name)
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfgs[i]); err != nil {
			return fmt.Errorf("ensure stream %s: %w", name, err)
		}
	}
	return nil
}
