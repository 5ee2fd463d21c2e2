package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
)

// PersonalKeys are the users' data keys as the projection needs them: to
// open the sealed usernames it writes into the users table, and to destroy
// a key again when it applies user.erased, so that an erasure whose key
// survived (a crash between the append and the destruction, a bucket
// restored from an older backup) is settled by the log (ADR 0015).
type PersonalKeys interface {
	events.PersonalKeys
	Destroy(ctx context.Context, tenant, userID string) error
}

// WithPersonalKeys returns the tables opening sealed usernames with keys.
// Without keys, an event whose username is sealed cannot be applied.
func (t *Tables) WithPersonalKeys(keys PersonalKeys) *Tables {
	c := *t
	c.keys = keys
	return &c
}

// openedName is a registration's username and normalised username, opened.
type openedName struct{ username, key string }

// erasedKey is the stand-in username key of a user whose data key was
// destroyed, met when the log is replayed: unique per user, so rows of
// several erased users do not collide, and short-lived, since the
// user.erased that follows in the log deletes the row.
func erasedKey(userID string) string { return events.ErasedText + "/" + userID }

// openNames opens the usernames of the user.registered events of evs and
// destroys the data keys of the users that evs erase. A username that does
// not open is left out: planning that event fails, and it is quarantined.
// Only an unavailable key store is an error: the batch is tried again.
func (t *Tables) openNames(ctx context.Context, evs []eventstore.Stored) (map[string]openedName, error) {
	var names map[string]openedName
	for i := range evs {
		env := evs[i].Envelope
		switch env.Type {
		case events.TypeUserErased:
			if t.keys != nil {
				if err := t.keys.Destroy(ctx, env.Tenant, env.AggregateID); err != nil && !errors.Is(err, events.ErrNoDataKey) {
					if fault.CodeOf(err) == fault.Invalid {
						continue // not a valid id: planning refuses the event
					}
					return nil, fmt.Errorf("destroy data key of %s/%s: %w", env.Tenant, env.AggregateID, err)
				}
			}
		case events.TypeUserRegistered:
			payload, err := events.Decode(env)
			if err != nil {
				continue // planning says why
			}
			e := payload.(events.UserRegistered)
			name, err := t.open(ctx, env, e)
			if err != nil {
				if fault.CodeOf(err) == fault.Unavailable {
					return nil, err
				}
				continue
			}
			if names == nil {
				names = map[string]openedName{}
			}
			names[env.ID] = name
		}
	}
	return names, nil
}

func (t *Tables) open(ctx context.Context, env events.Envelope, e events.UserRegistered) (openedName, error) {
	var keys events.PersonalKeys
	if t.keys != nil {
		keys = t.keys
	}
	username, err := events.OpenPersonal(ctx, keys, env, "username", e.Username)
	if errors.Is(err, events.ErrErased) {
		return openedName{username: events.ErasedText, key: erasedKey(env.AggregateID)}, nil
	}
	if err != nil {
		return openedName{}, err
	}
	key, err := events.OpenPersonal(ctx, keys, env, "username_key", e.UsernameKey)
	if err != nil {
		return openedName{}, err
	}
	return openedName{username: username, key: key}, nil
}

// name returns the opened username of a registration event.
func (p *plan) name(env events.Envelope, e events.UserRegistered) (openedName, error) {
	if n, ok := p.names[env.ID]; ok {
		return n, nil
	}
	username, ok1 := e.Username.Legacy()
	key, ok2 := e.UsernameKey.Legacy()
	if ok1 && ok2 {
		return openedName{username: username, key: key}, nil
	}
	return openedName{}, fmt.Errorf("user %s: the sealed username does not open", env.AggregateID)
}
