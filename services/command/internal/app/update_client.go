package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// UpdateClient replaces a client's configuration as a whole; its type
// cannot change. It needs clients:write.
type UpdateClient struct {
	Request
	Tenant   string
	ClientID string
	// Config is the whole new configuration as the caller gives it: a nil
	// list or an empty algorithm takes its default, an empty type keeps
	// the client's.
	Config events.ClientConfig
}

type updateClientHandler struct{ e *engine }

// Handle appends client.updated with the whole new configuration, and the
// key.created of the key its ID token algorithm needs when the tenant's
// key set does not record one yet, in one batch; an update that changes
// nothing appends nothing. Result.Client.Config is the configuration after
// the command.
func (h updateClientHandler) Handle(ctx context.Context, cmd UpdateClient) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, domain.PermClientsWrite); err != nil {
		return Result{}, err
	}
	return h.e.run(ctx, cmd.Request, actorOf(p), cmd.idParts(), func(ctx context.Context, u unit) (Result, error) {
		c, err := u.activeClient(ctx, cmd.Tenant, cmd.ClientID)
		if err != nil {
			return Result{}, err
		}
		ks, err := u.keySet(ctx, cmd.Tenant)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			d, err := replayed[events.ClientUpdated](rep)
			if err != nil {
				return Result{}, err
			}
			return Result{ID: cmd.ClientID, Version: rep.Version(c.Kind(), cmd.ClientID), Sequence: rep.Sequence,
				Changed: true, Replayed: true, Client: &ClientOutcome{Config: d.Config}}, nil
		}
		if err := c.Update(cmd.Config); err != nil {
			return Result{}, err
		}
		out := &ClientOutcome{Config: c.Config()}
		if !unitofwork.Changed(c) {
			return Result{ID: cmd.ClientID, Version: c.Version(), Sequence: u.Position(), Client: out}, nil
		}
		if err := h.e.ensureKeys(ctx, cmd.Tenant, ks, idTokenAlgs(out.Config)...); err != nil {
			return Result{}, err
		}
		res, err := u.Commit(ctx, []domain.Aggregate{c, ks})
		if err != nil {
			return Result{}, err
		}
		return Result{ID: cmd.ClientID, Version: c.Version(), Sequence: res.Sequence, Changed: true, Replayed: res.Duplicate, Client: out}, nil
	})
}
