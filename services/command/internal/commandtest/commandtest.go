// Package commandtest starts the command service's application against a
// real embedded JetStream for tests and benchmarks: the event streams, the
// key store, a bootstrapped platform tenant, and access tokens minted with
// the same keys the service verifies.
package commandtest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/command/internal/app"
)

// PublicURL is the issuer prefix of the tokens Env mints and verifies.
const PublicURL = "https://auth.test"

// Platform admin credentials of every Env.
const (
	PlatformAdmin    = "root"
	PlatformPassword = "platform-secret"
)

// Env is one embedded NATS server with the application on it.
type Env struct {
	URL    string
	JS     jetstream.JetStream
	Store  *eventstore.Store
	Keys   *keystore.Store
	KEK    *events.Keyring
	Hasher *authn.Hasher
	// DataKeys seal users' personal members (app.WithDataKeys).
	DataKeys *keystore.DataKeys
	App      *app.App
	AdminID  string // the platform admin's user id
}

// New starts a server, creates the streams and the key store, assembles the
// application (bcrypt at its minimum cost) and bootstraps the platform
// tenant. Everything stops when tb ends.
func New(tb testing.TB, opts ...app.Option) *Env {
	tb.Helper()
	e := NewBare(tb, opts...)
	created, id, err := e.App.BootstrapPlatform(context.Background(), PlatformAdmin, PlatformPassword)
	if err != nil || !created {
		tb.Fatalf("bootstrap: created %v, %v", created, err)
	}
	e.AdminID = id
	return e
}

// NewBare is New without the bootstrap: no tenant exists yet.
func NewBare(tb testing.TB, opts ...app.Option) *Env {
	tb.Helper()
	ctx := context.Background()
	_, url := natstest.RunServer(tb)
	_, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(ctx, js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("streams: %v", err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kek, err := events.NewKeyring(events.KEK{ID: "test", Key: key})
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := keystore.New(ctx, js, kek)
	if err != nil {
		tb.Fatalf("keystore: %v", err)
	}
	tb.Cleanup(func() { _ = keys.Close() })
	hasher, err := authn.NewHasher(bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	dataKeys, err := keystore.NewDataKeys(ctx, js, kek, 1)
	if err != nil {
		tb.Fatalf("data keys: %v", err)
	}
	e := &Env{URL: url, JS: js, Store: store, Keys: keys, KEK: kek, Hasher: hasher, DataKeys: dataKeys}
	e.App = e.NewApp(tb, store, opts...)
	return e
}

// NewApp assembles another application on store (a store on another
// connection, say) sharing the Env's keys.
func (e *Env) NewApp(tb testing.TB, store *eventstore.Store, opts ...app.Option) *app.App {
	tb.Helper()
	a, err := app.New(store, e.Keys, e.KEK, e.Hasher, PublicURL, append([]app.Option{app.WithDataKeys(e.DataKeys)}, opts...)...)
	if err != nil {
		tb.Fatalf("app: %v", err)
	}
	return a
}

// Token mints an access token of user sub of tenant, issued now.
func (e *Env) Token(tb testing.TB, tenant, sub string) string {
	tb.Helper()
	return e.TokenAt(tb, tenant, sub, time.Now())
}

// TokenAt mints an access token of user sub of tenant issued at iat, signed
// with the tenant's current key exactly as the query service signs.
func (e *Env) TokenAt(tb testing.TB, tenant, sub string, iat time.Time) string {
	tb.Helper()
	key, err := e.Keys.Signer(context.Background(), tenant)
	if err != nil {
		tb.Fatalf("signer of %s: %v", tenant, err)
	}
	tok, err := authn.Issue(key, authn.Claims{
		Issuer:    authn.IssuerURL(PublicURL, tenant),
		Subject:   sub,
		Tenant:    tenant,
		IssuedAt:  iat,
		NotBefore: iat,
		ExpiresAt: iat.Add(15 * time.Minute),
	})
	if err != nil {
		tb.Fatalf("issue: %v", err)
	}
	return tok
}

// PlatformToken is a token of the platform admin.
func (e *Env) PlatformToken(tb testing.TB) string {
	tb.Helper()
	return e.Token(tb, "platform", e.AdminID)
}

// LastSeq returns the last sequence of the AUTH_EVENTS stream (events and
// claims): a request that must store nothing leaves it unchanged.
func (e *Env) LastSeq(tb testing.TB) uint64 {
	tb.Helper()
	s, err := e.JS.Stream(context.Background(), events.StreamEvents)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.LastSeq
}

// Events returns the events of one aggregate.
func (e *Env) Events(tb testing.TB, tenant, aggregate, id string) []events.Envelope {
	tb.Helper()
	h, err := e.Store.Load(context.Background(), tenant, aggregate, id)
	if err != nil {
		tb.Fatalf("load %s %s/%s: %v", aggregate, tenant, id, err)
	}
	return h.Envelopes()
}

// Username opens the username a user registered with, sealed under their
// data key; it fails the test when the user has no registration.
func (e *Env) Username(tb testing.TB, tenant, userID string) (string, error) {
	tb.Helper()
	for _, env := range e.Events(tb, tenant, events.AggregateUser, userID) {
		if env.Type != events.TypeUserRegistered {
			continue
		}
		p, err := events.Decode(env)
		if err != nil {
			tb.Fatal(err)
		}
		return events.OpenPersonal(context.Background(), e.DataKeys, env, "username", p.(events.UserRegistered).Username)
	}
	tb.Fatalf("user %s/%s has no registration", tenant, userID)
	return "", nil
}
