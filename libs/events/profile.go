package events

import (
	"encoding/json"
	"slices"
)

// Profile is a user's profile as the event log says it: what a
// subscriber that mirrors users keeps beside the username. The zero
// Profile is an empty one. Fold the user's events into it, in order, with
// Apply.
type Profile struct {
	Email         string          `json:"email,omitempty"`          // "" when none; the domain in lower case
	EmailVerified bool            `json:"email_verified,omitempty"` // the user proved Email
	Name          string          `json:"name,omitempty"`           // "" when none
	Locale        string          `json:"locale,omitempty"`         // a BCP 47 tag, "" when none
	Attributes    json.RawMessage `json:"attributes,omitempty"`     // the tenant's own members, a JSON object; nil when none
}

// Apply folds the payload of one of the user's events into p, its
// personal members opened (OpenEnvelope, or an SDK consumer's
// WithPersonalKeys; a member still sealed, or erased, counts as absent) and reports
// whether it changed the profile: user.registered sets it,
// user.profile_updated sets the members it carries and clears those it
// names removed (a changed or removed address is no longer verified),
// user.email_verified verifies the address it names if it is still the
// user's, and user.deleted empties it. Other payloads change nothing.
func (p *Profile) Apply(payload any) bool {
	before := p.clone()
	switch e := payload.(type) {
	case UserRegistered:
		*p = Profile{Email: profileClear(e.Email), Name: profileClear(e.Name), Locale: profileClear(e.Locale), Attributes: profileAttributes(e.Attributes)}
	case UserProfileUpdated:
		if email := profileClear(e.Email); email != "" && email != p.Email {
			p.Email, p.EmailVerified = email, false
		}
		if name := profileClear(e.Name); name != "" {
			p.Name = name
		}
		if locale := profileClear(e.Locale); locale != "" {
			p.Locale = locale
		}
		if attrs := profileAttributes(e.Attributes); len(attrs) > 0 {
			p.Attributes = attrs
		}
		for _, m := range e.Removed {
			switch m {
			case ProfileEmail:
				p.Email, p.EmailVerified = "", false
			case ProfileName:
				p.Name = ""
			case ProfileLocale:
				p.Locale = ""
			case ProfileAttributes:
				p.Attributes = nil
			}
		}
	case UserEmailVerified:
		if email := profileClear(e.Email); email != "" && email == p.Email {
			p.EmailVerified = true
		}
	case UserDeleted, UserErased:
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

// profileClear is the clear value of an opened personal member; "" for an
// absent one, one still sealed, or one of an erased user.
func profileClear(m Personal) string {
	v, _ := m.Legacy()
	if v == ErasedText {
		return ""
	}
	return v
}

// profileAttributes is the attributes object of an opened attributes member.
func profileAttributes(m Personal) json.RawMessage {
	v := profileClear(m)
	if v == "" {
		return nil
	}
	return json.RawMessage(v)
}
