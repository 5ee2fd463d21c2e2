package readmodel_test

import (
	"context"
	"testing"

	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
)

func TestQuarantineNotice_roundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		notice  readmodel.QuarantineNotice
		payload string
	}{
		{"quarantined", readmodel.QuarantineNotice{Projection: "accounts", Tenant: "acme", Quarantined: true, Seq: 42}, "accounts:quarantined:acme:42"},
		{"released", readmodel.QuarantineNotice{Projection: "accounts", Tenant: "acme-2"}, "accounts:released:acme-2"},
		{"reset", readmodel.QuarantineNotice{Projection: "accounts", Reset: true}, "accounts:reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.notice.String(); got != tt.payload {
				t.Fatalf("String() = %q, want %q", got, tt.payload)
			}
			got, err := readmodel.ParseQuarantineNotice(tt.payload)
			if err != nil || got != tt.notice {
				t.Fatalf("ParseQuarantineNotice(%q) = %+v, %v; want %+v", tt.payload, got, err, tt.notice)
			}
		})
	}
}

func TestParseQuarantineNotice_refuses(t *testing.T) {
	t.Parallel()
	for _, payload := range []string{
		"", "accounts", ":reset", "accounts:reset:x", "accounts:quarantined:acme", "accounts:quarantined:acme:0",
		"accounts:quarantined:acme:x", "accounts:quarantined::4", "accounts:released", "accounts:released:",
		"accounts:released:ac*me", "accounts:released:a.b", "accounts:paused:acme", "accounts:released:acme:3",
		"accounts:quarantined:acme:042", "accounts:quarantined:acme:+42", "acc ounts:reset",
	} {
		if n, err := readmodel.ParseQuarantineNotice(payload); err == nil {
			t.Errorf("ParseQuarantineNotice(%q) = %+v, want a refusal", payload, n)
		}
	}
}

// TestQuarantinedTenants checks that the query role reads the quarantined
// tenants of the active generation, and only those.
func TestQuarantinedTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	if _, err := pool.Exec(ctx, `INSERT INTO projection_tenant_quarantine
		(projection, tenant, partition, seq, subject, event_id, event_type, error) VALUES
		('accounts@1', 'globex', 7, 12, 'auth.evt.globex.user.u1.7', 'e1', 'user.disabled', 'user u1 does not exist'),
		('accounts@1', 'acme', 3, 40, 'auth.evt.acme.user.u2.3', 'e2', 'user.renamed', 'unknown event type'),
		('accounts@2', 'initech', 5, 50, 'auth.evt.initech.user.u3.5', 'e3', 'user.renamed', 'a generation being built')`); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE authstream_query`); err != nil {
		t.Fatal(err)
	}
	got, err := readmodel.QuarantinedTenants(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Tenant != "acme" || got[1].Tenant != "globex" {
		t.Fatalf("QuarantinedTenants = %+v, want acme and globex", got)
	}
	if a := got[0]; a.Projection != "accounts" || a.Partition != 3 || a.Seq != 40 || a.EventID != "e2" ||
		a.EventType != "user.renamed" || a.Error != "unknown event type" || a.At.IsZero() {
		t.Fatalf("acme: %+v", a)
	}
	// The role reads the view, not the table behind it.
	if _, err := tx.Exec(ctx, `SAVEPOINT s`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM projection_tenant_quarantine`); err == nil {
		t.Fatal("the query role reads projection_tenant_quarantine")
	}
}

// FuzzParseQuarantineNotice checks that no payload makes the parser panic,
// and that what it accepts prints back as the same payload. The seed corpus
// is in testdata/fuzz/FuzzParseQuarantineNotice.
func FuzzParseQuarantineNotice(f *testing.F) {
	for _, s := range []string{"accounts:quarantined:acme:42", "accounts:released:acme", "accounts:reset", "a:b:c:d:e", ":", "accounts:quarantined:acme:042"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		n, err := readmodel.ParseQuarantineNotice(payload)
		if err != nil {
			return
		}
		if got := n.String(); got != payload {
			t.Fatalf("ParseQuarantineNotice(%q) = %+v, which prints %q", payload, n, got)
		}
	})
}
