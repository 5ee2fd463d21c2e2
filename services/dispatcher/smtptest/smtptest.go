// Package smtptest runs a real SMTP server in a test (github.com/emersion/go-smtp):
// STARTTLS with a certificate of its own, AUTH PLAIN, and every accepted
// message kept for the test to read, so that mail flows are tested end to
// end, following the link from the mail received.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// User and Password are the credentials the server accepts.
const (
	User     = "mailer"
	Password = "s3cret-smtp-password"
)

// Message is one accepted mail.
type Message struct {
	From string
	To   []string
	// Raw is the message as received.
	Raw []byte
	// MessageID, Subject, Text and HTML are parsed from Raw.
	MessageID, Subject, Text, HTML string
	// TLS says whether the mail came over an encrypted connection, and
	// Authenticated whether the client had signed in.
	TLS, Authenticated bool
}

// linkRE finds the first http(s) link of a plain text body.
var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Link returns the first link of the message's text part, "" if none.
func (m Message) Link() string { return linkRE.FindString(m.Text) }

// Server is a running SMTP server.
type Server struct {
	// Addr is host:port.
	Addr string
	// ClientTLS trusts the server's certificate.
	ClientTLS *tls.Config

	mu      sync.Mutex
	msgs    []Message
	arrived chan struct{}
	reject  func(to string) error
	conns   map[*smtp.Conn]bool
}

// Option changes how Start runs a server.
type Option func(*settings)

type settings struct{ addr string }

// At runs the server on addr (host:port) instead of a free port: a test
// that starts the platform before its mail server gives it the address
// first.
func At(addr string) Option { return func(s *settings) { s.addr = addr } }

// Start runs a server on a free loopback port until the test ends. It
// offers STARTTLS and AUTH PLAIN and takes mail with or without either.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	set := settings{addr: "127.0.0.1:0"}
	for _, o := range opts {
		o(&set)
	}
	cert, pool := mustCert(tb)
	s := &Server{arrived: make(chan struct{}, 1<<16), conns: map[*smtp.Conn]bool{}, ClientTLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.conns[c] = true // a session starts again after STARTTLS: count connections
		s.mu.Unlock()
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "127.0.0.1"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	ln, err := net.Listen("tcp", set.addr)
	if err != nil {
		tb.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return s
}

// URL is the AUTH_SMTP_URL of the server, with its credentials.
func (s *Server) URL() string {
	return (&url.URL{Scheme: "smtp", User: url.UserPassword(User, Password), Host: s.Addr}).String()
}

// Reject makes the server answer RCPT TO with f's error (an
// *smtp.SMTPError says the code); nil accepts every recipient.
func (s *Server) Reject(f func(to string) error) {
	s.mu.Lock()
	s.reject = f
	s.mu.Unlock()
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Conns returns how many connections the server has had.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Wait waits until n messages have arrived, and returns them; it fails
// the test after timeout.
func (s *Server) Wait(tb testing.TB, n int, timeout time.Duration) []Message {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		if ms := s.Messages(); len(ms) >= n {
			return ms
		}
		select {
		case <-s.arrived:
		case <-deadline:
			tb.Fatalf("smtp: %d messages arrived within %v, want %d", len(s.Messages()), timeout, n)
		}
	}
}

// WaitFor waits for the first message to addr and returns it.
func (s *Server) WaitFor(tb testing.TB, addr string, timeout time.Duration) Message {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		for _, m := range s.Messages() {
			for _, to := range m.To {
				if strings.EqualFold(to, addr) {
					return m
				}
			}
		}
		select {
		case <-s.arrived:
		case <-deadline:
			tb.Fatalf("smtp: no message to %s within %v", addr, timeout)
		}
	}
}

type session struct {
	s      *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != User || pass != Password {
			return errors.New("invalid credentials")
		}
		x.authed = true
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	reject := x.s.reject
	x.s.mu.Unlock()
	if reject != nil {
		if err := reject(to); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, tlsOn := x.conn.TLSConnectionState()
	m := parse(raw)
	m.From, m.To, m.TLS, m.Authenticated = x.from, append([]string(nil), x.to...), tlsOn, x.authed
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, m)
	x.s.mu.Unlock()
	select {
	case x.s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (x *session) Reset() { x.from, x.to = "", nil }

func (x *session) Logout() error { return nil }

// parse reads the headers and the text and HTML parts of a message.
func parse(raw []byte) Message {
	m := Message{Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return m
	}
	dec := new(mime.WordDecoder)
	m.Subject, _ = dec.DecodeHeader(msg.Header.Get("Subject"))
	m.MessageID = strings.Trim(msg.Header.Get("Message-Id"), "<>")
	readPart(&m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return m
}

func readPart(m *Message, contentType, encoding string, body io.Reader) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			readPart(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
	b, _ := io.ReadAll(decode(encoding, body))
	switch mt {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	}
}

func mustCert(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
