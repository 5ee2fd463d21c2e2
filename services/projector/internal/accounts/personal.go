package accounts

import (
	"context"
	"encoding/json"
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

// openedName is a registration's username and normalised username, opened,
// and the opened personal members of a user event (members, by JSON name;
// events.ErasedText for those of an erased user).
type openedName struct {
	username, key string
	members       map[string]string
}

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
			if name.members, err = t.openMembers(ctx, env); err != nil {
				if fault.CodeOf(err) == fault.Unavailable {
					return nil, err
				}
				continue
			}
			if names == nil {
				names = map[string]openedName{}
			}
			names[env.ID] = name
		case events.TypeUserProfileUpdated, events.TypeUserEmailVerified:
			members, err := t.openMembers(ctx, env)
			if err != nil {
				if fault.CodeOf(err) == fault.Unavailable {
					return nil, err
				}
				continue // planning says the member does not open
			}
			if names == nil {
				names = map[string]openedName{}
			}
			names[env.ID] = openedName{members: members}
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

// openMembers opens the personal members of a user event.
func (t *Tables) openMembers(ctx context.Context, env events.Envelope) (map[string]string, error) {
	var keys events.PersonalKeys
	if t.keys != nil {
		keys = t.keys
	}
	return events.OpenMembers(ctx, keys, env)
}

// member returns the clear value of the personal member name of a user
// event: a legacy member as it is, an absent one as "", a sealed one as
// openNames opened it. The member of an erased user is "": its row goes
// with the user.erased that follows in the log.
func (p *plan) member(env events.Envelope, name string, v events.Personal) (string, error) {
	if s, ok := v.Legacy(); ok {
		return s, nil
	}
	if v.IsZero() {
		return "", nil
	}
	s, ok := p.names[env.ID].members[name]
	if !ok {
		return "", fmt.Errorf("user %s: the sealed %s does not open", env.AggregateID, name)
	}
	if s == events.ErasedText {
		return "", nil
	}
	return s, nil
}

// clearProfile returns the profile members of a user event opened.
func (p *plan) clearProfile(env events.Envelope, email, name, locale, attributes events.Personal) (e, n, l string, a json.RawMessage, err error) {
	if e, err = p.member(env, events.ProfileEmail, email); err != nil {
		return
	}
	if n, err = p.member(env, events.ProfileName, name); err != nil {
		return
	}
	if l, err = p.member(env, events.ProfileLocale, locale); err != nil {
		return
	}
	var attrs string
	if attrs, err = p.member(env, events.ProfileAttributes, attributes); err != nil {
		return
	}
	if attrs != "" {
		a = json.RawMessage(attrs)
	}
	return
}
