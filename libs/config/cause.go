package config

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
)

// Cause returns a short description of why a connection failed ("connection
// refused", "no such host", "timed out"), taken from the innermost network
// error of err's chain, so a startup error reads "cannot reach PostgreSQL at
// 127.0.0.1:5999: connection refused" rather than a driver's nested wrapping.
// It falls back to err's own message when the chain holds no network error;
// callers must therefore only pass errors that carry no secrets.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound {
			return "no such host " + dns.Name
		}
		return dns.Err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return err.Error()
}
