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

// TestFinalRate gives a finished job its rate: a full rebuild's over what
// it applied since its first count, even when it ended before a second
// count (the rate stayed 0 then); other kinds' over their whole run.
func TestFinalRate(t *testing.T) {
	start := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		s      jobState
		now    time.Time
		want   float64
		wantOK bool
	}{
		{"full, one count seen", jobState{job: Job{Kind: KindFull, Total: 1_000_000, StartedAt: start},
			base: 100_000, baseAt: start.Add(2 * time.Second), baseSeen: true}, start.Add(20 * time.Second), 50_000, true},
		{"full, no count seen", jobState{job: Job{Kind: KindFull, Total: 1_000_000, StartedAt: start}}, start.Add(20 * time.Second), 0, false},
		{"full, finished at its count", jobState{job: Job{Kind: KindFull, Total: 10, StartedAt: start},
			base: 10, baseAt: start.Add(time.Second), baseSeen: true}, start.Add(time.Second), 0, false},
		{"tenant", jobState{job: Job{Kind: KindTenant, Total: 300, StartedAt: start}}, start.Add(3 * time.Second), 100, true},
		{"since, no time", jobState{job: Job{Kind: KindSince, Total: 300, StartedAt: start}}, start, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.s.finalRate(tc.now)
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Errorf("finalRate = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
