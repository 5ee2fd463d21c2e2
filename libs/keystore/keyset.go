package keystore

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// keySet is the stored value of one tenant: its signing keys, public parts
// in clear and private parts sealed.
type keySet struct {
	Keys []record `json:"keys"`
}

// record is one key of a keySet. A key is published from CreatedAt, signs
// from ActiveFrom until RetireAt, and leaves the JWKS at RemoveAt. Zero
// RetireAt and RemoveAt mean "not yet scheduled".
type record struct {
	KID           string          `json:"kid"`
	Alg           string          `json:"alg"`
	PublicJWK     json.RawMessage `json:"public_jwk"`
	SealedPrivate events.Sealed   `json:"sealed_private"`
	CreatedAt     time.Time       `json:"created_at"`
	ActiveFrom    time.Time       `json:"active_from"`
	RetireAt      time.Time       `json:"retire_at,omitzero"`
	RemoveAt      time.Time       `json:"remove_at,omitzero"`
}

// removed reports whether r has left the JWKS at now.
func (r record) removed(now time.Time) bool { return !r.RemoveAt.IsZero() && !now.Before(r.RemoveAt) }

// signs reports whether r is the kind of key that may sign at now.
func (r record) signs(now time.Time) bool {
	return !now.Before(r.ActiveFrom) && (r.RetireAt.IsZero() || now.Before(r.RetireAt))
}

// live returns the keys that are still published at now.
func (s *keySet) live(now time.Time) []record {
	if s == nil {
		return nil
	}
	var out []record
	for _, r := range s.Keys {
		if !r.removed(now) {
			out = append(out, r)
		}
	}
	return out
}

// signer returns the key that signs at now: of the keys active at now, the
// one that became active last (ties broken by kid, so every process picks
// the same one).
func (s *keySet) signer(now time.Time) (record, bool) {
	var best record
	found := false
	for _, r := range s.live(now) {
		if !r.signs(now) {
			continue
		}
		if !found || r.ActiveFrom.After(best.ActiveFrom) || (r.ActiveFrom.Equal(best.ActiveFrom) && r.KID > best.KID) {
			best, found = r, true
		}
	}
	return best, found
}

// current returns a key that signs now or is scheduled to, without having
// been retired: the key Create treats as "the tenant already has one".
func (s *keySet) current(now time.Time) (record, bool) {
	if r, ok := s.signer(now); ok {
		return r, true
	}
	for _, r := range s.live(now) {
		if r.RetireAt.IsZero() {
			return r, true
		}
	}
	return record{}, false
}

// find returns the live key kid.
func (s *keySet) find(kid string, now time.Time) (record, bool) {
	for _, r := range s.live(now) {
		if r.KID == kid {
			return r, true
		}
	}
	return record{}, false
}

// rotate returns a copy of s with next added and every key that would
// still sign at next.ActiveFrom retired then, kept until
// next.ActiveFrom+overlap. It also returns the keys it retired. Keys already
// removed at now are dropped, so the value does not grow forever.
func (s *keySet) rotate(next record, overlap time.Duration, now time.Time) (keySet, []record) {
	out := keySet{Keys: slices.Clone(s.live(now))}
	var retired []record
	for i, r := range out.Keys {
		if r.RetireAt.IsZero() || r.RetireAt.After(next.ActiveFrom) {
			r.RetireAt = next.ActiveFrom
			if removeAt := next.ActiveFrom.Add(overlap); removeAt.After(r.RemoveAt) {
				r.RemoveAt = removeAt
			}
			out.Keys[i] = r
			retired = append(retired, r)
		}
	}
	out.Keys = append(out.Keys, next)
	return out, retired
}
