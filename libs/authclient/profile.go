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

// Apply folds the payload of one of the user's events into p and reports
// whether it changed the profile: user.registered sets it,
// user.profile_updated sets the members it carries and clears those it
// names removed (a changed or removed address is no longer verified),
// user.email_verified verifies the address it names if it is still the
// user's, and user.deleted empties it. Other payloads change nothing.
func (p *Profile) Apply(payload any) bool {
	before := p.clone()
	switch e := payload.(type) {
	case events.UserRegistered:
		*p = Profile{Email: e.Email, Name: e.Name, Locale: e.Locale, Attributes: slices.Clone(e.Attributes)}
	case events.UserProfileUpdated:
		if e.Email != "" && e.Email != p.Email {
			p.Email, p.EmailVerified = e.Email, false
		}
		if e.Name != "" {
			p.Name = e.Name
		}
		if e.Locale != "" {
			p.Locale = e.Locale
		}
		if len(e.Attributes) > 0 {
			p.Attributes = slices.Clone(e.Attributes)
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
		if e.Email != "" && e.Email == p.Email {
			p.EmailVerified = true
		}
	case events.UserDeleted:
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
