package app_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/query/internal/domain"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

// mustLinkedUser puts a user's registration in the log (the links are
// decided from it) and issues a link of purpose for them, returning the
// user's id and the link's token.
func mustLinkedUser(t *testing.T, e *querytest.Env, purpose string) (string, string) {
	t.Helper()
	ctx := context.Background()
	const email = "alice@acme.example"
	id := e.Users.MustAdd(t, "acme", email, "old password 1234")
	reg, err := events.New(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal(email), UsernameKey: events.LegacyPersonal(email),
		Credential: events.Sealed{KID: "test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed")}, Email: events.LegacyPersonal(email)},
		events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: id, OccurredAt: e.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Append(ctx, eventstore.Events{Events: []events.Envelope{reg}}); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	linkID := hex.EncodeToString(sum[:])
	sealed, err := e.Keyring.Seal(raw, events.EmailLinkAAD("acme", linkID))
	if err != nil {
		t.Fatal(err)
	}
	dk, err := e.DataKeys.Ensure(ctx, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	to, err := dk.Seal(email, events.PersonalAAD("acme", id, events.TypeEmailLinkIssued, "email"))
	if err != nil {
		t.Fatal(err)
	}
	issued, err := events.New(events.TypeEmailLinkIssued, events.EmailLinkIssued{
		Purpose: purpose, UserID: id, Email: to, UserVersion: 1, Token: sealed, ExpiresAt: e.Now().Add(30 * time.Minute),
	}, events.Meta{Tenant: "acme", Aggregate: events.AggregateEmailLink, AggregateID: linkID, OccurredAt: e.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Append(ctx, eventstore.Events{Events: []events.Envelope{issued}}); err != nil {
		t.Fatal(err)
	}
	return id, token
}

func TestApp_ResetPassword_oneUseAmongRacers(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	id, token := mustLinkedUser(t, e, events.LinkResetPassword)
	const racers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range racers {
		wg.Go(func() {
			err := e.App.ResetPassword(context.Background(), "acme", token, fmt.Sprintf("new password number %d", i), "203.0.113.7")
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	passed := 0
	for _, err := range errs {
		switch {
		case err == nil:
			passed++
		// A racer that reads the user after the winner's password change
		// and before the link's use finds the link void: refused all the
		// same.
		case !errors.Is(err, domain.ErrLinkUsed) && !errors.Is(err, domain.ErrLinkVoid):
			t.Errorf("a racer's refusal = %v, want ErrLinkUsed or ErrLinkVoid", err)
		}
	}
	if passed != 1 {
		t.Fatalf("%d of %d racers used the link, want 1", passed, racers)
	}
	h, err := e.Store.Load(context.Background(), "acme", events.AggregateUser, id)
	if err != nil {
		t.Fatal(err)
	}
	changes := 0
	for _, env := range h.Envelopes() {
		if env.Type == events.TypeUserPasswordChanged {
			changes++
		}
	}
	if changes != 1 {
		t.Fatalf("%d password changes in the user's log, want 1", changes)
	}
}

func TestApp_CheckLink(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	_, token := mustLinkedUser(t, e, events.LinkResetPassword)
	ctx := context.Background()
	for _, tc := range []struct {
		name, tenant, purpose, token string
		want                         error
	}{
		{"good", "acme", events.LinkResetPassword, token, nil},
		{"another tenant", "globex", events.LinkResetPassword, token, domain.ErrUnknownLink},
		{"another purpose", "acme", events.LinkVerifyEmail, token, domain.ErrLinkPurpose},
		{"malformed", "acme", events.LinkResetPassword, "not-a-token", domain.ErrUnknownLink},
	} {
		if err := e.App.CheckLink(ctx, tc.tenant, tc.purpose, tc.token); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: CheckLink = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A password the policy refuses spends nothing.
	if err := e.App.ResetPassword(ctx, "acme", token, "short", ""); err == nil || errors.Is(err, domain.ErrLinkUsed) {
		t.Fatalf("a short password = %v, want the policy's refusal", err)
	}
	if err := e.App.CheckLink(ctx, "acme", events.LinkResetPassword, token); err != nil {
		t.Fatalf("the link after a refused password: %v", err)
	}
	e.Advance(31 * time.Minute)
	if err := e.App.CheckLink(ctx, "acme", events.LinkResetPassword, token); !errors.Is(err, domain.ErrLinkExpired) {
		t.Fatalf("CheckLink after 31 minutes = %v, want ErrLinkExpired", err)
	}
	if err := e.App.ResetPassword(ctx, "acme", token, "a long enough password", ""); !errors.Is(err, domain.ErrLinkExpired) {
		t.Fatalf("ResetPassword after 31 minutes = %v, want ErrLinkExpired", err)
	}
}
