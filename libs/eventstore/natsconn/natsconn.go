// Package natsconn opens a service's connection to the NATS cluster whose
// JetStream holds the event store. Every service connects the same way, so
// the options live here once: a 5 s dial timeout, endless reconnects (a
// broker outage is reported by readiness, not by the process exiting), and a
// failed first connection turned into one clear error that names the servers
// and the network cause instead of nats.go's bare "no servers available".
package natsconn

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/nats-io/nats.go"
)

// Connect connects to the comma-separated server list urls as client name.
// Once connected it reconnects forever (readiness reports the outage); a
// first connection that fails returns an error naming the servers (without
// credentials) and the network cause, e.g. "AUTH_NATS_URL: cannot reach NATS
// at 127.0.0.1:4250: connection refused".
func Connect(urls, name string) (*nats.Conn, error) {
	d := &recordingDialer{}
	nc, err := nats.Connect(urls,
		nats.Name(name),
		nats.Timeout(5*time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.SetCustomDialer(d),
	)
	if err == nil {
		return nc, nil
	}
	cause := config.Cause(err)
	if last := d.lastError(); last != nil && errors.Is(err, nats.ErrNoServers) {
		cause = config.Cause(last)
	}
	return nil, fmt.Errorf("AUTH_NATS_URL: cannot reach NATS at %s: %s", hosts(urls), cause)
}

// hosts lists the host:port of each URL, which is what an operator needs to
// see and never includes credentials.
func hosts(urls string) string {
	var out []string
	for u := range strings.SplitSeq(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, config.HostPort(u, "4222"))
		}
	}
	return strings.Join(out, ", ")
}

// recordingDialer remembers the last dial error: nats.go reports a failed
// first connection only as "no servers available", which hides whether the
// address is wrong, refused or filtered.
type recordingDialer struct {
	net.Dialer
	mu   sync.Mutex
	last error
}

func (d *recordingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := d.Dialer.Dial(network, address)
	if err != nil {
		d.mu.Lock()
		d.last = err
		d.mu.Unlock()
	}
	return c, err
}

func (d *recordingDialer) lastError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}
