package app

import (
	"context"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// DefaultSecretGrace is how long a client's previous secret keeps working
// after a rotation that names no grace period: long enough to roll the new
// secret out to every instance of the client.
const DefaultSecretGrace = 24 * time.Hour

// MaxSecretGrace bounds the grace period of a client's previous secret.
const MaxSecretGrace = 30 * 24 * time.Hour

// RotateClientSecret gives a confidential client a new secret; the
// previous one keeps working for the grace period. It needs clients:write.
type RotateClientSecret struct {
	Request
	Tenant   string
	ClientID string
	// Grace is how long the previous secret keeps working, 0 (not at all)
	// to MaxSecretGrace; nil means DefaultSecretGrace.
	Grace *time.Duration
}

type rotateClientSecretHandler struct{ e *engine }

// Handle appends client.secret_rotated with the hash of a new secret of 32
// random bytes (base64url), the hash of the previous one and the end of
// its grace period. Result.Client.Secret is the new secret, shown in this
// answer only; a replay answers the end of the grace period without it.
func (h rotateClientSecretHandler) Handle(ctx context.Context, cmd RotateClientSecret) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, domain.PermClientsWrite); err != nil {
		return Result{}, err
	}
	grace := DefaultSecretGrace
	if cmd.Grace != nil {
		grace = *cmd.Grace
	}
	if grace < 0 || grace > MaxSecretGrace {
		return Result{}, fault.New(fault.Invalid, "invalid-grace",
			fmt.Sprintf("grace_seconds must be between 0 and %d (%s)", int64(MaxSecretGrace/time.Second), MaxSecretGrace))
	}
	secret, hash := authn.NewOpaqueToken()
	return h.e.run(ctx, cmd.Request, actorOf(p), cmd.idParts(), func(ctx context.Context, u unit) (Result, error) {
		c, err := u.activeClient(ctx, cmd.Tenant, cmd.ClientID)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			d, err := replayed[events.ClientSecretRotated](rep)
			if err != nil {
				return Result{}, err
			}
			out := &ClientOutcome{Config: c.Config(), PreviousSecretExpiresAt: d.PreviousSecretExpiresAt}
			return Result{ID: cmd.ClientID, Version: rep.Version(c.Kind(), cmd.ClientID), Sequence: rep.Sequence,
				Changed: true, Replayed: true, Client: out}, nil
		}
		until := h.e.now().UTC().Add(grace)
		if err := c.RotateSecret(hash, until); err != nil {
			return Result{}, err
		}
		res, err := commitOne(ctx, u, c, cmd.ClientID)
		if err != nil {
			return Result{}, err
		}
		res.Client = &ClientOutcome{Config: c.Config(), Secret: secret, PreviousSecretExpiresAt: until}
		return res, nil
	})
}
