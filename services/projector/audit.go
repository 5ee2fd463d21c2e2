package projector

import (
	"context"
	"crypto/ed25519"

	"github.com/authstream/authstream/libs/keystore"
)

// auditKeys is runner.AuditKeys over the key store, opened on first use:
// like the operator API's key source (internal/operators), it never
// creates the key bucket, which is the command service's to create; until
// it exists no tenant has an audit key.
type auditKeys struct{ *keystore.Lazy }

// AuditSigner implements runner.AuditKeys.
func (k auditKeys) AuditSigner(ctx context.Context, tenant string) (string, ed25519.PrivateKey, error) {
	s, err := k.Get(ctx)
	if err != nil {
		return "", nil, err
	}
	key, priv, err := s.AuditSigner(ctx, tenant)
	return key.KID, priv, err
}
