package app_test

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// auditKeyEvents returns the key set's audit key events of acme.
func (e *keysEnv) auditKeyEvents(tb testing.TB) (created []events.AuditKeyCreated, retired []events.AuditKeyRetired) {
	tb.Helper()
	for _, env := range e.Events(tb, "acme", events.AggregateKeySet, "acme") {
		data, err := events.Decode(env)
		if err != nil {
			tb.Fatal(err)
		}
		switch d := data.(type) {
		case events.AuditKeyCreated:
			created = append(created, d)
		case events.AuditKeyRetired:
			retired = append(retired, d)
		}
	}
	return created, retired
}

func TestRotateAuditKey(t *testing.T) {
	t.Parallel()
	e := mustKeysEnv(t, "")
	ctx := context.Background()
	created, _ := e.auditKeyEvents(t)
	if len(created) != 1 {
		t.Fatalf("tenant creation recorded %d audit keys, want 1", len(created))
	}
	first := created[0]
	k, _, err := e.Keys.AuditSigner(ctx, "acme")
	if err != nil || k.KID != first.KID || !k.Public.Equal(ed25519.PublicKey(first.PublicKey)) {
		t.Fatalf("the key store's audit key %+v, %v is not the recorded %s", k, err, first.KID)
	}

	req := idempotent("rotate-audit-1")
	req.Principal = e.admin
	res, err := e.App.Commands.RotateAuditKey.Handle(ctx, app.RotateAuditKey{Request: req, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	rot := res.AuditKey
	if rot == nil || rot.Retired != first.KID || rot.KID == first.KID || !res.Changed {
		t.Fatalf("rotation %+v", rot)
	}
	created, retired := e.auditKeyEvents(t)
	if len(created) != 2 || created[1].KID != rot.KID || len(retired) != 1 || retired[0].KID != first.KID {
		t.Fatalf("after the rotation: created %+v, retired %+v", created, retired)
	}
	if k, _, _ := e.Keys.AuditSigner(ctx, "acme"); k.KID != rot.KID {
		t.Fatalf("the key store signs with %s, want %s", k.KID, rot.KID)
	}

	// A retry answers the original rotation and rotates nothing.
	again, err := e.App.Commands.RotateAuditKey.Handle(ctx, app.RotateAuditKey{Request: req, Tenant: "acme"})
	if err != nil || !again.Replayed || again.AuditKey == nil || again.AuditKey.KID != rot.KID {
		t.Fatalf("retry: %+v, %v", again.AuditKey, err)
	}
	if c, _ := e.auditKeyEvents(t); len(c) != 2 {
		t.Fatalf("a retry recorded %d audit keys in all, want 2", len(c))
	}

	// Another tenant's admin, and a user without keys:write, may not.
	readOnly, err := authz.ParseSet([]string{"users:read"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []domain.Principal{
		domain.NewPrincipal("globex", "someone", authz.AdminPermissions()),
		domain.NewPrincipal("acme", "reader", readOnly),
	} {
		_, err := e.App.Commands.RotateAuditKey.Handle(ctx, app.RotateAuditKey{Request: app.Request{Principal: p}, Tenant: "acme"})
		if fault.CodeOf(err) != fault.Forbidden {
			t.Errorf("rotation by %+v: %v, want forbidden", p, err)
		}
	}

	// A key the key store rotated without the log knowing (a failed
	// request) is recorded by the next rotation, before its own.
	if _, _, err := e.Keys.RotateAuditKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.Commands.RotateAuditKey.Handle(ctx, app.RotateAuditKey{Request: app.Request{Principal: e.admin}, Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	created, retired = e.auditKeyEvents(t)
	if len(created) != 4 || len(retired) != 3 {
		t.Fatalf("after a lost rotation and another: %d created, %d retired; want 4 and 3", len(created), len(retired))
	}
}
