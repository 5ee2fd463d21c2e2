package accounts

import (
	"context"
	"errors"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
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

// manyCountingKeys is countingKeys that also reads many keys at once,
// counting those requests apart from the single reads.
type manyCountingKeys struct {
	*countingKeys
	batches int
	asked   []keystore.UserRef
}

func (m *manyCountingKeys) DataKeysOf(ctx context.Context, users []keystore.UserRef) (map[keystore.UserRef]keystore.KeyRead, error) {
	m.batches++
	m.asked = append(m.asked, users...)
	if m.down {
		return nil, fault.New(fault.Unavailable, "down", "key store down")
	}
	out := map[keystore.UserRef]keystore.KeyRead{}
	reads := m.reads
	for _, u := range users {
		k, err := m.countingKeys.DataKey(ctx, u.Tenant, u.UserID)
		out[u] = keystore.KeyRead{Key: k, Err: err}
	}
	m.reads = reads
	return out, nil
}

// TestBatchKeys_Prefetch reads the keys of a batch's users with sealed
// members in one request, and still lets a user.erased of the batch win.
func TestBatchKeys_Prefetch(t *testing.T) {
	ctx := context.Background()
	key, err := events.NewDataKey(make([]byte, events.DataKeySize))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := key.Seal("a@example.com", []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	clearEmail := events.LegacyPersonal("a@example.com")
	ev := func(user string, email events.Personal) (eventstore.Stored, decoded) {
		return eventstore.Stored{Envelope: events.Envelope{Tenant: "t", AggregateID: user, Type: events.TypeUserEmailVerified}},
			decoded{payload: events.UserEmailVerified{Email: email}}
	}
	for _, tc := range []struct {
		name        string
		users       []string // one event each
		clear       bool     // its member in clear
		down        bool
		erase       string // destroyed after the prefetch
		wantBatches int
		wantAsked   int
		wantReads   int // single reads when each user's key is then asked for
		wantErased  string
		wantErr     bool
	}{
		{"two users, one request", []string{"u", "v", "u"}, false, false, "", 1, 2, 0, "", false},
		{"one user, a single read", []string{"u"}, false, false, "", 0, 0, 1, "", false},
		{"clear members read no key", []string{"u", "v"}, true, false, "", 0, 0, 2, "", false},
		{"erased in the batch wins over the prefetched key", []string{"u", "v"}, false, false, "u", 1, 2, 0, "u", false},
		{"a failing store fails the batch", []string{"u", "v"}, false, true, "", 1, 2, 0, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &manyCountingKeys{countingKeys: &countingKeys{key: key, destroyed: map[string]bool{}, down: tc.down}}
			b := &batchKeys{keys: c}
			var evs []eventstore.Stored
			var payloads []decoded
			for _, u := range tc.users {
				m := sealed
				if tc.clear {
					m = clearEmail
				}
				e, p := ev(u, m)
				evs, payloads = append(evs, e), append(payloads, p)
			}
			err := b.prefetch(ctx, evs, payloads)
			if (err != nil) != tc.wantErr {
				t.Fatalf("prefetch: %v, want error %v", err, tc.wantErr)
			}
			if c.batches != tc.wantBatches || len(c.asked) != tc.wantAsked {
				t.Fatalf("%d requests for %d users, want %d for %d", c.batches, len(c.asked), tc.wantBatches, tc.wantAsked)
			}
			if tc.wantErr {
				return
			}
			if tc.erase != "" {
				if err := b.destroy(ctx, "t", tc.erase); err != nil {
					t.Fatal(err)
				}
			}
			for _, u := range tc.users {
				k, err := b.DataKey(ctx, "t", u)
				switch {
				case u == tc.wantErased && !errors.Is(err, events.ErrErased):
					t.Errorf("%s: %v, %v; want ErrErased", u, k, err)
				case u != tc.wantErased && (err != nil || k != key):
					t.Errorf("%s: %v, %v; want the key", u, k, err)
				}
			}
			if c.reads != tc.wantReads {
				t.Errorf("%d single reads, want %d", c.reads, tc.wantReads)
			}
		})
	}
}
