package keystore

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// keySet is the stored value of one tenant: its signing keys, public parts
// in clear and private parts sealed, of one or more algorithms.
//
// The access-token keys are those made by Create and Rotate: the newest of
// them (by ActiveFrom) that signs is the tenant's access-token signer, and
// its algorithm the tenant's access-token algorithm. Per algorithm the
// tenant has at most one current key, the newest not retired, which signs
// whatever needs that algorithm (ID tokens); Ensure makes one where there
// is none and adds the algorithm to Kept, so that a later change of the
// access-token algorithm does not retire it. Values written before keys of
// several algorithms have neither Kept nor Extra: all their keys are
// access-token keys, as they were.
type keySet struct {
	// Kept lists the algorithms Ensure asked for, sorted.
	Kept []string `json:"kept,omitempty"`
	Keys []record `json:"keys"`
}

// record is one key of a keySet. A key is published from CreatedAt, signs
// from ActiveFrom until RetireAt, and leaves the JWKS at RemoveAt. Zero
// RetireAt and RemoveAt mean "not yet scheduled". Extra marks a key made
// for an algorithm other than the access-token one (by Ensure or
// RotateFor): it never signs access tokens.
type record struct {
	KID           string          `json:"kid"`
	Alg           string          `json:"alg"`
	Extra         bool            `json:"extra,omitempty"`
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

// later reports whether r becomes active after o, ties broken by kid so
// that every process picks the same key.
func (r record) later(o record) bool {
	return r.ActiveFrom.After(o.ActiveFrom) || (r.ActiveFrom.Equal(o.ActiveFrom) && r.KID > o.KID)
}

// A selector picks keys: those of one algorithm, the access-token keys,
// or none.
type selector func(record) bool

func ofAlg(alg string) selector { return func(r record) bool { return r.Alg == alg } }

func accessKeys(r record) bool { return !r.Extra }

func noKey(record) bool { return false }

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

// signer returns, of the keys sel picks, the one that signs at now: of
// those active at now, the one that became active last.
func (s *keySet) signer(sel selector, now time.Time) (record, bool) {
	var best record
	found := false
	for _, r := range s.live(now) {
		if sel(r) && r.signs(now) && (!found || r.later(best)) {
			best, found = r, true
		}
	}
	return best, found
}

// latest returns, of the keys sel picks, the newest that is not retired:
// the key the last rotation made, whether or not it signs yet.
func (s *keySet) latest(sel selector, now time.Time) (record, bool) {
	var best record
	found := false
	for _, r := range s.live(now) {
		if sel(r) && r.RetireAt.IsZero() && (!found || r.later(best)) {
			best, found = r, true
		}
	}
	return best, found
}

// current returns, of the keys sel picks, the one that signs now or, when
// none does, the one scheduled to without having been retired: the key
// Create and Ensure treat as "the tenant already has one".
func (s *keySet) current(sel selector, now time.Time) (record, bool) {
	if r, ok := s.signer(sel, now); ok {
		return r, true
	}
	return s.latest(sel, now)
}

// primaryAlg returns the tenant's access-token algorithm: that of the
// newest access-token key not retired (during a change of algorithm, the
// new one), or of the one that signs; "" when there is none.
func (s *keySet) primaryAlg(now time.Time) string {
	if r, ok := s.latest(accessKeys, now); ok {
		return r.Alg
	}
	if r, ok := s.signer(accessKeys, now); ok {
		return r.Alg
	}
	return ""
}

// algs returns the algorithms the set has a current (not retired) key of:
// the access-token algorithm first, then the others sorted.
func (s *keySet) algs(now time.Time) []string {
	var out []string
	for _, r := range s.live(now) {
		if r.RetireAt.IsZero() && !slices.Contains(out, r.Alg) {
			out = append(out, r.Alg)
		}
	}
	slices.Sort(out)
	if p := s.primaryAlg(now); slices.Contains(out, p) {
		out = append([]string{p}, slices.DeleteFunc(out, func(a string) bool { return a == p })...)
	}
	return out
}

// kept reports whether Ensure asked for a key of alg.
func (s *keySet) kept(alg string) bool { return slices.Contains(s.Kept, alg) }

// find returns the live key kid.
func (s *keySet) find(kid string, now time.Time) (record, bool) {
	if s == nil {
		return record{}, false
	}
	// Not through live, which copies the live records: every request's
	// token check asks, and the answer is one record.
	for i := range s.Keys {
		if r := &s.Keys[i]; r.KID == kid && !r.removed(now) {
			return *r, true
		}
	}
	return record{}, false
}

// next returns a copy of s to change, without the keys removed at now (so
// that the value does not grow forever) and with alg added to Kept when
// keep is true. It shares no slice with s.
func (s *keySet) next(now time.Time, keep bool, alg string) keySet {
	out := keySet{Kept: slices.Clone(s.Kept), Keys: slices.Clone(s.live(now))}
	if keep && !out.kept(alg) {
		out.Kept = append(out.Kept, alg)
		slices.Sort(out.Kept)
	}
	return out
}

// rotate adds key to s and retires, at key.ActiveFrom, every key retire
// picks that would still sign then; each stays published until
// key.ActiveFrom+overlap. It returns the keys it retired. s must come
// from next: rotate changes it in place.
func (s *keySet) rotate(key record, overlap time.Duration, retire selector) []record {
	var retired []record
	for i, r := range s.Keys {
		if !retire(r) || !(r.RetireAt.IsZero() || r.RetireAt.After(key.ActiveFrom)) {
			continue
		}
		r.RetireAt = key.ActiveFrom
		if removeAt := key.ActiveFrom.Add(overlap); removeAt.After(r.RemoveAt) {
			r.RemoveAt = removeAt
		}
		s.Keys[i] = r
		retired = append(retired, r)
	}
	s.Keys = append(s.Keys, key)
	return retired
}
