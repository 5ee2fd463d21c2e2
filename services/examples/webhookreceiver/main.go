// Command webhookreceiver is an example receiver of authstream's webhooks:
// it verifies each delivery's signature, handles each event once (here:
// prints it) and answers 204.
//
//	WEBHOOK_SECRETS=whsec_... LISTEN=127.0.0.1:9000 go run .
//
// WEBHOOK_SECRETS is the endpoint's secret, or during a rotation both,
// comma-separated.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/authstream/authstream/services/examples/webhookreceiver/internal/receiver"
)

func main() {
	listen := os.Getenv("LISTEN")
	if listen == "" {
		listen = "127.0.0.1:9000"
	}
	r, err := receiver.New(strings.Split(os.Getenv("WEBHOOK_SECRETS"), ","), 100000, func(e receiver.Event) error {
		fmt.Printf("%s %s %s/%s v%d\n", e.Type, e.Tenant, e.Aggregate, e.AggregateID, e.Version)
		return nil
	})
	if err != nil {
		log.Fatal("WEBHOOK_SECRETS: ", err)
	}
	srv := &http.Server{Addr: listen, Handler: r, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
	fmt.Fprintln(os.Stderr, "listening on", srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
