package app

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
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
// An import does the same reads for many users at once (importRun.sealNames).
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
	// Every caller names a user it is creating: the key is made without
	// reading the bucket first.
	dk, err := e.dataKeys.EnsureNew(ctx, tenant, userID)
	return sealedName(tenant, userID, username, key, claim, dk, err)
}

// sealedName is the name sealName makes once it holds the claim value and
// the user's data key, or the error of reading the key (keyErr).
func sealedName(tenant, userID, username, key, claim string, dk *events.DataKey, keyErr error) (domain.Name, error) {
	if errors.Is(keyErr, events.ErrErased) {
		return domain.Name{}, domain.ErrUserExists // the id was registered and erased
	}
	if keyErr != nil {
		return domain.Name{}, keyErr
	}
	name := domain.Name{Username: username, Key: key, Claim: claim}
	var err error
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

// personalCodec keeps users' personal members sealed in the store while
// the domain decides on clear values: a load opens the members of the
// events it folds (events.OpenEnvelope: "[erased]" for an erased user),
// and a commit seals, under the user's data key, every member the domain
// recorded in clear (a legacy events.Personal). Members already sealed
// (the username, by sealName) are stored as they are.
type personalCodec struct {
	keys *keystore.DataKeys
	// known is the user's data key when the caller holds it already (an
	// import made it with the user's name): Seal then reads no bucket.
	known *events.DataKey
}

func (c personalCodec) Open(ctx context.Context, envs []events.Envelope) ([]events.Envelope, error) {
	if c.keys == nil {
		return envs, nil
	}
	var out []events.Envelope
	for i, env := range envs {
		if env.Aggregate != events.AggregateUser || !events.Default.HasPersonal(env.Type) {
			if out != nil {
				out = append(out, env)
			}
			continue
		}
		if out == nil {
			out = append(make([]events.Envelope, 0, len(envs)), envs[:i]...)
		}
		view, err := events.OpenEnvelope(ctx, c.keys, env)
		if err != nil {
			return nil, err
		}
		out = append(out, view)
	}
	if out == nil {
		return envs, nil
	}
	return out, nil
}

// Seal seals, under the user's data key, the members of data recorded in
// clear, with the AAD of their user, type and member
// (events.PersonalAAD); the key is made at the first such member if the
// user has none. Data with none in clear is returned as it is, and no key
// is read. It answers domain.ErrUserDeleted for an erased user.
func (c personalCodec) Seal(ctx context.Context, tenant, aggregate, id, typ string, data any) (any, error) {
	if aggregate != events.AggregateUser || !events.Default.HasPersonal(typ) {
		return data, nil
	}
	dk := c.known
	var sealErr error // what the sealing itself answered, as it is
	out, err := events.SealPersonal(typ, data, func(member, value string) (events.Personal, error) {
		if dk == nil {
			if dk, sealErr = c.dataKey(ctx, tenant, id); sealErr != nil {
				return events.Personal{}, sealErr
			}
		}
		p, err := dk.Seal(value, events.PersonalAAD(tenant, id, typ, member))
		if err != nil {
			sealErr = fault.Wrap(fault.Internal, err, "seal personal members")
		}
		return p, sealErr
	})
	switch {
	case sealErr != nil:
		return nil, sealErr
	case err != nil: // data is not the payload of typ
		return nil, fault.Wrap(fault.Internal, err, "seal personal members")
	}
	return out, nil
}

// dataKey returns the data key of the user id, made now if they have
// none; domain.ErrUserDeleted when it was destroyed.
func (c personalCodec) dataKey(ctx context.Context, tenant, id string) (*events.DataKey, error) {
	if c.keys == nil {
		return nil, errNoDataKeys
	}
	dk, err := c.keys.Ensure(ctx, tenant, id)
	if errors.Is(err, events.ErrErased) {
		return nil, domain.ErrUserDeleted
	}
	return dk, err
}
