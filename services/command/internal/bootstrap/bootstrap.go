// Package bootstrap creates the first admin of the platform tenant on first
// start, so a fresh installation can be administered without a manual step.
package bootstrap

import (
	"context"
	"errors"
	"log/slog"

	"github.com/authstream/authstream/libs/authz"
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
	// EnsureConsoleClient registers or updates a tenant's console client
	// (app.App.EnsureConsoleClient).
	EnsureConsoleClient(ctx context.Context, tenant string) (changed bool, err error)
}

// Console makes sure the platform tenant's console client exists with the
// redirect URIs of the current public URL, so that platform admins can sign
// in to the console (tenants created before the console get theirs the same
// way, through the app). A public URL that cannot carry the client
// (noConsole) is logged, not fatal: the console is then unavailable.
func Console(ctx context.Context, log *slog.Logger, p Platform, noConsole error) error {
	changed, err := p.EnsureConsoleClient(ctx, authz.PlatformTenant)
	switch {
	case errors.Is(err, noConsole):
		log.WarnContext(ctx, "the console is unavailable", "reason", err.Error())
		return nil
	case err != nil:
		return err
	case changed:
		log.InfoContext(ctx, "the platform tenant's console client is registered for the current public URL")
	}
	return nil
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
