package unitofwork

import (
	"context"
	"sync"
)

// Reads started for a request before its command runs (ADR 0028). A
// command over HTTP is two steps in a row: the caller's standing is read
// when the request is authenticated, then the command reads what it
// decides on. The second step's reads do not depend on the first's
// answer, only on the request, so the request can start them while the
// caller is read, and the command takes them instead of reading again:
// one round trip to the stream leader instead of two.
//
// A read started for the request began after the request arrived, so it
// sees every change acknowledged before then, which is what a command
// promises (ADR 0006). The command's first try alone takes them; a try
// that lost a race reads again.

// requestReads are the reads started for one request, each taken at most
// once.
type requestReads struct {
	mu sync.Mutex
	m  map[Key]*preloaded
}

type readsKey struct{}

// WithReadAhead returns ctx carrying an empty set of reads for one
// request, which ReadAhead fills and the request's command takes from.
func WithReadAhead(ctx context.Context) context.Context {
	if _, ok := ctx.Value(readsKey{}).(*requestReads); ok {
		return ctx
	}
	return context.WithValue(ctx, readsKey{}, &requestReads{m: map[Key]*preloaded{}})
}

// ReadAhead starts loading the current state of the aggregate of k (empty
// as for Load) for the request whose context ctx carries WithReadAhead,
// without waiting; without it, or when k is started already, it does
// nothing. The first try of the request's command takes it in Preload,
// PreloadWritten or Load instead of reading k itself. The read ends with
// ctx; one that no command takes is dropped with the request.
func ReadAhead[A Cacheable[A]](ctx context.Context, r *Runner, k Key, empty func() (A, error)) {
	rs, ok := ctx.Value(readsKey{}).(*requestReads)
	if !ok {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.m[k]; ok {
		return
	}
	// A malformed id fails the read before it reaches the store; the
	// command's own load, which checks the id first, answers it.
	p := &preloaded{done: make(chan struct{}), typed: func(a any) bool { _, ok := a.(A); return ok }}
	rs.m[k] = p
	go func() {
		defer close(p.done)
		p.agg, p.f, p.err = current(ctx, r, k, empty)
	}()
}

// takeAhead returns the read started for the request of ctx for k, of
// aggregate type A, and forgets it; nil when there is none.
func takeAhead[A any](ctx context.Context, k Key) *preloaded {
	rs, ok := ctx.Value(readsKey{}).(*requestReads)
	if !ok {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	p, ok := rs.m[k]
	if !ok {
		return nil
	}
	var zero A
	if !p.typed(zero) {
		return nil
	}
	delete(rs.m, k)
	return p
}

// ReadAheadWritten is ReadAhead for an aggregate the command writes to
// when it changes anything (PreloadWritten): when the cache holds it, the
// command's first try takes that state without a read, so nothing is
// started.
func ReadAheadWritten[A Cacheable[A]](ctx context.Context, r *Runner, k Key, empty func() (A, error)) {
	if _, ok := r.cache.get(k); ok {
		return
	}
	ReadAhead(ctx, r, k, empty)
}
