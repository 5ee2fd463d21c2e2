package authclient_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/events"
	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Verify tokens in a dozen lines: every route under /t/{tenant} needs a
// valid access token of that tenant; approving an invoice also needs the
// invoices:approve permission, checked online.
func ExampleMiddleware() {
	v, err := authclient.NewVerifier("https://auth.example.com", authclient.WithAudience("billing"))
	if err != nil {
		log.Fatal(err)
	}
	r := chi.NewRouter()
	r.Route("/t/{tenant}", func(r chi.Router) {
		r.Use(authclient.Middleware(v, authclient.TenantFromURLParam("tenant")))
		r.Get("/me", func(w http.ResponseWriter, r *http.Request) {
			p, _ := authclient.PrincipalFrom(r.Context())
			fmt.Fprintf(w, "%s of %s, roles %v\n", p.Subject, p.Tenant, p.Roles)
		})
		r.With(authclient.RequirePermission("invoices:approve")).Post("/invoices/{id}/approve", approveInvoice)
	})
	srv := &http.Server{Addr: ":8090", Handler: r, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func approveInvoice(http.ResponseWriter, *http.Request) {}

// Follow every tenant's users, in order, from the beginning of the log; a
// restart resumes after the last event handled. authstream's NATS servers
// refuse clients without credentials: connect as a subscriber user, here
// the one of the all-in-one server, whose password `make run` keeps in
// .data/nats-users.txt (and prints in the subscriber URL at start).
func ExampleConsumer_Run() {
	nc, err := nats.Connect("nats://127.0.0.1:4250", nats.UserInfo("subscriber", os.Getenv("NATS_SUBSCRIBER_PASSWORD")))
	if err != nil {
		log.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	c, err := authclient.NewConsumer(js, "welcome-mailer", "auth.evt.*.user.>")
	if err != nil {
		log.Fatal(err)
	}
	err = c.Run(context.Background(), func(ctx context.Context, e authclient.Event) error {
		if _, ok := e.Payload.(events.UserRegistered); ok {
			// The username is sealed: a subscriber that holds the data
			// keys opens it (WithPersonalKeys, then e.Personal); others
			// greet the user by id.
			fmt.Printf("welcome user %s to %s (event %s)\n", e.AggregateID, e.Tenant, e.ID)
		}
		return nil // an error retries this event before any later one
	})
	log.Fatal(err)
}
