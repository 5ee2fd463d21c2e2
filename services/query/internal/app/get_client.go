package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
)

// GetClient returns one registered client of the caller's tenant; it
// needs clients:read. An id no client can have is ErrInvalidClientID, a
// client the tenant does not have (or deleted) ErrClientNotFound.
func (a *App) GetClient(ctx context.Context, c Caller, id string) (RegisteredClient, error) {
	if a.registry == nil {
		return RegisteredClient{}, errNotConfigured
	}
	if err := a.require(ctx, c, PermClientsRead); err != nil {
		return RegisteredClient{}, err
	}
	if !events.ValidToken(id) {
		return RegisteredClient{}, ErrInvalidClientID
	}
	cl, err := a.registry.RegisteredClient(ctx, c.Tenant, id)
	if err != nil {
		return RegisteredClient{}, err
	}
	return a.shown(cl), nil
}
