package events

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrBrokenChain is wrapped by the errors of VerifyChain and VerifyHash: an
// event was altered, removed, inserted or reordered.
var ErrBrokenChain = errors.New("broken hash chain")

// ChainError says where a hash chain breaks first and how. It wraps
// ErrBrokenChain.
type ChainError struct {
	Index   int    // position in the verified slice, from 0
	Version uint64 // the event's version as it claims it
	ID      string // the event's id as it claims it
	Problem string // what is wrong, in words
}

// Error implements error.
func (e *ChainError) Error() string {
	return fmt.Sprintf("%v at index %d (version %d, id %s): %s", ErrBrokenChain, e.Index, e.Version, e.ID, e.Problem)
}

// Unwrap makes errors.Is(err, ErrBrokenChain) hold.
func (e *ChainError) Unwrap() error { return ErrBrokenChain }

// ComputeHash returns the hex SHA-256 of the canonical JSON of e with Hash
// set to "": every other member, Prev and Version included, and Data in
// canonical form, is covered. It fails only when e cannot be marshalled (a
// time outside years 0 to 9999, data that is not JSON).
func (e Envelope) ComputeHash() (string, error) {
	s := newScanner(nil) // only for its buffer
	defer s.release()
	b, err := e.appendCanonical(s.scratch[:0], "", nil)
	if err != nil {
		return "", fmt.Errorf("hash event %s: %w", e.ID, err)
	}
	s.scratch = b
	sum := sha256.Sum256(b)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:]), nil
}

// VerifyHash checks that e.Hash is the hash of e. It returns a *ChainError
// (index 0) wrapping ErrBrokenChain when it is not.
func (e Envelope) VerifyHash() error {
	return verifyHash(0, e)
}

func verifyHash(i int, e Envelope) error {
	h, err := e.ComputeHash()
	if err != nil {
		return &ChainError{Index: i, Version: e.Version, ID: e.ID, Problem: err.Error()}
	}
	if h != e.Hash {
		return &ChainError{Index: i, Version: e.Version, ID: e.ID, Problem: "hash does not match the content"}
	}
	return nil
}

// Chain links e after the aggregate's previous event: it sets e.Prev to
// prevHash ("" for the first event), e.Version to version, normalises
// e.OccurredAt to UTC (so the stored text parses back to the same instant
// and hash) and sets e.Hash. It returns an error wrapping ErrInvalid when
// version is 0, when prevHash is empty for a version above 1 or set for
// version 1, or when e is not a valid envelope (data included: a JSON
// object the hash can cover, without duplicate keys or nesting deeper
// than 64). ChainAppend also writes the stored body.
func Chain(prevHash string, version uint64, e *Envelope) error {
	return chain(prevHash, version, e)
}

// VerifyChain checks the complete history of one aggregate, oldest first:
// every event belongs to the tenant, aggregate and aggregate id of the
// first, versions run 1, 2, 3... without gaps, each Prev is the Hash of the
// event before (the first's is empty) and each Hash matches its event. It
// returns nil for an empty slice, or a *ChainError wrapping ErrBrokenChain
// for the first broken link, so an altered, removed, inserted or reordered
// event is detected.
func VerifyChain(envs []Envelope) error {
	return verifyChain(envs, true)
}

// VerifyLinks is VerifyChain without recomputing each event's own hash:
// for envelopes ParseVerified returned, whose hashes are already checked,
// it checks that they form one complete history (same aggregate, versions
// 1, 2, 3... and each Prev the Hash of the event before). It returns nil
// for an empty slice, or a *ChainError wrapping ErrBrokenChain for the
// first broken link.
func VerifyLinks(envs []Envelope) error {
	return verifyChain(envs, false)
}

func verifyChain(envs []Envelope, hashes bool) error {
	for i, e := range envs {
		fail := func(format string, args ...any) error {
			return &ChainError{Index: i, Version: e.Version, ID: e.ID, Problem: fmt.Sprintf(format, args...)}
		}
		first := envs[0]
		if e.Tenant != first.Tenant || e.Aggregate != first.Aggregate || e.AggregateID != first.AggregateID {
			return fail("belongs to %s/%s/%s, not %s/%s/%s",
				e.Tenant, e.Aggregate, e.AggregateID, first.Tenant, first.Aggregate, first.AggregateID)
		}
		if want := uint64(i) + 1; e.Version != want {
			return fail("version %d where %d was expected (an event is missing, extra or out of order)", e.Version, want)
		}
		wantPrev := ""
		if i > 0 {
			wantPrev = envs[i-1].Hash
		}
		if e.Prev != wantPrev {
			return fail("prev does not link to the hash of the previous event")
		}
		if !hashes {
			continue
		}
		if err := verifyHash(i, e); err != nil {
			return err
		}
	}
	return nil
}
