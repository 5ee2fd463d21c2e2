package rebuild

import (
	"testing"
	"time"
)

// TestNextRefresh keeps the progress refreshes of a full rebuild to a
// small share of its time: once a second while they are cheap, and
// further apart as the stream grows and they cost more.
func TestNextRefresh(t *testing.T) {
	for _, tc := range []struct {
		took, want time.Duration
	}{
		{0, time.Second},
		{20 * time.Millisecond, time.Second},
		{50 * time.Millisecond, time.Second},
		{200 * time.Millisecond, 4 * time.Second},
		{1500 * time.Millisecond, 30 * time.Second},
	} {
		if got := nextRefresh(tc.took); got != tc.want {
			t.Errorf("after a refresh of %v: wait %v, want %v", tc.took, got, tc.want)
		}
	}
}
