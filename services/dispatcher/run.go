// Package dispatcher is the webhook dispatcher and the mailer: it
// delivers each tenant's events to the tenant's webhook endpoints, signed
// per Standard Webhooks, in order per aggregate and at least once, driven
// by one durable JetStream consumer per endpoint, and records every
// attempt in PostgreSQL; and it sends the mail of each mailed link
// (email_link.issued) once, through SMTP (AUTH_SMTP_URL) or to the log,
// driven by the durable consumer "mailer" on AUTH_ACTIVITY.
//
// This root package is the service's importable facade: Config,
// ConfigFromEnv and Run, so that the binary in cmd/authstream-dispatcher,
// the all-in-one binary and end-to-end tests start the same thing.
// Everything else lives under internal/.
package dispatcher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/services/dispatcher/internal/app"
	"github.com/authstream/authstream/services/dispatcher/internal/domain"
	"github.com/authstream/authstream/services/dispatcher/internal/natsjs"
	"github.com/authstream/authstream/services/dispatcher/internal/outbound"
	"github.com/authstream/authstream/services/dispatcher/internal/postgres"
	"github.com/authstream/authstream/services/dispatcher/internal/smtp"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Service is the name the dispatcher reports in logs, metrics and traces.
const Service = "dispatcher"

// DefaultAddr is the dispatcher's operability listen address (/healthz,
// /readyz, /metrics) when AUTH_DISPATCHER_ADDR is unset.
const DefaultAddr = "127.0.0.1:8083"

const addrVar = "AUTH_DISPATCHER_ADDR"

// Config is everything the dispatcher needs.
type Config struct {
	// Common is the listen address (AUTH_DISPATCHER_ADDR), NATS, telemetry
	// and the injected dependencies.
	service.Common
	// DatabaseURL is the read model database (DATABASE_URL), where the
	// delivery log lives.
	DatabaseURL config.Secret
	// Pool, when set, is used instead of opening DatabaseURL.
	Pool *pgxpool.Pool
	// KEK opens the endpoints' sealed signing secrets (AUTH_KEK). Required.
	KEK *events.Keyring
	// AllowPrivate lets deliveries reach private, loopback and link-local
	// addresses over plain http (AUTH_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivate bool
	// FirstRetry and MaxRetry bound the backoff of a failing delivery
	// (AUTH_WEBHOOK_RETRY_FIRST, default 1 s; AUTH_WEBHOOK_RETRY_MAX,
	// default 10 min).
	FirstRetry, MaxRetry time.Duration
	// DeadLetterAfter is how long a delivery is retried before it is given
	// up on (AUTH_WEBHOOK_DEAD_LETTER_AFTER, default 24 h).
	DeadLetterAfter time.Duration
	// Timeout bounds one delivery (AUTH_WEBHOOK_TIMEOUT, default 10 s).
	Timeout time.Duration
	// Workers bounds the deliveries in flight (AUTH_WEBHOOK_WORKERS,
	// default 64).
	Workers int
	// AckWait is how long the messages a dispatcher held come back after
	// it went silent (AUTH_WEBHOOK_ACK_WAIT, default 30 s).
	AckWait time.Duration

	// SMTPURL is the SMTP server mails go through (AUTH_SMTP_URL,
	// smtp://user:password@host:port with STARTTLS, or smtps://...);
	// empty, mails are written to the log instead.
	SMTPURL config.Secret
	// SMTPTLS, when set, is the TLS configuration toward the SMTP server
	// (tests trust their own server's certificate with it).
	SMTPTLS *tls.Config
	// MailFrom is the sender of every mail (AUTH_MAIL_FROM; default
	// no-reply at the public URL's host).
	MailFrom string
	// PublicURL is where the mailed links point (AUTH_PUBLIC_URL).
	PublicURL string
	// MailLogLinks writes the links of mails written to the log in clear
	// (AUTH_MAIL_LOG_LINKS, for a developer's machine; default off, the
	// token redacted).
	MailLogLinks bool
}

