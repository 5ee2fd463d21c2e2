package domain

import "time"

// Backoff is the retry schedule of a failing delivery: the first retry
// after about First, each next one after about twice the previous, never
// more than Max; each delay is drawn between half and all of that
// (jitter), so that endpoints failing together do not retry together.
type Backoff struct {
	First, Max time.Duration
}

// Delay returns the wait before attempt n+1 after n failed attempts (n >=
// 1); random draws from [0, 1).
func (b Backoff) Delay(n int, random func() float64) time.Duration {
	d := b.First
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + time.Duration(random()*float64(d-half))
}
