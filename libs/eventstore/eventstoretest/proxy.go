package eventstoretest

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP relay between a NATS client and a server that can make
// one publish ambiguous: when armed, it waits for the commit of an atomic
// batch in the client's bytes, then loses either that commit or the
// server's answer to it, and cuts the client's connection. The client
// reconnects through the relay, which then forwards normally. Tests of
// code above the event store use it to prove that an ambiguous append is
// settled without loss or duplicate.
type Proxy struct {
	tb       testing.TB
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	armed *Trap
	fired chan struct{}
	conns []net.Conn
}

// Trap describes the one failure to inject.
type Trap struct {
	Marker    []byte // bytes that identify the publish to disturb, e.g. "Nats-Batch-Commit"
	DropReply bool   // true: the server gets the commit, the client never hears back; false: the commit is lost
	// Stored is called (in its own goroutine) after the commit went through
	// with DropReply; the connection is cut when it returns. It must not
	// call t.Fatal.
	Stored func()
}

// StartProxy starts a relay to upstream (host:port) that stops with the
// test.
func StartProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: listen: %v", err)
	}
	p := &Proxy{tb: tb, ln: ln, upstream: upstream}
	tb.Cleanup(p.close)
	go p.accept()
	return p
}

// URL is the nats:// URL clients connect to.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Arm sets the failure for the next publish that carries t.Marker and
// returns a channel closed once the connection has been cut.
func (p *Proxy) Arm(t Trap) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fired = make(chan struct{})
	p.armed = &t
	return p.fired
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go p.relay(client, server)
	}
}

// relay copies both ways; the client-to-server direction watches for the
// armed marker.
func (p *Proxy) relay(client, server net.Conn) {
	var (
		mu        sync.Mutex
		dropReply bool
	)
	cut := func() {
		_ = client.Close()
		_ = server.Close()
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				mu.Lock()
				drop := dropReply
				mu.Unlock()
				if !drop {
					if _, werr := client.Write(buf[:n]); werr != nil {
						cut()
						return
					}
				}
			}
			if err != nil {
				cut()
				return
			}
		}
	}()
	var tail []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			p.mu.Lock()
			t := p.armed
			p.mu.Unlock()
			if t != nil {
				// The marker may straddle two reads.
				window := append(tail, chunk...)
				if i := bytes.Index(window, t.Marker); i >= 0 {
					p.mu.Lock()
					p.armed = nil
					fired := p.fired
					p.mu.Unlock()
					if !t.DropReply {
						// Lose the commit and everything after it.
						close(fired)
						cut()
						return
					}
					mu.Lock()
					dropReply = true
					mu.Unlock()
					if _, werr := server.Write(chunk); werr != nil {
						cut()
						return
					}
					go func() {
						t.Stored()
						close(fired)
						cut()
					}()
					_, _ = io.Copy(server, client)
					return
				}
				if len(window) > len(t.Marker) {
					tail = append(tail[:0], window[len(window)-len(t.Marker):]...)
				} else {
					tail = append(tail[:0], window...)
				}
			}
			if _, werr := server.Write(chunk); werr != nil {
				cut()
				return
			}
		}
		if err != nil {
			cut()
			return
		}
	}
}