// ConfigFromEnv reads the dispatcher's variables through lookup and
// returns every malformed value at once.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		Common:          service.ReadCommon(r, addrVar, DefaultAddr),
		DatabaseURL:     service.ReadDatabaseURL(r),
		KEK:             service.ReadKEK(r),
		AllowPrivate:    service.ReadWebhookAllowPrivate(r),
		FirstRetry:      r.Duration("AUTH_WEBHOOK_RETRY_FIRST", app.DefaultFirstRetry, 10*time.Millisecond, time.Hour),
		MaxRetry:        r.Duration("AUTH_WEBHOOK_RETRY_MAX", app.DefaultMaxRetry, 10*time.Millisecond, 24*time.Hour),
		DeadLetterAfter: r.Duration("AUTH_WEBHOOK_DEAD_LETTER_AFTER", app.DefaultDeadLetterAfter, time.Second, 30*24*time.Hour),
		Timeout:         r.Duration("AUTH_WEBHOOK_TIMEOUT", 10*time.Second, 100*time.Millisecond, 5*time.Minute),
		Workers:         r.Int("AUTH_WEBHOOK_WORKERS", app.DefaultWorkers, 1, 10000),
		AckWait:         r.Duration("AUTH_WEBHOOK_ACK_WAIT", app.DefaultAckWait, time.Second, time.Hour),
		SMTPURL:         config.Secret(r.String("AUTH_SMTP_URL", "")),
		PublicURL:       service.ReadPublicURL(r),
		MailLogLinks:    r.Bool("AUTH_MAIL_LOG_LINKS", false),
	}
	cfg.MailFrom = r.String("AUTH_MAIL_FROM", defaultFrom(cfg.PublicURL))
	if !cfg.SMTPURL.IsZero() {
		if _, err := smtp.New(cfg.SMTPURL.Reveal(), smtp.Options{}); err != nil {
			r.Problemf("AUTH_SMTP_URL", "%v", err)
		}
	}
	if _, err := mail.ParseAddress(cfg.MailFrom); err != nil {
		r.Problemf("AUTH_MAIL_FROM", "not a mail address (e.g. Acme <no-reply@acme.example>)")
	}
	return cfg, r.Err()
}

// defaultFrom is the sender address when AUTH_MAIL_FROM is unset:
// no-reply at the public URL's host.
func defaultFrom(publicURL string) string {
	host := "localhost"
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	if net.ParseIP(host) != nil {
		host = "[" + host + "]"
	}
	return "no-reply@" + host
}

// check reports the settings Run cannot start without.
func (c Config) check() error {
	r := config.NewReader(nil)
	c.Common.Check(r, addrVar)
	if c.Pool == nil {
		service.CheckDatabaseURL(r, c.DatabaseURL)
	}
	service.RequireKEK(r, c.KEK)
	return r.Err()
}

