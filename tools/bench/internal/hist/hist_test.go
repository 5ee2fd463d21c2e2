package hist_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/hist"
)

// within reports whether got is at least want and over-estimates it by no
// more than the histogram's precision (1/128).
func within(got, want time.Duration) bool {
	return got >= want && float64(got-want) <= float64(want)/128+1
}

func TestHistogram_Quantile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []time.Duration{42 * time.Millisecond}, 0.99, 42 * time.Millisecond},
		{"small values are exact", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5},
		{"q 0 is the minimum", []time.Duration{7 * time.Second, 3 * time.Microsecond}, 0, 3 * time.Microsecond},
		{"q 1 is the maximum", []time.Duration{7 * time.Second, 3 * time.Microsecond}, 1, 7 * time.Second},
		{"q above 1 is clamped", []time.Duration{5, 9}, 2, 9},
		{"negative counts as zero", []time.Duration{-time.Second, 10}, 0.5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h hist.Histogram
			for _, v := range tc.values {
				h.Record(v)
			}
			if got := h.Quantile(tc.q); got != tc.want {
				t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

// TestHistogram_QuantileUniform compares the histogram's percentiles with
// the exact ones of a sorted sample spanning six orders of magnitude.
func TestHistogram_QuantileUniform(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	values := make([]time.Duration, 100_000)
	var h hist.Histogram
	for i := range values {
		// Log-uniform from 1µs to 1s: every bucket row is exercised.
		v := time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*6))
		values[i] = v
		h.Record(v)
	}
	sorted := append([]time.Duration(nil), values...)
	slices.Sort(sorted)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.95, 0.99, 0.999} {
		rank := int(float64(len(sorted))*q+0.999999) - 1
		want := sorted[rank]
		if got := h.Quantile(q); !within(got, want) {
			t.Errorf("Quantile(%v) = %v, exact %v: off by more than 1/128", q, got, want)
		}
	}
	if h.Count() != uint64(len(values)) || h.Min() != sorted[0] || h.Max() != sorted[len(sorted)-1] {
		t.Errorf("Count, Min, Max = %d, %v, %v; want %d, %v, %v",
			h.Count(), h.Min(), h.Max(), len(values), sorted[0], sorted[len(sorted)-1])
	}
}

func TestHistogram_Merge(t *testing.T) {
	t.Parallel()
	var a, b, all hist.Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Millisecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var empty hist.Histogram
	a.Merge(&empty)
	empty.Merge(&a)
	empty.Merge(&b)
	for _, q := range []float64{0, 0.5, 0.95, 0.99, 1} {
		if got, want := empty.Quantile(q), all.Quantile(q); got != want {
			t.Errorf("merged Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if empty.Count() != 1000 || empty.Min() != time.Millisecond || empty.Max() != time.Second {
		t.Errorf("merged Count, Min, Max = %d, %v, %v", empty.Count(), empty.Min(), empty.Max())
	}
	if got, want := empty.Mean(), 500500*time.Microsecond; got != want {
		t.Errorf("Mean = %v, want %v", got, want)
	}
}
