package app

import (
	"encoding/hex"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// check validates the request's idempotency fields.
func (r Request) check() error {
	if r.IdempotencyKey == "" {
		return nil
	}
	if len(r.IdempotencyKey) > MaxIdempotencyKeyLen {
		return ErrInvalidIdempotencyKey
	}
	for i := 0; i < len(r.IdempotencyKey); i++ {
		if c := r.IdempotencyKey[i]; c < 0x20 || c > 0x7e {
			return ErrInvalidIdempotencyKey
		}
	}
	if b, err := hex.DecodeString(r.Fingerprint); err != nil || len(b) != 32 {
		return fault.New(fault.Internal, "bad-fingerprint", "request fingerprint must be a hex sha-256")
	}
	if r.Principal.Tenant == "" || r.Principal.UserID == "" {
		return domain.ErrUnauthenticated
	}
	return nil
}

// idParts are the parts event ids and new aggregate ids derive from when
// the request carries an idempotency key; nil otherwise (random ids).
func (r Request) idParts() []string {
	if r.IdempotencyKey == "" {
		return nil
	}
	return []string{r.Principal.Tenant, "idem", r.Principal.UserID, r.IdempotencyKey}
}

// actorOf is the envelope actor of a principal.
func actorOf(p domain.Principal) events.Actor {
	return events.Actor{Tenant: p.Tenant, Sub: p.UserID}
}
