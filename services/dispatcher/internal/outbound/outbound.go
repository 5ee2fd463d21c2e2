// Package outbound posts webhook deliveries over HTTP, safely: it refuses
// to connect to private, loopback, link-local, metadata and other
// non-public addresses (checked on the address actually dialled, so a DNS
// name that resolves, or later re-resolves, to one is refused too), plain
// http, redirects and proxies, and bounds time and the response read.
package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Options bound a delivery.
type Options struct {
	// AllowPrivate lifts the address checks and accepts plain http
	// (AUTH_WEBHOOK_ALLOW_PRIVATE: development and tests).
	AllowPrivate bool
	// Timeout bounds a whole delivery, connection to response (default
	// 10 s).
	Timeout time.Duration
	// MaxResponseBytes is how much of a response is read (default 64 KiB);
	// the rest is dropped with the connection.
	MaxResponseBytes int64
	// UserAgent is sent with every delivery.
	UserAgent string
}

// ErrRefusedAddress is returned (wrapped) when a delivery would connect to
// an address the platform refuses.
var ErrRefusedAddress = errors.New("refused address")

// ErrRefusedURL is returned (wrapped) for a URL that is not https (or
// http with AllowPrivate).
var ErrRefusedURL = errors.New("refused url")

// Client posts deliveries.
type Client struct {
	http  *http.Client
	opts  Options
	agent string
}

// New returns a Client with opts (zero members take their defaults).
func New(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 10
	}
	dialer := &net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}
	if !opts.AllowPrivate {
		dialer.Control = refuseNonPublic
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the check
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
	}
	c := &http.Client{
		Transport: tr,
		Timeout:   opts.Timeout,
		// Redirects are not followed: a 3xx is an answer, and not a 2xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	agent := opts.UserAgent
	if agent == "" {
		agent = "authstream-webhooks"
	}
	return &Client{http: c, opts: opts, agent: agent}
}

// Response is what a receiver answered.
type Response struct {
	// Status is the HTTP status code; 0 when none came.
	Status  int
	Latency time.Duration
}

// OK reports whether the receiver accepted the delivery (2xx).
func (r Response) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Post sends body to target with the headers given (Content-Type
// application/json). It returns the response, and an error when no
// response came (refused URL or address, connection or timeout); the
// error never holds the headers (they carry the signature).
func (c *Client) Post(ctx context.Context, target string, header http.Header, body []byte) (Response, error) {
	u, err := url.Parse(target)
	if err != nil || !(u.Scheme == "https" || u.Scheme == "http" && c.opts.AllowPrivate) || u.Host == "" {
		return Response{}, fmt.Errorf("%w: webhook urls must be https", ErrRefusedURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrRefusedURL, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.agent)
	start := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		return Response{Latency: time.Since(start)}, cleanError(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, c.opts.MaxResponseBytes))
	_ = res.Body.Close()
	return Response{Status: res.StatusCode, Latency: time.Since(start)}, nil
}

// cleanError keeps the cause of a failed request without the request.
func cleanError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err
}

// refuseNonPublic is the dialer's Control hook: it runs on the address
// about to be connected, after name resolution.
func refuseNonPublic(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrRefusedAddress, address)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrRefusedAddress, ap.Addr())
	}
	return nil
}

// nonPublic are ranges outside the private, loopback, link-local and
// multicast ones netip knows that still must not be reached: "this
// network", shared address space (carrier NAT), IETF protocol
// assignments, benchmarking, documentation, reserved, NAT64 and
// discard-only prefixes.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// Public reports whether a delivery may connect to addr: a global unicast
// address outside the private (10/8, 172.16/12, 192.168/16, fc00::/7),
// loopback, link-local (169.254/16 with the cloud metadata address,
// fe80::/10) and reserved ranges. IPv4-mapped IPv6 addresses are judged as
// the IPv4 address they carry.
func Public(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsGlobalUnicast() || addr.IsPrivate() || addr.IsLoopback() || addr.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}
