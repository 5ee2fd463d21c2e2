package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// DeleteClient removes a client for good: its secrets stop working and its
// roles grant nothing. It needs clients:write.
type DeleteClient struct {
	Request
	Tenant   string
	ClientID string
}

type deleteClientHandler struct{ e *engine }

// Handle appends client.deleted.
func (h deleteClientHandler) Handle(ctx context.Context, cmd DeleteClient) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermClientsWrite); err != nil {
		return Result{}, err
	}
	return runClient(ctx, h.e, cmd.Request, cmd.Tenant, cmd.ClientID, nil, func(_ context.Context, _ unit, c *domain.Client) error {
		return c.Delete()
	})
}

// runClient runs a command that changes one client of tenant and nothing
// else: decide may load more aggregates through the unit (the roles named,
// which are loaded together with the tenant and the client).
func runClient(ctx context.Context, e *engine, req Request, tenant, clientID string, roles []string,
	decide func(ctx context.Context, u unit, c *domain.Client) error) (Result, error) {
	return e.run(ctx, req, actorOf(req.Principal), req.idParts(), func(ctx context.Context, u unit) (Result, error) {
		c, err := u.activeClient(ctx, tenant, clientID, roles...)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			return Result{ID: clientID, Version: rep.Version(c.Kind(), clientID), Sequence: rep.Sequence, Changed: true, Replayed: true}, nil
		}
		if err := decide(ctx, u, c); err != nil {
			return Result{}, err
		}
		return commitOne(ctx, u, c, clientID)
	})
}
