package accounts

import (
	"context"
	"errors"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// countingKeys is a key store of one key per user that counts its reads
// and fails while down.
type countingKeys struct {
	key       *events.DataKey
	reads     int
	destroyed map[string]bool
	down      bool
}

func (c *countingKeys) DataKey(_ context.Context, tenant, userID string) (*events.DataKey, error) {
	c.reads++
	switch {
	case c.down:
		return nil, fault.New(fault.Unavailable, "down", "key store down")
	case c.destroyed[tenant+"/"+userID]:
		return nil, events.ErrErased
	case userID == "nobody":
		return nil, events.ErrNoDataKey
	}
	return c.key, nil
}

func (c *countingKeys) Destroy(_ context.Context, tenant, userID string) error {
	c.destroyed[tenant+"/"+userID] = true
	return nil
}

// TestBatchKeys reads each user's key once per batch, keeps the store's
// answer about the key (the key, erased, none) but not its failures, and
// lets a user.erased met in the batch win over the key read before it.
func TestBatchKeys(t *testing.T) {
	ctx := context.Background()
	key, err := events.NewDataKey(make([]byte, events.DataKeySize))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		steps     func(b *batchKeys, c *countingKeys) error // the last DataKey's error
		wantReads int
		wantErr   error
	}{
		{"the key, read once", func(b *batchKeys, c *countingKeys) error {
			_, _ = b.DataKey(ctx, "t", "u")
			_, err := b.DataKey(ctx, "t", "u")
			return err
		}, 1, nil},
		{"two users, one read each", func(b *batchKeys, c *countingKeys) error {
			_, _ = b.DataKey(ctx, "t", "u")
			_, _ = b.DataKey(ctx, "t", "v")
			_, err := b.DataKey(ctx, "t", "v")
			return err
		}, 2, nil},
		{"erased in the batch wins over the key read", func(b *batchKeys, c *countingKeys) error {
			_, _ = b.DataKey(ctx, "t", "u")
			if err := b.destroy(ctx, "t", "u"); err != nil {
				return err
			}
			_, err := b.DataKey(ctx, "t", "u")
			return err
		}, 1, events.ErrErased},
		{"erased before any read", func(b *batchKeys, c *countingKeys) error {
			if err := b.destroy(ctx, "t", "u"); err != nil {
				return err
			}
			_, err := b.DataKey(ctx, "t", "u")
			return err
		}, 0, events.ErrErased},
		{"no key, kept", func(b *batchKeys, c *countingKeys) error {
			_, _ = b.DataKey(ctx, "t", "nobody")
			_, err := b.DataKey(ctx, "t", "nobody")
			return err
		}, 1, events.ErrNoDataKey},
		{"a failing store is asked again", func(b *batchKeys, c *countingKeys) error {
			c.down = true
			_, _ = b.DataKey(ctx, "t", "u")
			c.down = false
			_, err := b.DataKey(ctx, "t", "u")
			return err
		}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &countingKeys{key: key, destroyed: map[string]bool{}}
			b := &batchKeys{keys: c}
			err := tc.steps(b, c)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if c.reads != tc.wantReads {
				t.Errorf("%d reads, want %d", c.reads, tc.wantReads)
			}
		})
	}
}
