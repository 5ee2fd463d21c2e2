package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/authstream/authstream/libs/events"
)

// Claim takes or releases a uniqueness claim in the same atomic batch as the
// events that need it: a username is unique per tenant because
// user.registered is only stored together with the claim on
// events.ClaimSubject(tenant, "username", key).
//
// Taking a claim requires it to be free (never taken, or released); taking
// one the Owner already holds re-asserts it. Releasing requires the Owner to
// hold it. Append returns ErrClaimTaken or ErrClaimNotHeld otherwise, and
// ErrConcurrency when the claim changed between its read and the write.
type Claim struct {
	Tenant string
	// Kind names the unique property, a subject token such as
	// events.ClaimKindUsername.
	Kind string
	// Value is the normalised value. Only its SHA-256 appears in the
	// subject; the value itself is stored nowhere by the claim.
	Value string
	// Owner is the id of the aggregate that holds (or held) the claim.
	Owner string
	// Release gives the claim up instead of taking it.
	Release bool
	// Fresh takes a claim the caller expects never to have been taken,
	// without reading it first: the batch expects the claim subject to be
	// empty, so a claim taken or released before fails the whole batch
	// (ErrClaimTaken when another owner holds it, ErrConcurrency
	// otherwise). Bulk imports use it to save a read per claim; a caller
	// that gets either error retries without it. Not for releases.
	Fresh bool
}

func (Claim) isWrite() {}

// claimBody is the stored message of a claim: who holds it, which event
// took or released it, and whether it is released. It carries no value.
type claimBody struct {
	Owner    string `json:"owner"`
	Event    string `json:"event"`
	Released bool   `json:"released"`
}

// ClaimState is what a claim subject holds now.
type ClaimState struct {
	// Held is true while an owner holds the claim.
	Held bool
	// Owner is the holder, or the last holder of a released claim.
	Owner string
	// Event is the id of the event that took or released it.
	Event string
	// Sequence is the stream sequence of the claim's last message, 0 if it
	// was never taken.
	Sequence uint64
}

// ClaimState returns the current state of a claim, as the stream leader
// knows it. It
// answers "is this value free?" without deciding anything: only Append
// takes a claim.
func (s *Store) ClaimState(ctx context.Context, tenant, kind, value string) (ClaimState, error) {
	if err := validateClaimKey(tenant, kind, value); err != nil {
		return ClaimState{}, fmt.Errorf("claim state: %w", err)
	}
	return s.claimState(ctx, events.ClaimSubject(tenant, kind, value))
}

func (s *Store) claimState(ctx context.Context, subject string) (ClaimState, error) {
	raw, err := s.leaderLast(ctx, events.StreamEvents, subject)
	if err != nil {
		return ClaimState{}, fmt.Errorf("read claim: %w", err)
	}
	if raw == nil {
		return ClaimState{}, nil
	}
	var body claimBody
	if err := json.Unmarshal(raw.Data, &body); err != nil || body.Owner == "" {
		return ClaimState{}, &DecodeError{Sequence: raw.Sequence, Subject: raw.Subject, Err: fmt.Errorf("claim body: %v", err)}
	}
	return ClaimState{Held: !body.Released, Owner: body.Owner, Event: body.Event, Sequence: raw.Sequence}, nil
}

func (c Claim) validate() error {
	if err := validateClaimKey(c.Tenant, c.Kind, c.Value); err != nil {
		return err
	}
	if !events.ValidToken(c.Owner) {
		return fmt.Errorf("%w: claim owner is not a valid id", ErrInvalidArgument)
	}
	if c.Fresh && c.Release {
		return fmt.Errorf("%w: a release cannot be fresh", ErrInvalidArgument)
	}
	return nil
}

func validateClaimKey(tenant, kind, value string) error {
	switch {
	case !events.ValidToken(tenant):
		return fmt.Errorf("%w: claim tenant is not a valid subject token", ErrInvalidArgument)
	case !events.ValidToken(kind):
		return fmt.Errorf("%w: claim kind is not a valid subject token", ErrInvalidArgument)
	case value == "":
		return fmt.Errorf("%w: claim value is empty", ErrInvalidArgument)
	}
	return nil
}

// preparedClaim is a claim ready to publish: its subject, the sequence it
// expects there, and its message.
type preparedClaim struct {
	claim    Claim
	subject  string
	expected uint64
	msgID    string
	body     []byte
}

// prepareClaim reads the claim's current state and decides whether the
// batch may take or release it.
func (s *Store) prepareClaim(ctx context.Context, c Claim, eventID string) (preparedClaim, error) {
	subject := events.ClaimSubject(c.Tenant, c.Kind, c.Value)
	var st ClaimState
	if !c.Fresh {
		var err error
		if st, err = s.claimState(ctx, subject); err != nil {
			return preparedClaim{}, err
		}
	}
	switch {
	case c.Release && (!st.Held || st.Owner != c.Owner):
		return preparedClaim{}, fmt.Errorf("release %s claim in tenant %s: %w", c.Kind, c.Tenant, ErrClaimNotHeld)
	case !c.Release && st.Held && st.Owner != c.Owner:
		return preparedClaim{}, fmt.Errorf("%s claim in tenant %s: %w", c.Kind, c.Tenant, ErrClaimTaken)
	}
	body, err := json.Marshal(claimBody{Owner: c.Owner, Event: eventID, Released: c.Release})
	if err != nil {
		return preparedClaim{}, err
	}
	// The message id is derived from the event and the subject, so a retry
	// of the batch carries the same id and a rename (release one username,
	// take another, both for one event) carries two different ones.
	sum := sha256.Sum256([]byte(subject))
	return preparedClaim{
		claim:    c,
		subject:  subject,
		expected: st.Sequence,
		msgID:    eventID + ":claim:" + hex.EncodeToString(sum[:12]),
		body:     body,
	}, nil
}
