package app

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The memory bound of the limiter cannot be seen through PasswordLogin, so
// this test looks inside.
func TestLoginLimiter_boundedMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	l := newLoginLimiter(LoginLimits{PerAccount: 2, PerAddress: 1_000_000, Window: time.Minute}, nil, func() time.Time { return now }, nil)

	// A spray of distinct usernames from one address: the account map
	// never holds more than maxKeys buckets.
	for i := range maxKeys + 10 {
		if _, ok := l.allow(ctx, "acme", "192.0.2.1", fmt.Sprintf("user-%d", i)); !ok {
			t.Fatalf("attempt %d on a fresh account refused", i)
		}
		if len(l.accounts) > maxKeys {
			t.Fatalf("account buckets grew to %d, past %d", len(l.accounts), maxKeys)
		}
	}

	// Once a window has passed every bucket is full again and the next
	// attempt sweeps them all away.
	now = now.Add(time.Minute)
	if _, ok := l.allow(ctx, "acme", "192.0.2.1", "user-0"); !ok {
		t.Fatal("attempt after a window refused")
	}
	if len(l.accounts) != 1 || len(l.addresses) != 1 {
		t.Fatalf("after the sweep: %d account and %d address buckets, want 1 and 1", len(l.accounts), len(l.addresses))
	}
}
