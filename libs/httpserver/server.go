package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Server limits. The write timeout leaves room for the longest answers
// (history streams, bounded consistency waits); the header limits stop slow
// or oversized headers from tying up connections.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	// MaxHeaderBytes is the largest request line and headers answered by a
	// handler; past it the answer is a 431 problem. net/http itself reads up
	// to HardMaxHeaderBytes, and answers a request past that with its own
	// plain-text 431 before any handler runs: the gap between the two is
	// what lets most oversized requests get a problem body.
	MaxHeaderBytes     = 32 << 10
	HardMaxHeaderBytes = 4 * MaxHeaderBytes
	// DrainTimeout bounds how long Serve waits for in-flight requests after
	// its context ends.
	DrainTimeout = 10 * time.Second
)

// NewServer returns an http.Server for h with the limits above. Nothing else
// is set: Serve supplies the listener.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           limitHeaders(h),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    HardMaxHeaderBytes,
	}
}

// limitHeaders answers 431 with a problem body when the request line and
// headers exceed MaxHeaderBytes, counted as they arrived on the wire.
func limitHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headerBytes(r) > MaxHeaderBytes {
			// The connection is not reused: the client sent more than it may.
			w.Header().Set("Connection", "close")
			WriteProblem(w, http.StatusRequestHeaderFieldsTooLarge, ReasonHeaderTooLarge, "",
				fmt.Sprintf("the request line and headers exceed %d bytes", MaxHeaderBytes))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// headerBytes is the size of r's request line and header block as sent:
// "METHOD URI PROTO\r\n", then "Name: value\r\n" per value.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	if r.Host != "" && r.Header.Get("Host") == "" { // net/http moves Host out of Header
		n += len("Host: ") + len(r.Host) + 2
	}
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + len(v) + 4
		}
	}
	return n
}

// Listen opens a TCP listener on addr (host:port; port 0 picks a free one).
// Its errors say what to fix: "invalid listen address \"x\": ...",
// "address 127.0.0.1:8080 is already in use", "permission denied to listen
// on 0.0.0.0:80".
func Listen(addr string) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("invalid listen address %q: expected host:port", addr)
	}
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("address %s is already in use", addr)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("permission denied to listen on %s", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("address %s is not available on this machine", addr)
	}
	if _, ok := errors.AsType[*net.AddrError](err); ok {
		return nil, fmt.Errorf("invalid listen address %q: %w", addr, err)
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return nil, fmt.Errorf("invalid listen address %q: cannot resolve host: %w", addr, err)
	}
	return nil, fmt.Errorf("listen on %s: %w", addr, err)
}

// Serve serves srv on ln until ctx is done, then shuts down gracefully:
// it stops accepting, waits up to DrainTimeout for in-flight requests, then
// closes what is left. It returns nil after a shutdown caused by ctx, or the
// error that stopped serving (ln is closed either way).
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), DrainTimeout)
	defer cancel()
	err := srv.Shutdown(drain)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("http server on %s: drain: %w", ln.Addr(), err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("http server on %s: %w", ln.Addr(), serr)
	}
	return err
}
