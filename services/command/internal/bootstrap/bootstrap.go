// Package bootstrap creates the first admin of the platform tenant on first
// start, so a fresh installation can be administered without a manual step.
package bootstrap

import (
	"context"
	"log/slog"
)

// Credentials name the platform admin to create. The zero value means no
// bootstrap was configured.
type Credentials struct {
	Username string
	Password string // never logged
}

// Platform creates the platform tenant with its first admin unless it
// exists (app.App implements it).
type Platform interface {
	BootstrapPlatform(ctx context.Context, username, password string) (created bool, adminID string, err error)
}

// Admin makes sure the platform tenant and its first admin exist, creating
// them with creds when they do not. It is idempotent (every start calls it)
// and safe when several processes start at once. Without credentials it
// only logs that nothing was bootstrapped.
func Admin(ctx context.Context, log *slog.Logger, p Platform, creds Credentials) error {
	if creds.Username == "" {
		log.InfoContext(ctx, "no platform admin bootstrap configured")
		return nil
	}
	created, id, err := p.BootstrapPlatform(ctx, creds.Username, creds.Password)
	if err != nil {
		return err
	}
	if created {
		log.InfoContext(ctx, "platform tenant and its first admin created", "username", creds.Username, "user_id", id)
	} else {
		log.InfoContext(ctx, "platform tenant exists; bootstrap skipped")
	}
	return nil
}
