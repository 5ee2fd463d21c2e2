package platform

import (
	"context"

	"github.com/authstream/authstream/libs/events"
)

// Target is a running platform as the seeding and measuring code sees it,
// whichever its shape: the all-in-one process or a cluster of processes.
type Target struct {
	// Client reaches a command, a query and a projector process.
	*Client
	// NATS is a client URL whose user may write the streams and read the
	// key bucket, as the command service's.
	NATS string
	// DatabaseURL is the read model database.
	DatabaseURL string
	// PublicURL is the query service's public URL (AUTH_PUBLIC_URL).
	PublicURL string
	// KEK is the platform's key-encryption keyring.
	KEK *events.Keyring
	// BcryptCost is the cost the platform hashes passwords at.
	BcryptCost int
}

// ProjectedUsers returns how many users of tenants the active accounts
// projection holds.
func (t Target) ProjectedUsers(ctx context.Context, tenants []string) (int64, error) {
	return projectedUsers(ctx, t.DatabaseURL, tenants)
}
