package authstream_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"github.com/authstream/authstream/services/dispatcher/smtptest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestMail_Kill9BetweenEventAndSend kills the real binary with SIGKILL
// after a mail's event was taken (its sent_mails row says "sending")
// while the SMTP server is not there yet, restarts it on the same data
// folder and database with the server up, and checks that the mail is
// sent exactly once; a second kill and restart after it was sent sends
// nothing more.
func TestMail_Kill9BetweenEventAndSend(t *testing.T) {
	t.Parallel()
	bin := authstreamtest.BuildBinary(t)
	smtpAddr := authstreamtest.FreeAddr(t)
	first := authstreamtest.StartBinary(t, bin, map[string]string{
		"AUTH_BOOTSTRAP_ADMIN_USERNAME": rootName, "AUTH_BOOTSTRAP_ADMIN_PASSWORD": rootPassword,
		// A relay on loopback without TLS, not listening yet: every send
		// fails, is recorded and retried.
		"AUTH_SMTP_URL":            "smtp://" + smtpAddr + "?starttls=off",
		"AUTH_WEBHOOK_RETRY_FIRST": "50ms",
		"AUTH_WEBHOOK_RETRY_MAX":   "200ms",
	})
	c := first.Client
	root := c.Login(t, "platform", rootName, rootPassword, "").AccessToken
	acme := c.MustTenant(t, root, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	const dora = "dora@acme.example"
	c.DoCommand(t, http.MethodPost, "/t/acme/users", acme.Admin.AccessToken,
		map[string]any{"username": "dora", "password": userPassword, "email": dora}, http.StatusCreated)

	pool, err := pgxpool.New(context.Background(), first.Env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	status := func() (string, int) {
		var s string
		var n int
		_ = pool.QueryRow(context.Background(), `SELECT status, attempts FROM sent_mails WHERE tenant_id = 'acme'`).Scan(&s, &n)
		return s, n
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s, n := status(); s == "sending" && n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			s, n := status()
			t.Fatalf("the mail's row is %q after %d attempts, want sending", s, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.Kill(t)

	srv := smtptest.Start(t, smtptest.At(smtpAddr))
	second := authstreamtest.StartBinary(t, bin, first.Env)
	srv.WaitFor(t, dora, 60*time.Second)
	deadline = time.Now().Add(30 * time.Second)
	for {
		if s, _ := status(); s == "sent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the mail is not recorded sent")
		}
		time.Sleep(20 * time.Millisecond)
	}
	second.Kill(t)
	third := authstreamtest.StartBinary(t, bin, first.Env)
	time.Sleep(2 * time.Second) // time for a redelivery to be taken
	_ = third
	if ms := srv.Messages(); len(ms) != 1 {
		t.Fatalf("%d mails to %s, want exactly 1", len(ms), dora)
	}
}
