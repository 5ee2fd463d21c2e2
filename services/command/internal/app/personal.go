package app

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// errNoDataKeys is what a command that records personal members answers
// when the application was built without WithDataKeys.
var errNoDataKeys = fault.New(fault.Internal, "no-data-keys", "internal error")

// sealName seals a new user's username and its normalised form under the
// user's data key (made now if the user has none) and computes the keyed
// value of its uniqueness claim (ADR 0015). The name's legacy claim (the
// plain hash of users registered before usernames were sealed) must be
// free: nothing takes legacy claims any more, so reading it cannot race.
func (e *engine) sealName(ctx context.Context, tenant, userID, username, key string) (domain.Name, error) {
	if e.dataKeys == nil {
		return domain.Name{}, errNoDataKeys
	}
	legacy, err := e.store.ClaimState(ctx, tenant, events.ClaimKindUsername, key)
	if err != nil {
		return domain.Name{}, err
	}
	if legacy.Held {
		return domain.Name{}, ErrUsernameTaken
	}
	claim, err := e.dataKeys.UsernameClaim(ctx, tenant, key)
	if err != nil {
		return domain.Name{}, err
	}
	dk, err := e.dataKeys.Ensure(ctx, tenant, userID)
	if errors.Is(err, events.ErrErased) {
		return domain.Name{}, domain.ErrUserExists // the id was registered and erased
	}
	if err != nil {
		return domain.Name{}, err
	}
	name := domain.Name{Username: username, Key: key, Claim: claim}
	if name.Sealed, err = dk.Seal(username, events.PersonalAAD(tenant, userID, events.TypeUserRegistered, "username")); err != nil {
		return domain.Name{}, fault.Wrap(fault.Internal, err, "seal username")
	}
	if name.SealedKey, err = dk.Seal(key, events.PersonalAAD(tenant, userID, events.TypeUserRegistered, "username_key")); err != nil {
		return domain.Name{}, fault.Wrap(fault.Internal, err, "seal username")
	}
	return name, nil
}

// usernameClaim is the claim a user's username holds, as a write of the
// batch that takes (release false) or releases it.
func usernameClaim(tenant string, usr *domain.User, release bool) eventstore.Claim {
	kind, value := usr.UsernameClaim()
	return eventstore.Claim{Tenant: tenant, Kind: kind, Value: value, Owner: usr.ID(), Release: release}
}

// openUsername opens a user's username with their data key, for the rare
// command that shows it (the label of a TOTP enrolment).
func (e *engine) openUsername(ctx context.Context, tenant string, usr *domain.User) (string, error) {
	p := usr.Username()
	if v, ok := p.Legacy(); ok {
		return v, nil
	}
	if e.dataKeys == nil {
		return "", errNoDataKeys
	}
	env := events.Envelope{Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: usr.ID(), Type: events.TypeUserRegistered}
	return events.OpenPersonal(ctx, e.dataKeys, env, "username", p)
}

// withFresh marks a claim as one the caller expects never to have been
// taken (eventstore.Claim.Fresh).
func withFresh(c eventstore.Claim) eventstore.Claim {
	c.Fresh = true
	return c
}
