package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// ReadAhead names what the command of a request decides on besides its
// tenant, so that authenticating the request starts reading it while the
// caller is read (ADR 0028): the user the command writes to and the roles
// it names.
type ReadAhead struct {
	// User is the id of the user the command changes; empty: none.
	User string
	// Roles are the names of the roles the command decides on.
	Roles []string
}

// AuthenticateAhead is Authenticate for a request whose command decides
// on tenant and on what ahead names: once the token verified, it starts
// reading those with the caller, and returns ctx carrying the reads, which
// the command run with it takes on its first try instead of reading
// again. Each read begins after the request arrived, so it sees every
// change acknowledged before (ADR 0006). A token that does not verify
// starts no read.
func (a *App) AuthenticateAhead(ctx context.Context, tenant, token string, ahead ReadAhead) (context.Context, domain.Principal, error) {
	ctx = unitofwork.WithReadAhead(ctx)
	p, err := a.authenticate(ctx, tenant, token, func() { a.engine.readAhead(ctx, tenant, ahead) })
	return ctx, p, err
}

// readAhead starts, for the request of ctx (unitofwork.WithReadAhead),
// the reads of tenant and of what ahead names.
func (e *engine) readAhead(ctx context.Context, tenant string, ahead ReadAhead) {
	unitofwork.ReadAhead(ctx, e.runner, tenantKey(tenant), emptyTenant(tenant))
	if ahead.User != "" {
		unitofwork.ReadAheadWritten(ctx, e.runner, userKey(tenant, ahead.User), emptyUser(ahead.User))
	}
	for _, name := range ahead.Roles {
		if r, err := domain.LoadRole(name, nil); err == nil && !r.Builtin() {
			unitofwork.ReadAhead(ctx, e.runner, roleKey(tenant, name), emptyRole(name))
		}
	}
}
