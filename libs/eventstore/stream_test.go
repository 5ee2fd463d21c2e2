package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestEnsureStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := natstest.RunServer(t)
	_, js := natstest.Connect(t, url)

	mustEnsureStreams(t, js, eventstore.StreamOptions{})
	mustEnsureStreams(t, js, eventstore.StreamOptions{}) // idempotent
	mustEnsureStreams(t, js, eventstore.StreamOptions{ActivityMaxAge: 90 * 24 * time.Hour})

	evt := mustStreamConfig(t, js, events.StreamEvents)
	src, dst := events.PartitionTransform(events.StreamEvents)
	switch {
	case len(evt.Subjects) != 2 || evt.Subjects[0] != src || evt.Subjects[1] != "auth.uniq.>":
		t.Errorf("subjects %v", evt.Subjects)
	case evt.SubjectTransform == nil || evt.SubjectTransform.Source != src || evt.SubjectTransform.Destination != dst:
		t.Errorf("transform %+v", evt.SubjectTransform)
	case evt.Storage != jetstream.FileStorage || evt.Discard != jetstream.DiscardNew || evt.Replicas != 1:
		t.Errorf("storage %v discard %v replicas %d", evt.Storage, evt.Discard, evt.Replicas)
	case !evt.DenyDelete || !evt.DenyPurge || !evt.AllowDirect || !evt.AllowAtomicPublish:
		t.Errorf("flags %+v", evt)
	case evt.MaxAge != 0 || evt.MaxMsgs != -1 || evt.MaxBytes != -1 || evt.Duplicates != eventstore.DefaultDuplicateWindow:
		t.Errorf("limits age %v msgs %d bytes %d duplicates %v", evt.MaxAge, evt.MaxMsgs, evt.MaxBytes, evt.Duplicates)
	}
	act := mustStreamConfig(t, js, events.StreamActivity)
	if act.MaxAge != 90*24*time.Hour || act.Subjects[0] != "auth.act.*.*.*" || act.SubjectTransform == nil {
		t.Errorf("activity %+v", act)
	}

	// History cannot be deleted or purged.
	s, err := eventstore.New(js)
	if err != nil {
		t.Fatal(err)
	}
	tenant := "acme"
	e, err := events.New(events.TypeTenantCreated, events.TenantCreated{Name: "Acme"}, events.Meta{
		Tenant: tenant, Aggregate: events.AggregateTenant, AggregateID: tenant, OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, eventstore.Events{Events: []events.Envelope{e}})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, res.Sequence); err == nil {
		t.Error("deleting an event succeeded")
	}
	if err := stream.Purge(ctx); err == nil {
		t.Error("purging the stream succeeded")
	}
}

func TestStreamConfigs_Invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts eventstore.StreamOptions
	}{
		{"negative replicas", eventstore.StreamOptions{Replicas: -1}},
		{"too many replicas", eventstore.StreamOptions{Replicas: 7}},
		{"negative max age", eventstore.StreamOptions{ActivityMaxAge: -time.Hour}},
		{"max age below duplicate window", eventstore.StreamOptions{ActivityMaxAge: time.Minute}},
		{"negative duplicate window", eventstore.StreamOptions{DuplicateWindow: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := eventstore.StreamConfigs(tt.opts); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func mustStreamConfig(tb testing.TB, js jetstream.JetStream, name string) jetstream.StreamConfig {
	tb.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		tb.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().Config
}
