package app

import "context"

// ClientPage is one page of a tenant's registered clients.
type ClientPage struct {
	Items      []RegisteredClient `json:"items"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// ListClients returns a page of the caller's tenant's registered clients
// in client id order; it needs clients:read. cursor and limit are read as
// ListUsers reads them (ErrInvalidCursor, ErrInvalidLimit).
func (a *App) ListClients(ctx context.Context, c Caller, cursor, limit string) (ClientPage, error) {
	if a.registry == nil {
		return ClientPage{}, errNotConfigured
	}
	if err := a.require(ctx, c, PermClientsRead); err != nil {
		return ClientPage{}, err
	}
	after, n, err := readPage(clientCursor, cursor, limit)
	if err != nil {
		return ClientPage{}, err
	}
	list, err := a.registry.RegisteredClients(ctx, c.Tenant, after, n+1)
	if err != nil {
		return ClientPage{}, err
	}
	list, next := cutPage(clientCursor, list, n, func(cl RegisteredClient) string { return cl.ID })
	page := ClientPage{Items: make([]RegisteredClient, 0, len(list)), NextCursor: next}
	for _, cl := range list {
		page.Items = append(page.Items, a.shown(cl))
	}
	return page, nil
}

// shown returns cl as the read API shows it now: the expiry of its
// previous secret only while that secret still works.
func (a *App) shown(cl RegisteredClient) RegisteredClient {
	if until := cl.PreviousSecretExpiresAt; until != nil {
		cl.PreviousSecretExpiresAt = nil
		if a.now().Before(*until) {
			u := until.UTC()
			cl.PreviousSecretExpiresAt = &u
		}
	}
	cl.CreatedAt, cl.UpdatedAt = cl.CreatedAt.UTC(), cl.UpdatedAt.UTC()
	return cl
}
