package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/dispatcher/internal/domain"
	"github.com/authstream/authstream/services/dispatcher/internal/natsjs"
	"github.com/authstream/authstream/services/dispatcher/internal/postgres"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MailConsumer is the name of the mailer's durable consumer on
// AUTH_ACTIVITY.
const MailConsumer = "mailer"

// mailFilter are the stored subjects of the e-mailed links of every
// tenant.
const mailFilter = events.SubjectPrefixActivity + ".*." + events.AggregateEmailLink + ".>"

// MailSender hands a mail to whatever carries it: an SMTP server, or the
// log when none is configured.
type MailSender interface {
	// Send sends m. An error wrapping domain.ErrMailRefused is final; any
	// other is retried.
	Send(ctx context.Context, m domain.Mail) error
}

// MailerDeps are the adapters the mailer runs on.
type MailerDeps struct {
	Consumers *natsjs.Consumers
	Mails     *postgres.Mails
	Sender    MailSender
	KEK       *events.Keyring
	// Keys are the users' data keys, which open the addresses of links
	// issued since email_link.issued schema 2 (ADR 0015); nil opens only
	// the clear addresses of older links.
	Keys      events.PersonalKeys
	Telemetry *telemetry.Telemetry
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// MailerConfig tunes the mailer.
type MailerConfig struct {
	// PublicURL is the query service's public base URL, where the links
	// point. Required.
	PublicURL string
	// From is the sender address of every mail. Required.
	From string
	// Templates render the mails (default domain.DefaultTemplates).
	Templates *domain.Templates
	// TemplatesReady, when set, is closed once Templates know the
	// tenants' own templates (MailTemplates.Ready): no mail is sent
	// before.
	TemplatesReady <-chan struct{}
	// Backoff is the retry schedule of a mail the server did not take.
	Backoff domain.Backoff
	// Workers bounds the mails in flight (default 16).
	Workers int
}

// Mailer sends the mail each email_link.issued event asks for, once: a
// durable consumer on AUTH_ACTIVITY, a record per event in PostgreSQL
// written before and after the send, retries with backoff. Run it once,
// on one dispatcher at a time.
type Mailer struct {
	deps  MailerDeps
	cfg   MailerConfig
	log   *slog.Logger
	sends metric.Int64Counter

	mu       sync.Mutex
	inFlight map[string]bool // event ids being sent
}

// NewMailer returns a Mailer.
func NewMailer(deps MailerDeps, cfg MailerConfig) (*Mailer, error) {
	if deps.Consumers == nil || deps.Mails == nil || deps.Sender == nil || deps.KEK == nil {
		return nil, errors.New("mailer: consumers, mails, sender and kek are required")
	}
	if cfg.PublicURL == "" || cfg.From == "" {
		return nil, errors.New("mailer: public url and from address are required")
	}
	if deps.Telemetry == nil {
		deps.Telemetry = telemetry.Nop()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.Templates == nil {
		cfg.Templates = domain.DefaultTemplates()
	}
	if cfg.Backoff.First <= 0 {
		cfg.Backoff.First = DefaultFirstRetry
	}
	if cfg.Backoff.Max <= 0 {
		cfg.Backoff.Max = DefaultMaxRetry
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	sends, err := deps.Telemetry.MeterProvider.Meter(meterScope).Int64Counter("authstream.mail.sends",
		metric.WithDescription("Mail attempts by result: sent, retried (the server did not take it; tried again later), failed (refused for good or expired), duplicate (already sent)"),
		metric.WithUnit("{attempt}"))
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	return &Mailer{deps: deps, cfg: cfg, log: deps.Telemetry.Logger, sends: sends, inFlight: map[string]bool{}}, nil
}

// Run sends mails until ctx ends, then waits for the mails in flight and
// returns nil. What it did not acknowledge comes again to the next run.
func (m *Mailer) Run(ctx context.Context) error {
	if m.cfg.TemplatesReady != nil {
		select {
		case <-m.cfg.TemplatesReady:
		case <-ctx.Done():
			return nil
		}
	}
	var cons *natsjs.Consumer
	for attempt := 1; ; attempt++ {
		var err error
		cons, err = m.deps.Consumers.Open(ctx, natsjs.Spec{Stream: events.StreamActivity, Name: MailConsumer, Subjects: []string{mailFilter}})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt%20 == 1 {
			m.log.WarnContext(ctx, "mail consumer not opened; retrying", "err", err)
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return nil
		}
	}
	sem := make(chan struct{}, m.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		msgs, err := cons.Fetch(ctx, m.cfg.Workers, time.Second)
		if err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "mail fetch failed", "err", err)
			sleep(ctx, time.Second)
		}
		for _, msg := range msgs {
			if !m.take(msg.EventID) {
				continue // already being sent: this is a redelivery
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				m.release(msg.EventID)
				return nil
			}
			wg.Go(func() {
				defer func() { <-sem; m.release(msg.EventID) }()
				m.handle(ctx, msg)
			})
		}
	}
	return nil
}

func (m *Mailer) take(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inFlight[id] {
		return false
	}
	m.inFlight[id] = true
	return true
}

func (m *Mailer) release(id string) {
	m.mu.Lock()
	delete(m.inFlight, id)
	m.mu.Unlock()
}

var (
	mailSent      = metric.WithAttributes(attribute.String("result", "sent"))
	mailRetried   = metric.WithAttributes(attribute.String("result", "retried"))
	mailFailed    = metric.WithAttributes(attribute.String("result", "failed"))
	mailDuplicate = metric.WithAttributes(attribute.String("result", "duplicate"))
)

// handle sends the mail of one message. The order is what makes a mail
// go once: the record says "sending" (committed) before the send and
// "sent" after it, and the message is acknowledged last. A message that
// comes again finds "sent" and is only acknowledged; one that finds
// "sending" was cut off by a crash between the send and its record (or
// before the send), and is sent again with the same Message-ID.
func (m *Mailer) handle(ctx context.Context, msg natsjs.Msg) {
	if msg.Type != events.TypeEmailLinkIssued {
		m.ack(ctx, msg)
		return
	}
	env, e, err := decodeLink(msg.Data)
	if err != nil {
		// Nothing can be sent from it, ever: reported, and passed over.
		m.log.ErrorContext(ctx, "mail event unreadable: no mail sent", "seq", msg.Sequence, "event", msg.EventID, "err", err)
		m.sends.Add(ctx, 1, mailFailed)
		m.ack(ctx, msg)
		return
	}
	now := m.deps.Now()
	key := postgres.MailKey{Tenant: env.Tenant, EventID: env.ID}
	start := postgres.MailStart{MailKey: key, EventType: env.Type, Purpose: e.Purpose, Sequence: msg.Sequence,
		MessageID: domain.MessageID(env.ID, m.cfg.PublicURL), At: now}
	prev, attempts, err := m.deps.Mails.Begin(ctx, start)
	if err != nil {
		m.retry(ctx, msg, 1, err)
		return
	}
	logArgs := []any{"tenant", env.Tenant, "event", env.ID, "purpose", e.Purpose, "attempt", attempts}
	if prev == postgres.MailSent || prev == postgres.MailFailed {
		m.sends.Add(ctx, 1, mailDuplicate)
		m.ack(ctx, msg)
		return
	}
	if prev == postgres.MailSending {
		m.log.InfoContext(ctx, "mail found in flight: its outcome is unknown, sending it again", logArgs...)
	}
	fail := func(reason string) {
		m.log.WarnContext(ctx, "mail not sent, for good", append(logArgs, "reason", reason)...)
		m.sends.Add(ctx, 1, mailFailed)
		if err := m.deps.Mails.Failed(ctx, key, true, reason, m.deps.Now()); err != nil {
			m.retry(ctx, msg, attempts, err)
			return
		}
		m.ack(ctx, msg)
	}
	if !now.Before(e.ExpiresAt) {
		fail("the link expired before it could be sent")
		return
	}
	to, err := events.OpenPersonalOf(ctx, m.deps.Keys, env, e.UserID, "email", e.Email)
	switch {
	case errors.Is(err, events.ErrErased):
		// The person was erased since the link was issued: there is no
		// address to send it to, now or ever.
		fail("the user was erased: the link has no address")
		return
	case errors.Is(err, events.ErrOpen), errors.Is(err, events.ErrNoDataKey):
		fail("the link's address does not open")
		return
	case err != nil:
		// The key store: tried again later, like a server that did not
		// take the mail. The error names the user, never the address.
		m.log.WarnContext(ctx, "mail address not opened; retrying", append(logArgs, "err", err)...)
		m.sends.Add(ctx, 1, mailRetried)
		if rerr := m.deps.Mails.Failed(ctx, key, false, err.Error(), m.deps.Now()); rerr != nil {
			m.log.WarnContext(ctx, "mail failure not recorded", append(logArgs, "err", rerr)...)
		}
		m.retry(ctx, msg, attempts, err)
		return
	}
	e.Email = events.LegacyPersonal(to) // opened, for the template
	token, err := m.openToken(env, e)
	if err != nil {
		fail(err.Error())
		return
	}
	mail, err := m.cfg.Templates.NewLinkMail(env, e, token, m.cfg.PublicURL, m.cfg.From)
	if err != nil {
		fail(err.Error())
		return
	}
	if mail.TemplateFault != nil {
		m.log.ErrorContext(ctx, "the tenant's mail template did not render: the default is used", append(logArgs, "err", mail.TemplateFault)...)
	}
	if err := m.deps.Sender.Send(ctx, mail); err != nil {
		if errors.Is(err, domain.ErrMailRefused) {
			fail(err.Error())
			return
		}
		if ctx.Err() != nil {
			return // stopping: the message comes again to the next run
		}
		m.log.WarnContext(ctx, "mail not sent; retrying", append(logArgs, "err", err)...)
		m.sends.Add(ctx, 1, mailRetried)
		if rerr := m.deps.Mails.Failed(ctx, key, false, err.Error(), m.deps.Now()); rerr != nil {
			m.log.WarnContext(ctx, "mail failure not recorded", append(logArgs, "err", rerr)...)
		}
		m.retry(ctx, msg, attempts, err)
		return
	}
	// The server has the mail: record it, however long PostgreSQL takes,
	// before the acknowledgement, so that it does not go twice.
	for try := 1; ; try++ {
		err := m.deps.Mails.Sent(context.WithoutCancel(ctx), key, m.deps.Now())
		if err == nil {
			break
		}
		m.log.WarnContext(ctx, "sent mail not recorded; retrying", append(logArgs, "err", err)...)
		if !sleep(ctx, m.cfg.Backoff.Delay(try, rand.Float64)) {
			return
		}
	}
	m.sends.Add(ctx, 1, mailSent)
	m.log.InfoContext(ctx, "mail sent", logArgs...)
	m.ack(ctx, msg)
}

// retry hands the message back for a later attempt, after the backoff of
// attempts failures.
func (m *Mailer) retry(ctx context.Context, msg natsjs.Msg, attempts int, cause error) {
	delay := m.cfg.Backoff.Delay(max(attempts, 1), rand.Float64)
	if err := msg.NakWithDelay(delay); err != nil && ctx.Err() == nil {
		m.log.WarnContext(ctx, "mail not handed back for a retry; it comes back after the ack wait", "event", msg.EventID, "err", err, "cause", cause)
	}
}

func (m *Mailer) ack(ctx context.Context, msg natsjs.Msg) {
	if err := msg.Ack(); err != nil && ctx.Err() == nil {
		m.log.WarnContext(ctx, "mail event not acknowledged; it comes again and is recognised", "event", msg.EventID, "err", err)
	}
}

// openToken opens a link's sealed token (32 random bytes) and returns it
// as the link carries it, base64url without padding, after checking it
// against the link's id, the SHA-256 of that text.
func (m *Mailer) openToken(env events.Envelope, e events.EmailLinkIssued) (string, error) {
	raw, err := m.deps.KEK.Open(e.Token, events.EmailLinkAAD(env.Tenant, env.AggregateID))
	if err != nil {
		return "", fmt.Errorf("the link's token does not open: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	if hex.EncodeToString(sum[:]) != env.AggregateID {
		return "", errors.New("the link's token does not match its id")
	}
	return token, nil
}

// decodeLink parses an email_link.issued event.
func decodeLink(data []byte) (events.Envelope, events.EmailLinkIssued, error) {
	env, err := events.ParseEnvelope(data)
	if err != nil {
		return events.Envelope{}, events.EmailLinkIssued{}, err
	}
	p, err := events.Decode(env)
	if err != nil {
		return events.Envelope{}, events.EmailLinkIssued{}, err
	}
	e, ok := p.(events.EmailLinkIssued)
	if !ok {
		return events.Envelope{}, events.EmailLinkIssued{}, fmt.Errorf("payload of %s is %T", env.Type, p)
	}
	return env, e, nil
}

// LogSender writes mails to the log instead of sending them, for a
// platform with no SMTP server configured: the link redacted unless
// ShowLinks (a developer's machine).
type LogSender struct {
	Log       *slog.Logger
	ShowLinks bool
}

// Send logs m at info.
func (s LogSender) Send(ctx context.Context, m domain.Mail) error {
	link := m.Link
	if !s.ShowLinks {
		if i := strings.Index(link, "token="); i >= 0 {
			link = link[:i] + "token=[redacted]"
		}
	}
	s.Log.InfoContext(ctx, "mail (no AUTH_SMTP_URL: written to the log, not sent)", "to", m.To, "subject", m.Subject, "link", link, "message_id", m.MessageID)
	return nil
}
