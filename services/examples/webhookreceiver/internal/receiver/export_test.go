package receiver

import "time"

// VerifyAt is Verify with the clock at now.
func VerifyAt(r *Receiver, now time.Time, id, timestamp, signatures string, body []byte) error {
	saved := r.now
	r.now = func() time.Time { return now }
	defer func() { r.now = saved }()
	return r.Verify(id, timestamp, signatures, body)
}
