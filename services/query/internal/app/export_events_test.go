package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

// TestTenantLog_Stream: a tenant's export is exactly the leaves of its
// verifiable log. A message on its subjects whose body is no envelope, or
// an envelope of another tenant stored there, is no line of it (and no
// leaf), and does not stop the export.
func TestTenantLog_Stream(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	ctx := context.Background()
	ada := e.Users.MustAdd(t, "acme", "ada", "ada password 1234", "admin")
	caller := app.Caller{Tenant: "acme", Claims: &authn.Claims{Subject: ada}}

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	event := func(tenant, aggregate, id, typ string, data any) []byte {
		env, err := events.New(typ, data, events.Meta{ID: events.NewID(), Tenant: tenant, Aggregate: aggregate, AggregateID: id, OccurredAt: at, Actor: events.System})
		if err != nil {
			t.Fatal(err)
		}
		if err := events.Chain("", 1, &env); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	publish := func(subject string, body []byte) {
		if _, err := e.JS.Publish(ctx, subject, body); err != nil {
			t.Fatalf("publish on %s: %v", subject, err)
		}
	}
	publish(events.Subject("acme", events.AggregateTenant, "acme"), event("acme", events.AggregateTenant, "acme", events.TypeTenantCreated, events.TenantCreated{Name: "Acme"}))
	publish(events.Subject("acme", events.AggregateUser, "u1"), []byte(`{"type":"user.registered"}`))
	publish(events.Subject("acme", events.AggregateRole, "r1"), event("globex", events.AggregateRole, "r1", events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"*"}}))
	publish(events.Subject("acme", events.AggregateRole, "r2"), event("acme", events.AggregateRole, "r2", events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"docs:read"}}))

	log, err := e.App.ExportEvents(ctx, caller)
	if err != nil {
		t.Fatal(err)
	}
	var got []app.Event
	if err := log.Stream(ctx, func(uint64) {}, func(ev app.Event) error {
		got = append(got, ev)
		return nil
	}); err != nil {
		t.Fatalf("export: %v", err)
	}
	if len(got) != 2 || got[0].Type != events.TypeTenantCreated || got[1].AggregateID != "r2" {
		t.Fatalf("export = %+v, want tenant.created and role r2's event", got)
	}
	for _, ev := range got {
		if !auditlog.IsLeaf(events.StoredSubject(ev.Tenant, ev.Aggregate, ev.AggregateID), ev.Envelope) {
			t.Errorf("line %+v is no leaf", ev)
		}
	}
}
