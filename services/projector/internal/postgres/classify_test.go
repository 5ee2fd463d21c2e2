package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
)

// TestApplier_ApplyBatch_Classifies puts one message between a tenant's
// creation and a later event of the tenant, in one batch, and checks what
// becomes of both: a message that is no event of the platform is recorded
// and passed and the tenant goes on; an event the tenant's state cannot
// take quarantines the tenant, whose later event is then held; either way
// the checkpoint passes the whole batch.
func TestApplier_ApplyBatch_Classifies(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	ap := postgres.NewApplier()
	ctx := context.Background()
	g := projectortest.NewGen(8)
	var seq uint64
	stored := func(e events.Envelope) eventstore.Stored {
		seq++
		return projectortest.Stored(seq, e)[0]
	}
	tests := []struct {
		name   string
		bad    func(tenant string) eventstore.Stored
		reason string // the record of a message that is no event; "" for a quarantine
	}{
		{"a subject of another partition", func(tenant string) eventstore.Stored {
			st := stored(g.Envelope(t, tenant, events.AggregateRole, "r", events.TypeRoleDefined, events.RoleDefined{}))
			p := events.Partition(tenant)
			st.Subject = st.Subject[:len(st.Subject)-len(strconv.Itoa(p))] + strconv.Itoa((p+1)%events.Partitions)
			return st
		}, accounts.ReasonMalformedSubject},
		{"an envelope copied to another user's subject", func(tenant string) eventstore.Stored {
			st := stored(g.Envelope(t, tenant, events.AggregateRole, "r", events.TypeRoleDefined, events.RoleDefined{}))
			st.Subject = events.StoredSubject(tenant, events.AggregateRole, "other")
			return st
		}, accounts.ReasonSubjectMismatch},
		{"an activity event in the events stream", func(tenant string) eventstore.Stored {
			st := stored(g.Envelope(t, tenant, events.AggregateSession, "s1", events.TypeSessionRevoked, events.SessionRevoked{Reason: "test"}))
			st.Subject = events.SubjectPrefixEvents + "." + tenant + ".session.s1." + strconv.Itoa(events.Partition(tenant))
			return st
		}, accounts.ReasonSubjectMismatch},
		{"an event of an unknown type", func(tenant string) eventstore.Stored {
			e := g.Envelope(t, tenant, events.AggregateUser, events.NewID(), events.TypeUserEnabled, events.UserEnabled{})
			e.Type, e.Data = "user.renamed", json.RawMessage(`{"username":"x"}`)
			return stored(e)
		}, ""},
		{"a schema from the future", func(tenant string) eventstore.Stored {
			e := g.Envelope(t, tenant, events.AggregateUser, events.NewID(), events.TypeUserEnabled, events.UserEnabled{})
			e.Schema = 99
			return stored(e)
		}, ""},
		{"a change of a user that does not exist", func(tenant string) eventstore.Stored {
			return stored(g.Envelope(t, tenant, events.AggregateUser, events.NewID(), events.TypeUserDisabled, events.UserDisabled{}))
		}, ""},
		{"the tenant created twice", func(tenant string) eventstore.Stored {
			e := g.Envelope(t, tenant, events.AggregateTenant, tenant, events.TypeTenantEnabled, events.TenantEnabled{})
			e.Type, e.Data = events.TypeTenantCreated, json.RawMessage(`{"name":"again"}`)
			return stored(e)
		}, ""},
		{"a permission that does not parse", func(tenant string) eventstore.Stored {
			return stored(g.Envelope(t, tenant, events.AggregateRole, "broken", events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"Not A Permission"}}))
		}, ""},
		{"a version past the range of the version columns", func(tenant string) eventstore.Stored {
			e := g.Envelope(t, tenant, events.AggregateTenant, tenant, events.TypeTenantDisabled, events.TenantDisabled{})
			e.Version = 1 << 63
			return stored(e)
		}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := fmt.Sprintf("classify-%d", i)
			p := events.Partition(tenant)
			created := stored(g.Envelope(t, tenant, events.AggregateTenant, tenant, events.TypeTenantCreated, events.TenantCreated{Name: tenant}))
			bad := tt.bad(tenant)
			later := stored(g.Envelope(t, tenant, events.AggregateRole, "later", events.TypeRoleDefined, events.RoleDefined{Description: "later"}))
			res := mustApplyBatch(t, ap, pool, live, p, []eventstore.Stored{created, bad, later})
			if res.To != later.Sequence {
				t.Fatalf("checkpoint %d, want %d: the batch passes whatever it holds", res.To, later.Sequence)
			}
			laterApplied := projectortest.Count(t, pool, `SELECT count(*) FROM roles WHERE tenant_id = $1 AND name = 'later'`, tenant) == 1
			if tt.reason != "" {
				if len(res.Rejected) != 1 || res.Rejected[0].Reason != tt.reason || res.Rejected[0].Seq != bad.Sequence ||
					len(res.Quarantined) != 0 || res.Applied != 2 || !laterApplied {
					t.Fatalf("result %+v (later applied: %v), want %s passed and the tenant going on", res, laterApplied, tt.reason)
				}
				if n := projectortest.Count(t, pool, `SELECT count(*) FROM projection_skipped_messages
					WHERE projection = 'accounts' AND seq = $1 AND reason = $2 AND tenant = $3`, int64(bad.Sequence), tt.reason, tenant); n != 1 {
					t.Fatalf("%d records of the skipped message", n)
				}
				return
			}
			if len(res.Quarantined) != 1 || res.Quarantined[0].Tenant != tenant || res.Quarantined[0].Seq != bad.Sequence ||
				len(res.Rejected) != 0 || res.Applied != 1 || res.Held != 1 || laterApplied {
				t.Fatalf("result %+v (later applied: %v), want the tenant quarantined and its later event held", res, laterApplied)
			}
			if n := projectortest.Count(t, pool, `SELECT count(*) FROM projection_tenant_quarantine
				WHERE projection = 'accounts@1' AND tenant = $1 AND seq = $2 AND event_id = $3 AND partition = $4`,
				tenant, int64(bad.Sequence), bad.Envelope.ID, p); n != 1 {
				t.Fatalf("%d quarantine rows", n)
			}
			// The next batch holds the tenant's events too.
			more := stored(g.Envelope(t, tenant, events.AggregateRole, "more", events.TypeRoleDefined, events.RoleDefined{}))
			if res := mustApplyBatch(t, ap, pool, live, p, []eventstore.Stored{more}); res.Held != 1 || res.Applied != 0 || res.To != more.Sequence {
				t.Fatalf("next batch %+v, want the event held and passed", res)
			}
		})
	}

	t.Run("a message that is no envelope", func(t *testing.T) {
		tenant := "classify-corrupt"
		p := events.Partition(tenant)
		created := stored(g.Envelope(t, tenant, events.AggregateTenant, tenant, events.TypeTenantCreated, events.TenantCreated{Name: tenant}))
		seq++
		corrupt := &eventstore.DecodeError{Sequence: seq, Subject: events.StoredSubject(tenant, events.AggregateUser, "u1"), Err: errors.New("envelope member id is missing")}
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		res, err := ap.ApplyBatch(ctx, tx, live, p, []eventstore.Stored{created}, corrupt)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if len(res.Rejected) != 1 || res.Rejected[0].Reason != accounts.ReasonUndecodable || res.Rejected[0].Tenant != tenant ||
			res.To != corrupt.Sequence || res.Applied != 1 {
			t.Fatalf("result %+v", res)
		}
	})

	t.Run("an event of a tenant never created", func(t *testing.T) {
		ghost := "classify-ghost"
		e := stored(g.Envelope(t, ghost, events.AggregateUser, events.NewID(), events.TypeUserRegistered,
			events.UserRegistered{Username: events.LegacyPersonal("x"), UsernameKey: events.LegacyPersonal("x"), Credential: g.Sealed()}))
		res := mustApplyBatch(t, ap, pool, live, events.Partition(ghost), []eventstore.Stored{e})
		if len(res.Rejected) != 1 || res.Rejected[0].Reason != accounts.ReasonUnknownTenant || res.Applied != 0 || res.To != e.Sequence {
			t.Fatalf("result %+v", res)
		}
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM users WHERE tenant_id = $1`, ghost); n != 0 {
			t.Fatalf("the unknown tenant has %d users", n)
		}
	})
}
