// Package hist records latencies in logarithmic buckets, the way HDR
// histograms do: every power of two is split into 128 linear sub-buckets,
// so a recorded value is known within 1/128 (under 0.8%) of its size, and
// a histogram costs a few kilobytes however many values it holds. Each load
// generator client records into its own Histogram; Merge adds them up.
package hist

import (
	"math"
	"math/bits"
	"time"
)

// subBits is log2 of the sub-buckets per power of two; it fixes the
// relative precision at 2^-subBits.
const (
	subBits  = 7
	subCount = 1 << subBits
)

// Histogram counts durations. The zero value is empty and ready to use; it
// is not safe for concurrent use.
type Histogram struct {
	counts []uint64 // by bucket index; grown as larger values arrive
	total  uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

// index returns the bucket of v: values below 2*subCount have a bucket
// each; above, a bucket spans 2^shift values.
func index(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subCount + int(v>>shift) - subCount //nolint:gosec // G115: v>>shift has subBits+1 bits
}

// highest returns the largest value that falls in bucket i.
func highest(i int) uint64 {
	if i < 2*subCount {
		return uint64(i) //nolint:gosec // G115: i is a bucket index, never negative
	}
	shift := i/subCount - 1
	mantissa := uint64(subCount + i%subCount)
	return (mantissa+1)<<shift - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := index(uint64(d))
	if i >= len(h.counts) {
		grown := make([]uint64, i+1+subCount)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	if h.total == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.total++
	h.sum += d
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.total += o.total
	h.sum += o.sum
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Min returns the smallest value recorded, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration { return h.min }

// Max returns the largest value recorded, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean returns the average of the values recorded; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.sum / time.Duration(h.total) //nolint:gosec // G115: a count of recorded values, far below 2^63
}

// Quantile returns the smallest value v such that at least a fraction q of
// the recorded values are <= v, as the highest value of v's bucket (never
// above Max, never below Min): an over-estimate by at most 1/128 of v. q 0
// is Min, q above 1 counts as 1; an empty histogram answers 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	q = min(q, 1)
	rank := max(uint64(math.Ceil(q*float64(h.total))), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			// The bucket holds a recorded Duration: its highest value is
			// below 2^63 too.
			v := time.Duration(highest(i)) //nolint:gosec // G115: see above
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
