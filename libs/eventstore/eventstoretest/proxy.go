package eventstoretest

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// proxy is a TCP relay between a NATS client and a server that can make
// one publish ambiguous: when armed, it waits for the commit of an atomic
// batch in the client's bytes, then loses either that commit or the
// server's answer to it, and cuts the client's connection. The client
// reconnects through the relay, which then forwards normally.
type proxy struct {
	tb       testing.TB
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	armed *trap
	conns []net.Conn
}

// trap describes the one failure to inject.
type trap struct {
	marker    []byte // bytes that identify the publish to disturb
	dropReply bool   // true: the server gets the commit, the client never hears back; false: the commit is lost
	// stored is called (in its own goroutine) after the commit went through
	// with dropReply; the connection is cut when it returns.
	stored func()
	fired  chan struct{}
}

func startProxy(tb testing.TB, upstream string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: listen: %v", err)
	}
	p := &proxy{tb: tb, ln: ln, upstream: upstream}
	tb.Cleanup(p.close)
	go p.accept()
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) arm(t *trap) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t.fired = make(chan struct{})
	p.armed = t
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func (p *proxy) accept() {
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
func (p *proxy) relay(client, server net.Conn) {
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
				if i := bytes.Index(window, t.marker); i >= 0 {
					p.mu.Lock()
					p.armed = nil
					p.mu.Unlock()
					if !t.dropReply {
						// Lose the commit and everything after it.
						close(t.fired)
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
						t.stored()
						close(t.fired)
						cut()
					}()
					_, _ = io.Copy(server, client)
					return
				}
				if len(window) > len(t.marker) {
					tail = append(tail[:0], window[len(window)-len(t.marker):]...)
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
