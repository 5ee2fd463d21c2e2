package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// ReadAhead names what the command of a request decides on besides its
// tenant, so that authenticating the request starts reading it while the
// caller is read (ADR 0028): the user the command writes to and the roles
// it names. Nothing is read for a request whose caller is refused before
// their standing is read (a token that does not verify).
type ReadAhead struct {
	// User is the id of the user the command changes; empty: none.
	User string
	// Roles are the names of the roles the command decides on.
	Roles []string
}

type readAheadKey struct{}

// WithReadAhead returns ctx carrying ahead for the Authenticate of the
// request it is the context of.
func WithReadAhead(ctx context.Context, ahead ReadAhead) context.Context {
	return context.WithValue(unitofwork.WithReadAhead(ctx), readAheadKey{}, ahead)
}

// readAhead starts, for the request of ctx, the reads of tenant and of
// what WithReadAhead named, which the request's command takes on its first
// try: each read begins after the request arrived, so it sees every change
// acknowledged before (ADR 0006). Without WithReadAhead it does nothing.
func (e *engine) readAhead(ctx context.Context, tenant string) {
	ahead, ok := ctx.Value(readAheadKey{}).(ReadAhead)
	if !ok {
		return
	}
	unitofwork.ReadAhead(ctx, e.runner, tenantKey(tenant), emptyTenant(tenant))
	if ahead.User != "" {
		unitofwork.ReadAheadWritten(ctx, e.runner, userKey(tenant, ahead.User), emptyUser(ahead.User))
	}
	for _, name := range ahead.Roles {
		if r, err := emptyRole(name)(); err == nil && !r.Builtin() {
			unitofwork.ReadAhead(ctx, e.runner, roleKey(tenant, name), emptyRole(name))
		}
	}
}
