package keystore_test

import (
	"context"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
)

func TestStore_AuditKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "k1")
	s := mustStore(t, js, kr)
	other := mustStore(t, js, kr) // another process
	tok := mustCreate(t, s, "acme", "EdDSA")

	if _, _, err := s.AuditSigner(ctx, "acme"); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("AuditSigner before any audit key: %v, want not found", err)
	}
	first, created, err := s.EnsureAuditKey(ctx, "acme")
	if err != nil || !created {
		t.Fatalf("EnsureAuditKey = %v, %v", created, err)
	}
	again, created, err := s.EnsureAuditKey(ctx, "acme")
	if err != nil || created || again.KID != first.KID {
		t.Fatalf("EnsureAuditKey again = %+v, %v, %v; want the first key", again, created, err)
	}

	sign := func(s *keystore.Store) (keystore.AuditKey, []byte) {
		t.Helper()
		k, priv, err := s.AuditSigner(ctx, "acme")
		if err != nil {
			t.Fatalf("AuditSigner: %v", err)
		}
		msg := []byte("127.0.0.1:8080/t/acme\n1\nAAAA\n")
		sig := ed25519.Sign(priv, msg)
		if !ed25519.Verify(k.Public, msg, sig) {
			t.Fatal("the audit key's private part does not match its public part")
		}
		return k, sig
	}
	if k, _ := sign(other); k.KID != first.KID {
		t.Fatalf("another process signs with %s, want %s", k.KID, first.KID)
	}

	rotated, retired, err := s.RotateAuditKey(ctx, "acme")
	if err != nil || retired == nil || retired.KID != first.KID || retired.RetiredAt.IsZero() || rotated.KID == first.KID {
		t.Fatalf("RotateAuditKey = %+v, %+v, %v", rotated, retired, err)
	}
	// The other process learns of the rotation through the watch.
	deadline := time.Now().Add(5 * time.Second)
	for {
		k, _ := sign(other)
		if k.KID == rotated.KID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("another process still signs with the retired audit key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	keys, err := other.AuditKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.KID)
	}
	if !slices.Equal(ids, []string{rotated.KID, first.KID}) {
		t.Fatalf("AuditKeys = %v, want the current key then the retired one", ids)
	}

	// Audit keys are no signing keys: not in the JWKS, not signing tokens.
	pubs, err := s.PublicKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(pubs); !slices.Equal(got, []string{tok.KID}) {
		t.Fatalf("JWKS = %v, want only the token key %s", got, tok.KID)
	}
	if d, err := s.Describe(ctx, "acme"); err != nil || len(d.Current) != 1 || d.Current[0].KID != tok.KID {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
	if _, err := s.AuditKeys(ctx, "globex"); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("AuditKeys of a tenant without any: %v, want not found", err)
	}

	t.Run("the first rotation creates", func(t *testing.T) {
		t.Parallel()
		k, retired, err := s.RotateAuditKey(ctx, "initech")
		if err != nil || retired != nil || k.KID == "" {
			t.Fatalf("RotateAuditKey of a tenant without audit keys = %+v, %+v, %v", k, retired, err)
		}
	})
	t.Run("another keyring cannot open it", func(t *testing.T) {
		t.Parallel()
		stranger := mustStore(t, js, mustKeyring(t, "k1"))
		if _, _, err := stranger.AuditSigner(ctx, "acme"); fault.CodeOf(err) != fault.Internal {
			t.Fatalf("AuditSigner under another KEK: %v, want internal", err)
		}
	})
}
