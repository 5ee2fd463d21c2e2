package accounts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// The users' profiles (migration 0008): the profile column holds the
// document {"email", "name", "locale", "attributes"} with the members the
// user has, email its address beside it for the search index, and
// email_verified whether the user proved that address.
//
// A run inserting a user folds its profile events into the row; a run
// changing an existing user keeps their net effect as a patch the update
// statement applies in SQL: profile = (profile - removed) || set, then
// email_verified from the address verified last, if any, or false when the
// address changed. Applying such a patch twice leaves the row as once, as
// redelivery needs.

// profileDelta is the net effect of a run's profile events on a user the
// run did not insert.
type profileDelta struct {
	set     map[string]json.RawMessage // members set, with their new values
	removed []string                   // members removed (none of set's), sorted
	// emailChanged says the address changed (set or removed) after the
	// last verification of the run, if any.
	emailChanged bool
	// verified is the address the run's last user.email_verified named,
	// when no change of address followed it.
	verified *string
}

// profileMembers returns the members a user.registered or
// user.profile_updated sets, as JSON values.
func profileMembers(email, name, locale string, attributes json.RawMessage) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	// An array, not a map literal: a replay calls this for every
	// registration.
	for _, member := range [...]struct{ name, value string }{
		{events.ProfileEmail, email}, {events.ProfileName, name}, {events.ProfileLocale, locale},
	} {
		if member.value != "" {
			b, err := json.Marshal(member.value)
			if err != nil {
				return nil, err
			}
			m[member.name] = b
		}
	}
	if len(attributes) > 0 {
		// What decoding it into a map of members would accept, without
		// building the map: any valid JSON object.
		if b := bytes.TrimLeft(attributes, " \t\r\n"); len(b) == 0 || b[0] != '{' || !json.Valid(attributes) {
			return nil, fmt.Errorf("profile attributes are not a JSON object")
		}
		m[events.ProfileAttributes] = attributes
	}
	return m, nil
}

// profileJSON returns a profile document's JSON, "{}" when empty.
func profileJSON(m map[string]json.RawMessage) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := events.Canonical(m)
	if err != nil {
		return "", fmt.Errorf("profile: %w", err)
	}
	return string(b), nil
}

// userProfile records a user.profile_updated (e) or a user.email_verified
// (verified non-nil) of an existing user.
func (p *plan) userProfile(env events.Envelope, version int64, at time.Time, e events.UserProfileUpdated, verified *string) error {
	for _, name := range e.Removed {
		switch name {
		case events.ProfileEmail, events.ProfileName, events.ProfileLocale, events.ProfileAttributes:
		default:
			return fmt.Errorf("profile member %q is unknown", name)
		}
	}
	email, name, locale, attrs, err := p.clearProfile(env, e.Email, e.Name, e.Locale, e.Attributes)
	if err != nil {
		return err
	}
	set, err := profileMembers(email, name, locale, attrs)
	if err != nil {
		return err
	}
	if err := p.userChange(env, version, at, nil); err != nil {
		return err
	}
	emailChanged := !e.Email.IsZero() || slices.Contains(e.Removed, events.ProfileEmail)
	s := p.user(userKey{env.Tenant, env.AggregateID})
	if r := s.row; r != nil {
		for _, name := range e.Removed {
			delete(r.profile, name)
		}
		maps.Copy(r.profile, set)
		switch {
		case verified != nil:
			var email string
			_ = json.Unmarshal(r.profile[events.ProfileEmail], &email)
			r.emailVerified = email != "" && email == *verified
		case emailChanged:
			r.emailVerified = false
		}
		return nil
	}
	d := s.patch.profile
	if d == nil {
		d = &profileDelta{set: map[string]json.RawMessage{}}
		s.patch.profile = d
	}
	for _, name := range e.Removed {
		delete(d.set, name)
		if !slices.Contains(d.removed, name) {
			d.removed = append(d.removed, name)
		}
	}
	for name, v := range set {
		d.set[name] = v
		d.removed = slices.DeleteFunc(d.removed, func(r string) bool { return r == name })
	}
	slices.Sort(d.removed)
	switch {
	case verified != nil:
		v := *verified
		d.verified, d.emailChanged = &v, false
	case emailChanged:
		d.verified, d.emailChanged = nil, true
	}
	return nil
}

// profileCols are the profile columns of the patches of an update
// statement: NULL where a patch changes no profile.
type profileCols struct {
	set, removed, verified []*string
	emailChanged           []bool
}

func (c *profileCols) add(d *profileDelta) error {
	if d == nil {
		c.set, c.removed, c.verified = append(c.set, nil), append(c.removed, nil), append(c.verified, nil)
		c.emailChanged = append(c.emailChanged, false)
		return nil
	}
	set, err := profileJSON(d.set)
	if err != nil {
		return err
	}
	rm, err := json.Marshal(append([]string{}, d.removed...))
	if err != nil {
		return err
	}
	removed := string(rm)
	c.set, c.removed, c.verified = append(c.set, &set), append(c.removed, &removed), append(c.verified, d.verified)
	c.emailChanged = append(c.emailChanged, d.emailChanged)
	return nil
}
