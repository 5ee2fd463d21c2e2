package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// Holders is who held a permission at an instant.
type Holders struct {
	At           time.Time       `json:"at"`
	Permission   string          `json:"permission"`
	TenantStatus string          `json:"tenant_status"` // active, disabled, or absent before the tenant existed
	Holders      []domain.Holder `json:"holders"`
}

// errMissingPermissionParameter refuses a holders question without a
// permission.
var errMissingPermissionParameter = fault.New(fault.Invalid, "missing-permission-parameter", "permission is required, e.g. ?permission=invoices:approve")

// PermissionHolders answers who held permission at the instant at (an RFC
// 3339 instant; "" is now) in the caller's tenant, by replaying the
// tenant's events from the log up to that instant; it needs audit:read. A
// missing or malformed permission or instant is fault.Invalid; a tenant
// without events is ErrUnknownTenant.
func (a *App) PermissionHolders(ctx context.Context, c Caller, permission, at string) (Holders, error) {
	if err := a.require(ctx, c, PermAuditRead); err != nil {
		return Holders{}, err
	}
	if permission == "" {
		return Holders{}, errMissingPermissionParameter
	}
	p, err := authz.Parse(permission)
	if err != nil {
		return Holders{}, err
	}
	when, err := ParseInstant("at", at, time.Now().UTC())
	if err != nil {
		return Holders{}, err
	}
	t, seen := domain.NewTenantAsOf(when), false
	// The tenant exists when it has any event, even one after the instant.
	exists := func(uint64) { seen = true }
	err = a.replay(ctx, c.Tenant, when.Add(commitSlack), exists, func(st eventstore.Stored) error {
		// Holders are named by username: the sealed ones are opened
		// ("[erased]" once the person is erased).
		env, err := events.OpenEnvelope(ctx, a.personal, st.Envelope)
		if err != nil {
			return fault.Wrap(fault.Internal, err, "internal error")
		}
		if err := t.Apply(env); err != nil {
			return fault.Wrap(fault.Internal, err, "internal error")
		}
		return nil
	})
	if err != nil {
		return Holders{}, err
	}
	if !seen {
		return Holders{}, ErrUnknownTenant // no event at all: no tenant
	}
	return Holders{At: when, Permission: p.String(), TenantStatus: t.Status(), Holders: t.Holders(p)}, nil
}
