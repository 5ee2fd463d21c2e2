package authclient

import (
	"encoding/json"
	"slices"

	"github.com/authstream/authstream/libs/events"
)

// Profile is a user's profile as the event log says it: what a
// subscriber that mirrors users keeps beside the username. The zero
// Profile is an empty one. Fold the user's events into it, in order, with
// Apply.
type Profile struct {
	Email         string          // "" when none; the domain in lower case
	EmailVerified bool            // the user proved Email
	Name          string          // "" when none
	Locale        string          // a BCP 47 tag, "" when none
	Attributes    json.RawMessage // the tenant's own members, a JSON object; nil when none
}

// Apply folds the payload of one of the user's events into p, its
// personal members opened (the consumer's WithPersonalKeys; a member
// still sealed, or erased, counts as absent) and reports
// whether it changed the profile: user.registered sets it,
// user.profile_updated sets the members it carries and clears those it
// names removed (a changed or removed address is no longer verified),
// user.email_verified verifies the address it names if it is still the
// user's, and user.deleted empties it. Other payloads change nothing.
func (p *Profile) Apply(payload any) bool {
	before := p.clone()
	switch e := payload.(type) {
	case events.UserRegistered:
		*p = Profile{Email: clearOf(e.Email), Name: clearOf(e.Name), Locale: clearOf(e.Locale), Attributes: attributesOf(e.Attributes)}
	case events.UserProfileUpdated:
		if email := clearOf(e.Email); email != "" && email != p.Email {
			p.Email, p.EmailVerified = email, false
		}
		if name := clearOf(e.Name); name != "" {
			p.Name = name
		}
		if locale := clearOf(e.Locale); locale != "" {
			p.Locale = locale
		}
		if attrs := attributesOf(e.Attributes); len(attrs) > 0 {
			p.Attributes = attrs
		}
		for _, m := range e.Removed {
			switch m {
			case events.ProfileEmail:
				p.Email, p.EmailVerified = "", false
			case events.ProfileName:
				p.Name = ""
			case events.ProfileLocale:
				p.Locale = ""
			case events.ProfileAttributes:
				p.Attributes = nil
			}
		}
	case events.UserEmailVerified:
		if email := clearOf(e.Email); email != "" && email == p.Email {
			p.EmailVerified = true
		}
	case events.UserDeleted, events.UserErased:
		*p = Profile{}
	default:
		return false
	}
	return !before.equal(*p)
}

func (p Profile) clone() Profile {
	p.Attributes = slices.Clone(p.Attributes)
	return p
}

func (p Profile) equal(q Profile) bool {
	return p.Email == q.Email && p.EmailVerified == q.EmailVerified && p.Name == q.Name && p.Locale == q.Locale &&
		string(p.Attributes) == string(q.Attributes)
}

// clearOf is the clear value of an opened personal member; "" for an
// absent one, one still sealed, or one of an erased user.
func clearOf(m events.Personal) string {
	v, _ := m.Legacy()
	if v == events.ErasedText {
		return ""
	}
	return v
}

// attributesOf is the attributes object of an opened attributes member.
func attributesOf(m events.Personal) json.RawMessage {
	v := clearOf(m)
	if v == "" {
		return nil
	}
	return json.RawMessage(v)
}
