// Package embedded runs the NATS server with JetStream inside the all-in-one
// process, storing under the data folder, so `make run` needs no broker of
// its own. The server has the production cluster's accounts and users
// (AuthConf): a client without credentials is refused, and each user may
// do what it may do in production.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerName is the embedded server's name. It must stay the same from one
// run to the next: JetStream keys its stored state by server name, and a
// new name would start from an empty store.
const ServerName = "authstream"

// startTimeout bounds how long the server may take to listen and recover
// its JetStream store.
const startTimeout = 30 * time.Second

// Options configures Start.
type Options struct {
	// Listen is the client address host:port; port 0 picks a free port.
	Listen string
	// StoreDir holds the JetStream store; it is created if missing.
	StoreDir string
	// SyncInterval is how often JetStream flushes to disk; 0 syncs every
	// write (sync_interval: always), which auth data wants.
	SyncInterval time.Duration
	// Passwords are the passwords of the users of AuthConf (Users), by
	// user; every one must be given.
	Passwords map[string]string
	// Log receives the server's warnings and errors (notices at debug).
	Log *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	ns *server.Server
}

// Start starts the server and waits until it accepts clients. It returns an
// error naming AUTH_NATS_LISTEN when the address is busy, or the server's own
// reason when JetStream cannot open its store.
func Start(ctx context.Context, o Options) (*Server, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("AUTH_NATS_LISTEN: %q is not host:port", o.Listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("AUTH_NATS_LISTEN: %q has no numeric port", o.Listen)
	}
	if port == 0 {
		// nats-server reads port 0 as "the default port 4222".
		port = server.RANDOM_PORT
	} else if err := probe(o.Listen); err != nil {
		// The server reports a busy port only as a log line after Start;
		// binding once first gives the cause right away.
		return nil, err
	}
	opts, err := authOptions(o.Passwords)
	if err != nil {
		return nil, err
	}
	if err := moveGlobalStore(o.StoreDir); err != nil {
		return nil, err
	}
	opts.ServerName = ServerName
	opts.Host, opts.Port = host, port
	opts.JetStream, opts.StoreDir = true, o.StoreDir
	// The process handles its own signals; the server must not.
	opts.NoSigs = true
	// No monitoring or cluster ports: the all-in-one is one loopback node.
	opts.HTTPPort = 0
	if o.SyncInterval == 0 {
		opts.SyncAlways = true
	} else {
		opts.SyncInterval = o.SyncInterval
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	logger := &logAdapter{log: o.Log, fatal: make(chan string, 1)}
	ns.SetLoggerV2(logger, false, false, false)
	ns.Start()

	ready := make(chan error, 1)
	go func() { ready <- readyErr(ns) }()
	select {
	case err = <-ready:
	case msg := <-logger.fatal:
		err = errors.New(msg)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	return &Server{ns: ns}, nil
}

// readyErr waits for the server to accept clients and for JetStream to be
// enabled (store recovered).
func readyErr(ns *server.Server) error {
	if !ns.ReadyForConnections(startTimeout) {
		return errors.New("not ready for connections in time")
	}
	if !ns.JetStreamEnabled() {
		return errors.New("jetstream did not start")
	}
	return nil
}

// probe checks that addr can be bound, and names AUTH_NATS_LISTEN and the
// cause ("address already in use") when it cannot.
func probe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("AUTH_NATS_LISTEN: cannot listen on %s: %s", addr, config.Cause(err))
	}
	return ln.Close()
}

// ClientURL is the URL other processes (the nats CLI, subscribers) connect to.
func (s *Server) ClientURL() string {
	if a, ok := s.ns.Addr().(*net.TCPAddr); ok {
		return "nats://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
	}
	return s.ns.ClientURL()
}

// Connect opens an in-process client connection (no TCP on the way) as
// user, one of Users, with its password.
func (s *Server) Connect(name, user, password string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Name(name), nats.UserInfo(user, password), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to the embedded nats server as %s: %w", user, err)
	}
	return nc, nil
}

// Shutdown stops the server, flushing JetStream, and waits until it has
// stopped.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// logAdapter sends the server's log to slog: notices at debug level (they
// are the server's routine chatter), warnings and errors as such. A fatal
// message means the server could not start; Start reports it.
type logAdapter struct {
	log   *slog.Logger
	fatal chan string
	once  sync.Once
}

func (l *logAdapter) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}

func (l *logAdapter) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Plaintext passwords detected") {
		// The passwords are generated into a file of the data folder (mode
		// 0600) that the clients read them from; hashing the server's copy
		// would protect nothing, so this is no warning here.
		l.log.Debug("nats: " + msg)
		return
	}
	l.log.Warn("nats: " + msg)
}

func (l *logAdapter) Errorf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}

func (l *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Debug("nats: fatal: " + msg)
	l.once.Do(func() { l.fatal <- msg })
}

func (l *logAdapter) Debugf(string, ...any) {}

func (l *logAdapter) Tracef(string, ...any) {}
