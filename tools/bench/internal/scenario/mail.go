package scenario

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/platform"
	"github.com/emersion/go-smtp"
)

// The mail scenario's shape: a backlog of verification mails, one per
// registered user.
const mailUsers = 2000

// mailReceiver is a local SMTP server (no TLS, no authentication) that
// counts the mails it takes and, while paused, defers every recipient
// with a 451, so that the platform builds a backlog.
type mailReceiver struct {
	srv    *smtp.Server
	addr   string
	paused atomic.Bool
	taken  atomic.Int64
}

func newMailReceiver() (*mailReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &mailReceiver{addr: ln.Addr().String()}
	r.paused.Store(true)
	r.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{r: r}, nil }))
	r.srv.Domain = "127.0.0.1"
	r.srv.ReadTimeout, r.srv.WriteTimeout = 30*time.Second, 30*time.Second
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

type mailSession struct{ r *mailReceiver }

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *mailSession) Rcpt(string, *smtp.RcptOptions) error {
	if s.r.paused.Load() {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "paused"}
	}
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.r.taken.Add(1)
	return nil
}

func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }

// runMail measures the mails a second the dispatcher sends to a local
// SMTP server: users registered with an address each get a verification
// mail, deferred by the server until all are registered, then the
// backlog drains (the mailer retries a deferred mail after 10 to 50 ms,
// so the drain starts at once).
func runMail(ctx context.Context, e *Env) error {
	rcv, err := newMailReceiver()
	if err != nil {
		return err
	}
	defer func() { _ = rcv.srv.Close() }()
	setup := Setup{Cost: seedCost, Tag: "mail", SMTPURL: "smtp://" + rcv.addr + "?starttls=off"}
	p, err := e.Platform(ctx, setup)
	if err != nil {
		return err
	}
	root, err := p.LoginAdmin(ctx)
	if err != nil {
		return err
	}
	t, err := p.CreateTenant(ctx, root.AccessToken, "mail", "admin", userPassword)
	if err != nil {
		return err
	}
	e.logf("  registering %d users with an address each (their mails deferred)", mailUsers)
	var (
		n      atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			for i := n.Add(1); i <= mailUsers && ctx.Err() == nil; i = n.Add(1) {
				name := fmt.Sprintf("mail-%05d", i)
				if _, err := p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: p.Command + "/t/mail/users", Bearer: t.AdminToken,
					Body: map[string]any{"username": name, "password": userPassword, "email": name + "@mail.example"}}, http.StatusCreated); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return fmt.Errorf("mail: %d registrations failed", failed.Load())
	}
	stop := e.profile("mail")
	start := time.Now()
	rcv.paused.Store(false)
	deadline := start.Add(5 * time.Minute)
	for rcv.taken.Load() < mailUsers && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stop()
	got := rcv.taken.Load()
	rate := float64(got) / elapsed.Seconds()
	e.add(Row{Scenario: "mail", Clients: 1, Rate: rate, Errors: uint64(max(mailUsers-got, 0)), Bound: "-", Ratio: math.NaN(),
		Notes: fmt.Sprintf("one dispatcher draining a backlog of %d verification mails to a local SMTP server (plain, 4 pooled connections): %d mails in %s", mailUsers, got, elapsed.Round(time.Millisecond))})
	return nil
}
