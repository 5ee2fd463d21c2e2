package app

import (
	"context"

	"github.com/authstream/authstream/libs/fault"
)

// Pool bounds the bcrypt work in flight: at most workers comparisons run at
// once (bcrypt is CPU-bound, so more than the cores only adds latency), and
// at most queue more wait for a slot. A login that finds the queue full is
// refused at once with ErrBusy, so a flood of guesses cannot grow memory
// and latency without bound.
type Pool struct {
	slots   chan struct{} // one token per running comparison
	tickets chan struct{} // one token per admitted caller (running or waiting)
}

// NewPool returns a Pool of workers concurrent comparisons and queue
// waiting callers. Both are at least 1 and 0.
func NewPool(workers, queue int) *Pool {
	workers = max(workers, 1)
	queue = max(queue, 0)
	return &Pool{slots: make(chan struct{}, workers), tickets: make(chan struct{}, workers+queue)}
}

// Waiting returns how many callers wait for a slot now (the queue the
// password_hash_queue gauge reports).
func (p *Pool) Waiting() int { return max(len(p.tickets)-len(p.slots), 0) }

// Do runs fn when a slot is free. It returns ErrBusy without running fn
// when the queue is full, and ctx's error (as fault.Unavailable) when ctx
// ends while waiting.
func (p *Pool) Do(ctx context.Context, fn func()) error {
	select {
	case p.tickets <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-p.tickets }()
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return fault.Wrap(fault.Unavailable, ctx.Err(), "login abandoned while waiting")
	}
	defer func() { <-p.slots }()
	fn()
	return nil
}
