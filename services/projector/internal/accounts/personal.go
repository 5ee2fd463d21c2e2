package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
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

// manyKeys is a key store that reads many users' keys in one request
// (keystore.DataKeys.DataKeysOf): openNames then asks for all the keys of
// a batch at once rather than one get per user (ADR 0021).
type manyKeys interface {
	DataKeysOf(ctx context.Context, users []keystore.UserRef) (map[keystore.UserRef]keystore.KeyRead, error)
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

// openNames opens the personal members of the user events of evs (their
// payloads decoded, by index) and destroys the data keys of the users that
// evs erase. A member that does not open is left out: planning that event
// fails, and it is quarantined. Only an unavailable key store is an
// error: the batch is tried again.
//
// Each user's key is read from the store at most once per call (a replay
// batch), not once per member: a registration has up to six. Reading it
// once is no staler than reading it six times within the batch, and the
// key is not kept past the call, so a key the command service destroys is
// never used by a later batch. Within the call a user.erased wins over the
// key read before it: the events after it find the key destroyed.
func (t *Tables) openNames(ctx context.Context, evs []eventstore.Stored, payloads []decoded) (map[string]openedName, error) {
	var names map[string]openedName
	keys := batchKeys{keys: t.keys}
	if err := keys.prefetch(ctx, evs, payloads); err != nil {
		return nil, err
	}
	for i := range evs {
		env := evs[i].Envelope
		switch env.Type {
		case events.TypeUserErased:
			if err := keys.destroy(ctx, env.Tenant, env.AggregateID); err != nil {
				if fault.CodeOf(err) == fault.Invalid {
					continue // not a valid id: planning refuses the event
				}
				return nil, fmt.Errorf("destroy data key of %s/%s: %w", env.Tenant, env.AggregateID, err)
			}
		case events.TypeUserRegistered, events.TypeUserProfileUpdated, events.TypeUserEmailVerified:
			if payloads[i].err != nil {
				continue // planning says why
			}
			var (
				name   openedName
				err    error
				sealed bool // a username to open: plan.name takes clear ones from the payload
			)
			switch e := payloads[i].payload.(type) {
			case events.UserRegistered:
				_, clear1 := e.Username.Legacy()
				_, clear2 := e.UsernameKey.Legacy()
				if sealed = !clear1 || !clear2; sealed {
					name, err = keys.openName(ctx, env, e)
				}
				if err == nil {
					// The username is name's: the members are the profile's.
					name.members, err = keys.openMembers(ctx, env, []namedPersonal{
						{events.ProfileEmail, e.Email}, {events.ProfileName, e.Name},
						{events.ProfileLocale, e.Locale}, {events.ProfileAttributes, e.Attributes},
					})
				}
			case events.UserProfileUpdated:
				name.members, err = keys.openMembers(ctx, env, []namedPersonal{
					{events.ProfileEmail, e.Email}, {events.ProfileName, e.Name},
					{events.ProfileLocale, e.Locale}, {events.ProfileAttributes, e.Attributes},
				})
			case events.UserEmailVerified:
				name.members, err = keys.openMembers(ctx, env, []namedPersonal{{events.ProfileEmail, e.Email}})
			default:
				continue
			}
			if err != nil {
				if fault.CodeOf(err) == fault.Unavailable {
					return nil, err
				}
				continue // planning says the member does not open
			}
			if !sealed && name.members == nil {
				continue // nothing sealed: planning reads the clear members from the payload
			}
			if names == nil {
				names = map[string]openedName{}
			}
			names[env.ID] = name
		}
	}
	return names, nil
}

// namedPersonal is a personal member of an event's payload and its JSON
// name.
type namedPersonal struct {
	name  string
	value events.Personal
}

// batchKeys are the data keys of one call of openNames: each user's key,
// or its absence, as read once from the store, and destroyed by the
// user.erased events met so far.
type batchKeys struct {
	keys PersonalKeys // nil: no key store, nothing sealed opens
	read map[userKey]keyRead
}

// keyRead is what the store said of one user's key.
type keyRead struct {
	key *events.DataKey
	err error
}

// DataKey implements events.PersonalKeys. Only the store's answers about
// the key itself are kept (the key, erased, none): a store that failed is
// asked again.
func (b *batchKeys) DataKey(ctx context.Context, tenant, userID string) (*events.DataKey, error) {
	k := userKey{tenant, userID}
	if r, ok := b.read[k]; ok {
		return r.key, r.err
	}
	key, err := b.keys.DataKey(ctx, tenant, userID)
	if err == nil || errors.Is(err, events.ErrErased) || errors.Is(err, events.ErrNoDataKey) {
		if b.read == nil {
			b.read = map[userKey]keyRead{}
		}
		b.read[k] = keyRead{key, err}
	}
	return key, err
}

// prefetch reads at once, when the store can, the keys of the users whose
// events in evs have sealed members. It is the read DataKey would make at
// the user's first sealed member, made a little earlier in the same batch:
// a user.erased of the batch still wins (destroy replaces the answer), and
// nothing is kept past the call.
func (b *batchKeys) prefetch(ctx context.Context, evs []eventstore.Stored, payloads []decoded) error {
	many, ok := b.keys.(manyKeys)
	if !ok {
		return nil
	}
	var users []keystore.UserRef
	seen := map[keystore.UserRef]bool{}
	for i := range evs {
		env := evs[i].Envelope
		if payloads[i].err != nil || !hasSealed(payloads[i].payload) {
			continue
		}
		u := keystore.UserRef{Tenant: env.Tenant, UserID: env.AggregateID}
		if !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	if len(users) < 2 {
		return nil // one get, as DataKey makes it
	}
	read, err := many.DataKeysOf(ctx, users)
	if err != nil {
		if fault.CodeOf(err) == fault.Unavailable {
			return err
		}
		return nil // the keys are read one at a time
	}
	if b.read == nil {
		b.read = make(map[userKey]keyRead, len(read))
	}
	for u, r := range read {
		if r.Err == nil || errors.Is(r.Err, events.ErrErased) || errors.Is(r.Err, events.ErrNoDataKey) {
			b.read[userKey{u.Tenant, u.UserID}] = keyRead{r.Key, r.Err}
		}
	}
	return nil
}

// hasSealed reports whether a decoded user event has a sealed personal
// member, whose opening needs the user's key.
func hasSealed(payload any) bool {
	var members []events.Personal
	switch e := payload.(type) {
	case events.UserRegistered:
		members = []events.Personal{e.Username, e.UsernameKey, e.Email, e.Name, e.Locale, e.Attributes}
	case events.UserProfileUpdated:
		members = []events.Personal{e.Email, e.Name, e.Locale, e.Attributes}
	case events.UserEmailVerified:
		members = []events.Personal{e.Email}
	}
	for _, m := range members {
		if _, isClear := m.Legacy(); !isClear && !m.IsZero() {
			return true
		}
	}
	return false
}

// destroy destroys a user's key in the store and for the rest of the
// call.
func (b *batchKeys) destroy(ctx context.Context, tenant, userID string) error {
	if b.keys == nil {
		return nil
	}
	if err := b.keys.Destroy(ctx, tenant, userID); err != nil && !errors.Is(err, events.ErrNoDataKey) {
		return err
	}
	if b.read == nil {
		b.read = map[userKey]keyRead{}
	}
	b.read[userKey{tenant, userID}] = keyRead{err: fmt.Errorf("data key of %s/%s: %w", tenant, userID, events.ErrErased)}
	return nil
}

func (b *batchKeys) source() events.PersonalKeys {
	if b.keys == nil {
		return nil
	}
	return b
}

// openName opens a registration's username and normalised username.
func (b *batchKeys) openName(ctx context.Context, env events.Envelope, e events.UserRegistered) (openedName, error) {
	username, err := events.OpenPersonal(ctx, b.source(), env, "username", e.Username)
	if errors.Is(err, events.ErrErased) {
		return openedName{username: events.ErasedText, key: erasedKey(env.AggregateID)}, nil
	}
	if err != nil {
		return openedName{}, err
	}
	key, err := events.OpenPersonal(ctx, b.source(), env, "username_key", e.UsernameKey)
	if err != nil {
		return openedName{}, err
	}
	return openedName{username: username, key: key}, nil
}

// openMembers opens the sealed members of a user event, by JSON name
// (events.ErasedText for those of an erased user); legacy and absent
// members are left out, since plan.member reads them from the payload.
func (b *batchKeys) openMembers(ctx context.Context, env events.Envelope, members []namedPersonal) (map[string]string, error) {
	var out map[string]string
	for _, m := range members {
		if _, ok := m.value.Legacy(); ok || m.value.IsZero() {
			continue
		}
		v, err := events.ShowPersonal(ctx, b.source(), env, m.name, m.value)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make(map[string]string, len(members))
		}
		out[m.name] = v
	}
	return out, nil
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
