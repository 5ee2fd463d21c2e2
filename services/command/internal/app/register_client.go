package app

import (
	"context"
	"slices"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// RegisterClient registers an OpenID Connect client of a tenant. It needs
// clients:write.
type RegisterClient struct {
	Request
	Tenant string
	// Config is the configuration as the caller gives it: a nil list or an
	// empty algorithm takes its default (domain.NormalizeClientConfig).
	Config events.ClientConfig
}

type registerClientHandler struct{ e *engine }

// Handle appends client.registered and, in the same batch, the key.created
// of the keys the client's ID tokens need that the tenant's key set does
// not record yet: its RS256 key (tenants created before every tenant had
// one get it here) and the key of the client's own algorithm. A
// confidential client gets a secret of 32 random bytes (base64url), of
// which only the SHA-256 is stored: Result.Client.Secret is the one place
// it is ever shown. Result.ID is the client id, derived from the
// idempotency key when there is one; a replay answers the configuration
// without the secret, which no longer exists anywhere.
func (h registerClientHandler) Handle(ctx context.Context, cmd RegisterClient) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, domain.PermClientsWrite); err != nil {
		return Result{}, err
	}
	// Checked before anything reaches the key store.
	norm, err := domain.NormalizeClientConfig(cmd.Config)
	if err != nil {
		return Result{}, err
	}
	parts := cmd.idParts()
	clientID := unitofwork.NewID(parts, "client")
	// One secret per request, kept across the attempts of the engine: the
	// secret answered is the one whose hash was stored.
	var secret, hash string
	if norm.Type == events.ClientConfidential {
		secret, hash = authn.NewOpaqueToken()
	}
	return h.e.run(ctx, cmd.Request, actorOf(p), parts, func(ctx context.Context, u unit) (Result, error) {
		c, err := u.activeClient(ctx, cmd.Tenant, clientID)
		if err != nil {
			return Result{}, err
		}
		ks, err := u.keySet(ctx, cmd.Tenant)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			d, err := replayed[events.ClientRegistered](rep)
			if err != nil {
				return Result{}, err
			}
			return Result{ID: clientID, Version: rep.Version(c.Kind(), clientID), Sequence: rep.Sequence,
				Changed: true, Replayed: true, Client: &ClientOutcome{Config: d.Config}}, nil
		}
		if err := c.Register(cmd.Config, hash); err != nil {
			return Result{}, err
		}
		if err := h.e.ensureKeys(ctx, cmd.Tenant, ks, idTokenAlgs(norm)...); err != nil {
			return Result{}, err
		}
		res, err := u.Commit(ctx, []domain.Aggregate{c, ks})
		if err != nil {
			return Result{}, err
		}
		return Result{ID: clientID, Version: c.Version(), Sequence: res.Sequence, Changed: true, Replayed: res.Duplicate,
			Client: &ClientOutcome{Config: c.Config(), Secret: secret}}, nil
	})
}

// idTokenAlgs are the algorithms of the keys a tenant needs for the ID
// tokens of a client of cfg: RS256, which every tenant holds, and the
// client's own.
func idTokenAlgs(cfg events.ClientConfig) []string {
	return slices.Compact([]string{IDTokenAlg, cfg.IDTokenSignedResponseAlg})
}