// Run starts the dispatcher and delivers until ctx is done, then stops
// (what is not acknowledged goes to the next dispatcher) and returns nil.
// Only one dispatcher delivers at a time (a PostgreSQL advisory lock);
// another one waits as a standby, serving its health endpoints.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.check(); err != nil {
		return err
	}
	rt, err := service.Start(ctx, cfg.Common, service.Spec{
		Name: Service, AddrVar: addrVar, Database: true, DatabaseURL: cfg.DatabaseURL, Pool: cfg.Pool,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rt.Close()) }()
	store, err := eventstore.New(rt.JetStream)
	if err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	ackWait := cfg.AckWait
	if ackWait <= 0 {
		ackWait = app.DefaultAckWait
	}
	log := postgres.New(rt.Pool)
	d, err := app.New(app.Deps{
		Store:     store,
		Consumers: natsjs.New(rt.JetStream, ackWait, 2*app.DefaultBatch),
		Log:       log,
		Client:    outbound.New(outbound.Options{AllowPrivate: cfg.AllowPrivate, Timeout: cfg.Timeout}),
		KEK:       cfg.KEK,
		Telemetry: rt.Telemetry,
	}, app.Config{
		Backoff:         domain.Backoff{First: cfg.FirstRetry, Max: cfg.MaxRetry},
		DeadLetterAfter: cfg.DeadLetterAfter,
		Workers:         cfg.Workers,
		AckWait:         ackWait,
	})
	if err != nil {
		return err
	}
	// The users' data keys open the addresses of their events and links
	// and seal those of the links (ADR 0015); the command service makes
	// the bucket with the deployment's replicas, this only reads it.
	dataKeys, err := keystore.NewDataKeys(ctx, rt.JetStream, cfg.KEK, 1)
	if err != nil {
		return fmt.Errorf("data keys: %w", err)
	}
	// The tenants' own mail templates, followed in the log (ADR 0020).
	templates := domain.DefaultTemplates()
	mailTemplates, err := app.NewMailTemplates(store, templates, rt.Telemetry)
	if err != nil {
		return err
	}
	mailer, closeSender, err := newMailer(cfg, rt, natsjs.New(rt.JetStream, ackWait, 2*app.DefaultBatch), postgres.NewMails(rt.Pool), dataKeys,
		templates, mailTemplates.Ready())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeSender()) }()
	verifications, err := app.NewVerifications(natsjs.New(rt.JetStream, ackWait, 2*app.DefaultBatch), store, cfg.KEK, rt.Telemetry, nil)
	if err != nil {
		return err
	}
	verifications.WithPersonalKeys(dataKeys)
	if cfg.AllowPrivate {
		rt.Log.WarnContext(ctx, "AUTH_WEBHOOK_ALLOW_PRIVATE is on: webhooks may reach private and loopback addresses over plain http")
	}
	router := httpserver.NewRouter(rt.Telemetry)
	httpserver.Mount(router, rt.Telemetry, rt.Ready())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg        sync.WaitGroup
		workerErr error
	)
	// The delivery log is written in batches by a goroutine of its own,
	// which stops after the deliveries, writing what they left.
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		log.Run(recCtx, func(err error) {
			rt.Log.WarnContext(recCtx, "webhook deliveries not recorded", "err", err)
		})
	}()
	wg.Go(func() {
		defer func() { stopRec(); <-recDone }()
		defer cancel()
		release, err := log.Lock(ctx)
		if err != nil {
			if ctx.Err() == nil {
				workerErr = err
			}
			return
		}
		defer release()
		// The mailer runs beside the deliveries, on the same lock: one
		// dispatcher sends, so a mail in flight is never taken by another.
		var mailWG sync.WaitGroup
		mailWG.Go(func() {
			if err := mailTemplates.Run(ctx); err != nil {
				rt.Log.ErrorContext(ctx, "mail templates stopped", "err", err)
			}
		})
		mailWG.Go(func() {
			if err := mailer.Run(ctx); err != nil {
				rt.Log.ErrorContext(ctx, "mailer stopped", "err", err)
			}
		})
		mailWG.Go(func() {
			if err := verifications.Run(ctx); err != nil {
				rt.Log.ErrorContext(ctx, "verification links stopped", "err", err)
			}
		})
		defer mailWG.Wait()
		if err := d.Run(ctx); err != nil {
			workerErr = err
		}
	})
	serveErr := rt.Serve(ctx, router)
	cancel()
	wg.Wait()
	return errors.Join(workerErr, serveErr)
}

// newMailer builds the mailer on the SMTP server of cfg, or on the log
// when there is none; the function returned closes the server's
// connections.
func newMailer(cfg Config, rt *service.Runtime, consumers *natsjs.Consumers, mails *postgres.Mails, keys events.PersonalKeys,
	templates *domain.Templates, templatesReady <-chan struct{},
) (*app.Mailer, func() error, error) {
	var (
		sender app.MailSender
		closer = func() error { return nil }
	)
	if cfg.SMTPURL.IsZero() {
		sender = app.LogSender{Log: rt.Log, ShowLinks: cfg.MailLogLinks}
		rt.Log.Info("AUTH_SMTP_URL is unset: mails are written to the log, not sent")
	} else {
		s, err := smtp.New(cfg.SMTPURL.Reveal(), smtp.Options{TLSConfig: cfg.SMTPTLS})
		if err != nil {
			return nil, nil, fmt.Errorf("AUTH_SMTP_URL: %w", err)
		}
		sender, closer = s, s.Close
	}
	m, err := app.NewMailer(app.MailerDeps{
		Consumers: consumers, Mails: mails, Sender: sender, KEK: cfg.KEK, Keys: keys, Telemetry: rt.Telemetry,
	}, app.MailerConfig{
		PublicURL: cfg.PublicURL, From: cfg.MailFrom,
		Templates: templates, TemplatesReady: templatesReady,
		Backoff: domain.Backoff{First: cfg.FirstRetry, Max: cfg.MaxRetry},
	})
	if err != nil {
		return nil, nil, err
	}
	return m, closer, nil
}
