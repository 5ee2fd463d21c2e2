// Package smtp sends the dispatcher's mails to an SMTP server with
// github.com/wneessen/go-mail: STARTTLS (required unless the URL says
// otherwise) or implicit TLS, authentication when the URL carries a user,
// and a pool of connections reused from one mail to the next.
package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/authstream/authstream/services/dispatcher/internal/domain"
	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// Options tune a Sender; zero members take their defaults.
type Options struct {
	// TLSConfig is the TLS configuration of STARTTLS and implicit TLS
	// (default: the system's roots, ServerName the URL's host).
	TLSConfig *tls.Config
	// Conns bounds the connections kept open (default 4).
	Conns int
	// Timeout bounds the dial and each exchange with the server (default
	// 30 s).
	Timeout time.Duration
}

// Sender sends mails through one SMTP server, on pooled connections. It is
// safe for concurrent use.
type Sender struct {
	client *gomail.Client
	idle   chan *gosmtp.Client
	sem    chan struct{}
	server string // host:port, for errors; never the credentials
	mu     sync.Mutex
	closed bool
}

// New returns a Sender for rawURL: smtp://[user:password@]host[:port]
// (port 587 by default; STARTTLS required, ?starttls=opportunistic to use
// it when offered, ?starttls=off for a relay on loopback without TLS) or
// smtps://[user:password@]host[:port] (implicit TLS, port 465 by
// default). With a user, the client authenticates with the best mechanism
// the server offers over the encrypted connection. The errors never show
// the password.
func New(rawURL string, opts Options) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("not a URL of the form smtp://user:password@host:port")
	}
	host := u.Hostname()
	if host == "" {
		return nil, errors.New("the URL names no host")
	}
	var copts []gomail.Option
	port := 0
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("port %q is not a port", p)
		}
	}
	switch u.Scheme {
	case "smtp":
		if port == 0 {
			port = 587
		}
		switch v := u.Query().Get("starttls"); v {
		case "", "required":
			copts = append(copts, gomail.WithTLSPortPolicy(gomail.TLSMandatory))
		case "opportunistic":
			copts = append(copts, gomail.WithTLSPortPolicy(gomail.TLSOpportunistic))
		case "off":
			copts = append(copts, gomail.WithTLSPortPolicy(gomail.NoTLS))
		default:
			return nil, fmt.Errorf("starttls=%q: want required, opportunistic or off", v)
		}
	case "smtps":
		if port == 0 {
			port = 465
		}
		copts = append(copts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("scheme %q: want smtp or smtps", u.Scheme)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Conns <= 0 {
		opts.Conns = 4
	}
	tlsConf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if opts.TLSConfig != nil {
		tlsConf = opts.TLSConfig.Clone()
		if tlsConf.ServerName == "" {
			tlsConf.ServerName = host
		}
	}
	copts = append(copts, gomail.WithPort(port), gomail.WithTimeout(opts.Timeout), gomail.WithTLSConfig(tlsConf))
	if user := u.User.Username(); user != "" {
		pw, _ := u.User.Password()
		copts = append(copts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(user), gomail.WithPassword(pw))
	}
	c, err := gomail.NewClient(host, copts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client for %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	return &Sender{
		client: c, idle: make(chan *gosmtp.Client, opts.Conns), sem: make(chan struct{}, opts.Conns),
		server: net.JoinHostPort(host, strconv.Itoa(port)),
	}, nil
}

// Send sends m on an idle connection, or a new one. A connection that
// fails is closed, never reused. A refusal for good (a 5xx answer to the sender, the
// recipient or the data) wraps domain.ErrMailRefused;
// any other error is worth a retry. A failure after the server took the
// data (a lost answer) cannot be told from one before: the caller's
// record of what it sent settles that (see ADR 0014).
func (s *Sender) Send(ctx context.Context, m domain.Mail) error {
	msg, err := message(m)
	if err != nil {
		return fmt.Errorf("%w: %w", domain.ErrMailRefused, err)
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.sem }()
	conn, reused, err := s.conn(ctx)
	if err != nil {
		return err
	}
	err = s.client.SendWithSMTPClient(conn, msg)
	var se *gomail.SendError
	if err != nil && reused && errors.As(err, &se) && se.Reason == gomail.ErrConnCheck {
		// The server closed the idle connection: nothing of the mail went
		// out, so it goes on a new one.
		_ = conn.Close()
		if conn, err = s.dial(ctx); err != nil {
			return err
		}
		err = s.client.SendWithSMTPClient(conn, msg)
	}
	if err != nil {
		_ = conn.Close()
		if errors.As(err, &se) && !se.IsTemp() && se.Reason != gomail.ErrConnCheck {
			return fmt.Errorf("%w (%s): %s", domain.ErrMailRefused, s.server, se.Error())
		}
		return fmt.Errorf("send mail through %s: %w", s.server, err)
	}
	s.put(conn)
	return nil
}

// conn returns an idle connection (reused true) or a new one.
func (s *Sender) conn(ctx context.Context) (c *gosmtp.Client, reused bool, err error) {
	select {
	case c := <-s.idle:
		return c, true, nil
	default:
	}
	c, err = s.dial(ctx)
	return c, false, err
}

func (s *Sender) dial(ctx context.Context) (*gosmtp.Client, error) {
	c, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to smtp server %s: %w", s.server, err)
	}
	return c, nil
}

// put keeps a connection for the next mail, or closes it when the pool is
// full or closed.
func (s *Sender) put(c *gosmtp.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		select {
		case s.idle <- c:
			return
		default:
		}
	}
	_ = s.client.CloseWithSMTPClient(c)
}

// Close says goodbye (QUIT) on the idle connections and closes them. It
// returns nil: a server that went away first (its connections closed) is
// nothing to fail a stopping service for.
func (s *Sender) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for {
		select {
		case c := <-s.idle:
			if err := s.client.CloseWithSMTPClient(c); err != nil {
				_ = c.Close()
			}
		default:
			return nil
		}
	}
}

// message builds the go-mail message of m.
func message(m domain.Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return nil, fmt.Errorf("sender address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient address: %w", err)
	}
	msg.SetMessageIDWithValue(m.MessageID)
	msg.SetDate()
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}
