package dispatcher_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/services/dispatcher"
	"github.com/authstream/authstream/services/dispatcher/smtptest"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

const publicURL = "https://login.acme.example"

// mailEnv is a NATS server with the streams, a database and a KEK, on
// which dispatchers are started and stopped.
type mailEnv struct {
	natsURL string
	js      jetstream.JetStream
	store   *eventstore.Store
	dbURL   string
	pool    *pgxpool.Pool
	kek     *events.Keyring
}

func mustMailEnv(t *testing.T) *mailEnv {
	t.Helper()
	_, natsURL := natstest.RunServer(t)
	_, js := natstest.Connect(t, natsURL)
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kek, err := events.NewKeyring(events.KEK{ID: "test", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &mailEnv{natsURL: natsURL, js: js, store: store, dbURL: dbURL, pool: pool, kek: kek}
}

// start runs a dispatcher with cfg's mail settings until the returned
// function is called (or the test ends).
func (e *mailEnv) start(t *testing.T, mail dispatcher.Config) (stop func()) {
	t.Helper()
	cfg := mail
	cfg.Common = service.Common{Addr: "127.0.0.1:0", NATSURL: e.natsURL, LogLevel: "info", LogFormat: "json", LogOut: io.Discard}
	if mail.LogOut != nil {
		cfg.LogOut = mail.LogOut
	}
	cfg.DatabaseURL, cfg.KEK = config.Secret(e.dbURL), e.kek
	cfg.FirstRetry, cfg.MaxRetry, cfg.AckWait = 20*time.Millisecond, 200*time.Millisecond, 2*time.Second
	if cfg.PublicURL == "" {
		cfg.PublicURL = publicURL
	}
	if cfg.MailFrom == "" {
		cfg.MailFrom = "Acme <no-reply@acme.example>"
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dispatcher.Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("dispatcher: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// issued is a link appended to the log.
type issued struct {
	token string
	env   events.Envelope
}

// mustIssue appends an email_link.issued event as the query service does:
// a random token, sealed, its SHA-256 the link's id.
func (e *mailEnv) mustIssue(t *testing.T, tenant, purpose, email string, ttl time.Duration) issued {
	t.Helper()
	return e.mustIssueFor(t, tenant, purpose, events.NewID(), events.LegacyPersonal(email), ttl)
}

// mustIssueFor is mustIssue for a link to userID, its address as given
// (sealed, or a schema 1 link's clear address).
func (e *mailEnv) mustIssueFor(t *testing.T, tenant, purpose, userID string, email events.Personal, ttl time.Duration) issued {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	id := hex.EncodeToString(sum[:])
	sealed, err := e.kek.Seal(raw, events.EmailLinkAAD(tenant, id))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	env, err := events.New(events.TypeEmailLinkIssued, events.EmailLinkIssued{
		Purpose: purpose, UserID: userID, Email: email, UserVersion: 1, Token: sealed, ExpiresAt: now.Add(ttl),
	}, events.Meta{Tenant: tenant, Aggregate: events.AggregateEmailLink, AggregateID: id, OccurredAt: now, Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(context.Background(), eventstore.Events{Events: []events.Envelope{env}}); err != nil {
		t.Fatal(err)
	}
	return issued{token: token, env: env}
}

// waitRow waits for the sent_mails row of an event to have status want.
func (e *mailEnv) waitRow(t *testing.T, env events.Envelope, want string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var status string
		var attempts int
		err := e.pool.QueryRow(context.Background(), `SELECT status, attempts FROM sent_mails WHERE tenant_id = $1 AND event_id = $2`,
			env.Tenant, env.ID).Scan(&status, &attempts)
		if err == nil && status == want {
			return attempts
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent_mails row of %s: status %q (%v), want %q", env.ID, status, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tokenOf returns the token of a mailed link, checking the link's page.
func tokenOf(t *testing.T, link, tenant, path string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("link %q: %v", link, err)
	}
	if got, want := u.Scheme+"://"+u.Host+u.Path, publicURL+"/t/"+tenant+path; got != want {
		t.Fatalf("link goes to %s, want %s", got, want)
	}
	return u.Query().Get("token")
}

func TestMailer_eachLinkMailedOnceOverSTARTTLS(t *testing.T) {
	t.Parallel()
	e := mustMailEnv(t)
	srv := smtptest.Start(t)
	stop := e.start(t, dispatcher.Config{SMTPURL: config.Secret(srv.URL()), SMTPTLS: srv.ClientTLS})

	links := map[string]issued{}
	for _, c := range []struct{ purpose, email string }{
		{events.LinkVerifyEmail, "alice@acme.example"},
		{events.LinkResetPassword, "bob@acme.example"},
		{events.LinkInvitation, "carol@acme.example"},
	} {
		links[c.email] = e.mustIssue(t, "acme", c.purpose, c.email, time.Hour)
	}
	paths := map[string]string{
		"alice@acme.example": "/email/verify", "bob@acme.example": "/password/reset", "carol@acme.example": "/invitation",
	}
	for email, l := range links {
		m := srv.WaitFor(t, email, 20*time.Second)
		if !m.TLS || !m.Authenticated {
			t.Errorf("mail to %s: TLS %v, authenticated %v; want both", email, m.TLS, m.Authenticated)
		}
		if m.From != "no-reply@acme.example" {
			t.Errorf("mail to %s: from %q", email, m.From)
		}
		if want := l.env.ID + "@login.acme.example"; m.MessageID != want {
			t.Errorf("mail to %s: Message-ID %q, want %q", email, m.MessageID, want)
		}
		if got := tokenOf(t, m.Link(), "acme", paths[email]); got != l.token {
			t.Errorf("mail to %s: the link's token is not the issued one", email)
		}
		if !strings.Contains(m.HTML, `href="`+strings.ReplaceAll(m.Link(), "&", "&amp;")+`"`) {
			t.Errorf("mail to %s: the HTML part does not link to %s:\n%s", email, m.Link(), m.HTML)
		}
		if attempts := e.waitRow(t, l.env, "sent"); attempts != 1 {
			t.Errorf("mail to %s: recorded sent after %d attempts, want 1", email, attempts)
		}
	}

	// Every event comes again (a new consumer from the stream's start):
	// each is recognised as sent, none goes twice.
	stop()
	if err := e.js.DeleteConsumer(context.Background(), events.StreamActivity, "mailer"); err != nil {
		t.Fatal(err)
	}
	more := e.mustIssue(t, "acme", events.LinkVerifyEmail, "dave@acme.example", time.Hour)
	e.start(t, dispatcher.Config{SMTPURL: config.Secret(srv.URL()), SMTPTLS: srv.ClientTLS})
	srv.WaitFor(t, "dave@acme.example", 20*time.Second)
	e.waitRow(t, more.env, "sent")
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Messages()); n != 4 {
		t.Fatalf("%d mails after the redelivery, want 4 (one per event)", n)
	}
}

func TestMailer_reusesConnections(t *testing.T) {
	t.Parallel()
	e := mustMailEnv(t)
	srv := smtptest.Start(t)
	e.start(t, dispatcher.Config{SMTPURL: config.Secret(srv.URL()), SMTPTLS: srv.ClientTLS})
	const n = 24
	for i := range n {
		e.mustIssue(t, "acme", events.LinkResetPassword, "user"+strings.Repeat("x", i)+"@acme.example", time.Hour)
	}
	srv.Wait(t, n, 30*time.Second)
	// The pool holds 4 connections: 24 mails take no more than that
	// (a reused connection the server closed is replaced, which this
	// server does not do).
	if s := srv.Conns(); s > 4 {
		t.Fatalf("%d mails took %d connections, want at most 4", n, s)
	}
}

func TestMailer_refusalsAndRetries(t *testing.T) {
	t.Parallel()
	e := mustMailEnv(t)
	srv := smtptest.Start(t)
	var (
		mu       sync.Mutex
		deferred int
	)
	srv.Reject(func(to string) error {
		switch {
		case strings.HasPrefix(to, "refused@"):
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
		case strings.HasPrefix(to, "later@"):
			mu.Lock()
			defer mu.Unlock()
			if deferred < 2 {
				deferred++
				return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
			}
		}
		return nil
	})
	e.start(t, dispatcher.Config{SMTPURL: config.Secret(srv.URL()), SMTPTLS: srv.ClientTLS})

	refused := e.mustIssue(t, "acme", events.LinkResetPassword, "refused@acme.example", time.Hour)
	later := e.mustIssue(t, "acme", events.LinkResetPassword, "later@acme.example", time.Hour)
	expired := e.mustIssue(t, "acme", events.LinkResetPassword, "expired@acme.example", -time.Second)
	bad := e.mustIssue(t, "acme", events.LinkResetPassword, "not an address", time.Hour)

	if a := e.waitRow(t, refused.env, "failed"); a != 1 {
		t.Errorf("a refused mail was tried %d times, want 1", a)
	}
	if a := e.waitRow(t, later.env, "sent"); a != 3 {
		t.Errorf("a mail deferred twice was sent after %d attempts, want 3", a)
	}
	e.waitRow(t, expired.env, "failed")
	e.waitRow(t, bad.env, "failed")
	ms := srv.Messages()
	if len(ms) != 1 || ms[0].To[0] != "later@acme.example" {
		t.Fatalf("mails sent: %+v; want the deferred one only", ms)
	}
}

// TestMailer_sealedAddresses mails a link whose address is sealed under
// its user's data key, and records the link of a user erased since as
// not sendable, once, without a retry.
func TestMailer_sealedAddresses(t *testing.T) {
	t.Parallel()
	e := mustMailEnv(t)
	ctx := context.Background()
	keys, err := keystore.NewDataKeys(ctx, e.js, e.kek, 1)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(userID, email string) events.Personal {
		t.Helper()
		k, err := keys.Ensure(ctx, "acme", userID)
		if err != nil {
			t.Fatal(err)
		}
		p, err := k.Seal(email, events.PersonalAAD("acme", userID, events.TypeEmailLinkIssued, "email"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	kept, erased := events.NewID(), events.NewID()
	keptAddr, erasedAddr := seal(kept, "hal@acme.example"), seal(erased, "ida@acme.example")
	if err := keys.Destroy(ctx, "acme", erased); err != nil {
		t.Fatal(err)
	}
	srv := smtptest.Start(t)
	e.start(t, dispatcher.Config{SMTPURL: config.Secret(srv.URL()), SMTPTLS: srv.ClientTLS})

	gone := e.mustIssueFor(t, "acme", events.LinkResetPassword, erased, erasedAddr, time.Hour)
	sent := e.mustIssueFor(t, "acme", events.LinkResetPassword, kept, keptAddr, time.Hour)
	if a := e.waitRow(t, gone.env, "failed"); a != 1 {
		t.Errorf("an erased user's link was tried %d times, want 1", a)
	}
	m := srv.WaitFor(t, "hal@acme.example", 20*time.Second)
	if got := tokenOf(t, m.Link(), "acme", "/password/reset"); got != sent.token {
		t.Errorf("mailed token %q, want the link's", got)
	}
	e.waitRow(t, sent.env, "sent")
	if ms := srv.Messages(); len(ms) != 1 {
		t.Fatalf("mails sent: %+v; want hal's only", ms)
	}
	var reason string
	if err := e.pool.QueryRow(ctx, `SELECT error FROM sent_mails WHERE tenant_id = $1 AND event_id = $2`, "acme", gone.env.ID).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "erased") {
		t.Errorf("the erased user's link is recorded with %q, want the reason", reason)
	}
}

func TestMailer_withoutSMTPWritesTheLogWithTheLinkRedacted(t *testing.T) {
	t.Parallel()
	for _, showLinks := range []bool{false, true} {
		t.Run(map[bool]string{false: "redacted", true: "dev"}[showLinks], func(t *testing.T) {
			t.Parallel()
			e := mustMailEnv(t)
			var buf syncBuffer
			e.start(t, dispatcher.Config{MailLogLinks: showLinks, Common: service.Common{LogOut: &buf}})
			l := e.mustIssue(t, "acme", events.LinkVerifyEmail, "erin@acme.example", time.Hour)
			e.waitRow(t, l.env, "sent")
			logs := buf.String()
			if !strings.Contains(logs, "erin@acme.example") || !strings.Contains(logs, publicURL+"/t/acme/email/verify?token=") {
				t.Fatalf("the log holds no mail to erin@acme.example:\n%s", logs)
			}
			if got := strings.Contains(logs, l.token); got != showLinks {
				t.Fatalf("token in the log: %v, want %v:\n%s", got, showLinks, logs)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestVerifications_oneLinkPerAddressRecorded(t *testing.T) {
	t.Parallel()
	e := mustMailEnv(t)
	srv := smtptest.Start(t)
	stop := e.start(t, dispatcher.Config{SMTPURL: config.Secret(srv.URL()), SMTPTLS: srv.ClientTLS})
	userID := events.NewID()
	now := time.Now()
	reg, err := events.New(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("fay"), UsernameKey: events.LegacyPersonal("fay"),
		Credential: events.Sealed{KID: "test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed")}, Email: events.LegacyPersonal("fay@acme.example")},
		events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: userID, OccurredAt: now, Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	role, err := events.New(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "billing"},
		events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: userID, OccurredAt: now, Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.store.Append(context.Background(), eventstore.Events{Events: []events.Envelope{reg, role}})
	if err != nil {
		t.Fatal(err)
	}
	m := srv.WaitFor(t, "fay@acme.example", 20*time.Second)
	if !strings.Contains(m.Link(), publicURL+"/t/acme/email/verify?token=") {
		t.Fatalf("verification link %q", m.Link())
	}
	// A user event recorded longer ago than a link lives gets none.
	old, err := events.New(events.TypeUserProfileUpdated, events.UserProfileUpdated{Email: events.LegacyPersonal("old@acme.example")},
		events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: userID, OccurredAt: now.Add(-25 * time.Hour), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(context.Background(), eventstore.Events{After: res.Positions[0], Events: []events.Envelope{old}}); err != nil {
		t.Fatal(err)
	}

	// Every user event comes again to a new consumer: no second link.
	stop()
	for _, name := range []string{"mail_verify", "mailer"} {
		stream := events.StreamEvents
		if name == "mailer" {
			stream = events.StreamActivity
		}
		if err := e.js.DeleteConsumer(context.Background(), stream, name); err != nil {
			t.Fatal(err)
		}
	}
	e.start(t, dispatcher.Config{SMTPURL: config.Secret(srv.URL()), SMTPTLS: srv.ClientTLS})
	more := e.mustIssue(t, "acme", events.LinkResetPassword, "gus@acme.example", time.Hour)
	srv.WaitFor(t, "gus@acme.example", 20*time.Second)
	e.waitRow(t, more.env, "sent")
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Messages()); n != 2 {
		t.Fatalf("%d mails, want 2 (one verification, one reset)", n)
	}
}
