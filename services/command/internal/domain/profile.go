package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/mail"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// Bounds of a user's profile (ADR 0013).
const (
	// MaxEmailLen is the longest e-mail address, in bytes (RFC 5321's
	// path limit less its angle brackets).
	MaxEmailLen = 254
	// MaxEmailLocalLen is the longest local part, in bytes (RFC 5321).
	MaxEmailLocalLen = 64
	// MaxNameLen is the longest full name, in characters.
	MaxNameLen = 200
	// MaxLocaleLen is the longest locale tag, in bytes: a language, a
	// script, a region and a variant fit with room to spare.
	MaxLocaleLen = 35
	// MaxAttributesLen bounds a user's attributes, in bytes of canonical
	// JSON: a profile, not a document store.
	MaxAttributesLen = 16 << 10
	// MaxAttributesDepth bounds the nesting of a user's attributes.
	MaxAttributesDepth = 8
	// MaxProfilePatchLen bounds a profile merge patch, in bytes.
	MaxProfilePatchLen = 32 << 10
)

// The errors of profiles.
var (
	// ErrInvalidEmail: the e-mail address is malformed or too long.
	ErrInvalidEmail = fault.New(fault.Invalid, "invalid-email", "e-mail address is invalid")
	// ErrInvalidProfile: a name, locale or profile patch is malformed, or
	// the profile is too large.
	ErrInvalidProfile = fault.New(fault.Invalid, "invalid-profile", "profile is invalid")
	// ErrInvalidAttributes: the attributes are not valid under the
	// tenant's schema (or the tenant has none).
	ErrInvalidAttributes = fault.New(fault.Invalid, "invalid-attributes", "attributes are not valid under the tenant's schema")
	// ErrProfileFieldForbidden: the user changed a member of their own
	// profile that only an administrator may change.
	ErrProfileFieldForbidden = fault.New(fault.Forbidden, "profile-field-forbidden", "only an administrator may change this member of the profile")
)

// Profile is a user's profile, each member valid and normalised (see
// NewProfile); the zero Profile is an empty one.
type Profile struct {
	Email      string
	Name       string
	Locale     string
	Attributes json.RawMessage // canonical JSON object; nil when none
}

// NewProfile validates and normalises the members of a profile, as given
// at registration (empty means absent); the attributes are checked
// against the tenant's policy. See NormalizeEmail, NormalizeLocale.
func NewProfile(email, name, locale string, attributes json.RawMessage, policy events.TenantUserProfile) (Profile, error) {
	var p Profile
	var err error
	if email != "" {
		if p.Email, err = NormalizeEmail(email); err != nil {
			return Profile{}, err
		}
	}
	if name != "" {
		if problem := checkText(name, MaxNameLen, false); problem != "" {
			return Profile{}, detail(ErrInvalidProfile, "name %s", problem)
		}
		p.Name = name
	}
	if locale != "" {
		if p.Locale, err = NormalizeLocale(locale); err != nil {
			return Profile{}, err
		}
	}
	if len(attributes) > 0 && !bytes.Equal(bytes.TrimSpace(attributes), []byte("null")) {
		doc, err := decodeJSON(attributes)
		if err != nil {
			return Profile{}, detail(ErrInvalidAttributes, "attributes are not valid JSON")
		}
		if p.Attributes, err = checkAttributes(doc, policy); err != nil {
			return Profile{}, err
		}
	}
	return p, nil
}

// NormalizeEmail returns the e-mail address s with its domain in lower
// case, the local part as given (only the domain is case-insensitive by
// the standards). s must be a bare address as net/mail reads it (no
// display name, no comment), at most MaxEmailLen bytes with a local part of
// at most MaxEmailLocalLen, and an ASCII domain of dot-separated labels of
// letters, digits and hyphens: internationalised domains must be given in
// their A-label (xn--) form, since the platform does no IDNA mapping.
func NormalizeEmail(s string) (string, error) {
	if s == "" || len(s) > MaxEmailLen {
		return "", detail(ErrInvalidEmail, "e-mail address must be 1 to %d bytes", MaxEmailLen)
	}
	if !utf8.ValidString(s) || strings.ContainsAny(s, "<> \t\r\n") {
		return "", detail(ErrInvalidEmail, "e-mail address must be a bare address, such as alice@example.com")
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", detail(ErrInvalidEmail, "e-mail address must be a bare address, such as alice@example.com")
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if len(local) > MaxEmailLocalLen {
		return "", detail(ErrInvalidEmail, "the local part of an e-mail address is at most %d bytes", MaxEmailLocalLen)
	}
	for _, r := range local {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", detail(ErrInvalidEmail, "e-mail address holds control characters")
		}
	}
	domain = strings.ToLower(domain)
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", detail(ErrInvalidEmail, "the domain of an e-mail address must be dot-separated labels of 1 to 63 letters, digits and hyphens")
		}
		for i := range len(l) {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", detail(ErrInvalidEmail, "the domain of an e-mail address must be ASCII letters, digits and hyphens (an internationalised domain in its xn-- form)")
			}
		}
	}
	return local + "@" + domain, nil
}

// NormalizeLocale returns the canonical form of the BCP 47 language tag s
// ("en-us" gives "en-US"). Tags that are not well formed, longer than
// MaxLocaleLen, or with extensions or private use are refused: a locale
// says a language, maybe a script, region and variant, nothing more.
func NormalizeLocale(s string) (string, error) {
	if s == "" || len(s) > MaxLocaleLen {
		return "", detail(ErrInvalidProfile, "locale must be a BCP 47 language tag of 2 to %d characters", MaxLocaleLen)
	}
	for i := range len(s) {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "", detail(ErrInvalidProfile, "locale must be a BCP 47 language tag, such as en or fr-CA")
		}
	}
	tag, err := language.Parse(s)
	if err != nil {
		return "", detail(ErrInvalidProfile, "locale must be a BCP 47 language tag, such as en or fr-CA")
	}
	if _, conf := tag.Base(); conf != language.Exact || len(tag.Extensions()) > 0 || strings.Contains(strings.ToLower(s), "-x-") {
		return "", detail(ErrInvalidProfile, "locale must name a language, without extensions or private use")
	}
	return tag.String(), nil
}

// checkAttributes checks a user's attributes, decoded with numbers as
// json.Number: a JSON object within MaxAttributesDepth and
// MaxAttributesLen, valid under the tenant's schema. It returns their
// canonical form.
func checkAttributes(doc any, policy events.TenantUserProfile) (json.RawMessage, error) {
	if _, ok := doc.(map[string]any); !ok {
		return nil, detail(ErrInvalidAttributes, "attributes must be a JSON object")
	}
	if depth(doc) > MaxAttributesDepth {
		return nil, detail(ErrInvalidAttributes, "attributes are nested deeper than %d levels", MaxAttributesDepth)
	}
	canon, err := events.Canonical(doc)
	if err != nil {
		return nil, detail(ErrInvalidAttributes, "attributes cannot be encoded")
	}
	if len(canon) > MaxAttributesLen {
		return nil, detail(ErrInvalidAttributes, "attributes are larger than %d bytes", MaxAttributesLen)
	}
	if len(policy.AttributesSchema) == 0 {
		return nil, detail(ErrInvalidAttributes, "the tenant defines no attributes (PUT /t/{tenant}/settings/user-schema)")
	}
	sch, err := compileAttributesSchema(policy.AttributesSchema)
	if err != nil {
		// Checked when the schema was set: a history that holds another
		// is not this command's to fix, but it must not let anything in.
		return nil, detail(ErrInvalidAttributes, "the tenant's attributes schema does not compile")
	}
	if err := validateAttributes(sch, canon); err != nil {
		return nil, err
	}
	return canon, nil
}

// depth returns how deep a decoded JSON value nests (a scalar is 0).
func depth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

// profileJSON returns p as the JSON document a merge patch applies to.
func profileJSON(p Profile) map[string]any {
	m := map[string]any{}
	if p.Email != "" {
		m[events.ProfileEmail] = p.Email
	}
	if p.Name != "" {
		m[events.ProfileName] = p.Name
	}
	if p.Locale != "" {
		m[events.ProfileLocale] = p.Locale
	}
	if len(p.Attributes) > 0 {
		v, _ := decodeJSON(p.Attributes) // canonical JSON, decoded before
		m[events.ProfileAttributes] = v
	}
	return m
}

// UpdateProfile applies patch, a JSON merge patch (RFC 7396) of the
// profile document {"email", "name", "locale", "attributes"}, and records
// user.profile_updated with what changed, or nothing when nothing did.
// The result must be a valid profile (ErrInvalidEmail, ErrInvalidProfile,
// ErrInvalidAttributes: unknown members, wrong types, bounds, the
// tenant's schema). self is true when the user changes their own
// profile: then only the name, the locale and the attributes the tenant's
// policy lists as self-editable may change (ErrProfileFieldForbidden).
// The user must exist (ErrUserNotFound, ErrUserDeleted).
func (u *User) UpdateProfile(patch []byte, policy events.TenantUserProfile, self bool) error {
	if len(patch) > MaxProfilePatchLen {
		return detail(ErrInvalidProfile, "the profile patch is larger than %d bytes", MaxProfilePatchLen)
	}
	p, err := decodeJSON(patch)
	if err != nil {
		return detail(ErrInvalidProfile, "the profile patch is not valid JSON")
	}
	pm, ok := p.(map[string]any)
	if !ok {
		return detail(ErrInvalidProfile, "the profile patch must be a JSON object")
	}
	for _, name := range slices.Sorted(maps.Keys(pm)) {
		switch name {
		case events.ProfileEmail, events.ProfileName, events.ProfileLocale, events.ProfileAttributes:
		default:
			return detail(ErrInvalidProfile, "unknown profile member %q (email, name, locale, attributes)", name)
		}
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	before := profileJSON(u.profile)
	after, _ := mergePatch(before, pm).(map[string]any) // an object patch on an object gives an object
	next, err := u.profileOf(after, policy)
	if err != nil {
		return err
	}
	change := diffProfile(u.profile, next)
	if reflect.DeepEqual(change, events.UserProfileUpdated{}) {
		return nil
	}
	if self {
		if err := selfMayChange(u.profile, next, policy); err != nil {
			return err
		}
	}
	u.record(u.apply, events.TypeUserProfileUpdated, change)
	return nil
}

// profileOf reads a whole profile document. Attributes that did not
// change are not checked against the schema again: a tenant that
// tightens its schema does not lock its users out of changing their
// names.
func (u *User) profileOf(doc map[string]any, policy events.TenantUserProfile) (Profile, error) {
	var p Profile
	str := func(name string) (string, error) {
		v, present := doc[name]
		if !present {
			return "", nil
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return "", detail(ErrInvalidProfile, "%s must be a non-empty string, or null to remove it", name)
		}
		return s, nil
	}
	email, err := str(events.ProfileEmail)
	if err != nil {
		return p, rebrand(ErrInvalidEmail, err)
	}
	name, err := str(events.ProfileName)
	if err != nil {
		return p, err
	}
	locale, err := str(events.ProfileLocale)
	if err != nil {
		return p, err
	}
	if p, err = NewProfile(email, name, locale, nil, policy); err != nil {
		return p, err
	}
	if attrs, present := doc[events.ProfileAttributes]; present {
		canon, err := events.Canonical(attrs)
		if err == nil && bytes.Equal(canon, u.profile.Attributes) {
			p.Attributes = u.profile.Attributes
		} else if p.Attributes, err = checkAttributes(attrs, policy); err != nil {
			return p, err
		}
	}
	return p, nil
}

// diffProfile returns the user.profile_updated that turns a into b.
func diffProfile(a, b Profile) events.UserProfileUpdated {
	var c events.UserProfileUpdated
	field := func(name, old, next string, dst *events.Personal) {
		switch {
		case old == next:
		case next == "":
			c.Removed = append(c.Removed, name)
		default:
			*dst = clearMember(next)
		}
	}
	field(events.ProfileEmail, a.Email, b.Email, &c.Email)
	field(events.ProfileName, a.Name, b.Name, &c.Name)
	field(events.ProfileLocale, a.Locale, b.Locale, &c.Locale)
	switch {
	case bytes.Equal(a.Attributes, b.Attributes):
	case len(b.Attributes) == 0:
		c.Removed = append(c.Removed, events.ProfileAttributes)
	default:
		c.Attributes = clearMember(string(b.Attributes))
	}
	slices.Sort(c.Removed)
	return c
}

// selfMayChange checks that what a user changed in their own profile is
// theirs to change: the name, the locale, and the top-level attributes
// the tenant lists as self-editable. It compares the effect, not the
// patch, so a member set to the value it had is no change.
func selfMayChange(a, b Profile, policy events.TenantUserProfile) error {
	if a.Email != b.Email {
		return detail(ErrProfileFieldForbidden, "only an administrator may change the e-mail address")
	}
	var am, bm map[string]json.RawMessage
	_ = json.Unmarshal(a.Attributes, &am) // canonical objects, or nil
	_ = json.Unmarshal(b.Attributes, &bm)
	for _, k := range slices.Sorted(maps.Keys(am)) {
		if _, kept := bm[k]; !kept && !slices.Contains(policy.SelfEditableAttributes, k) {
			return detail(ErrProfileFieldForbidden, "only an administrator may change the attribute %q", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(bm)) {
		if old, had := am[k]; (!had || !bytes.Equal(old, bm[k])) && !slices.Contains(policy.SelfEditableAttributes, k) {
			return detail(ErrProfileFieldForbidden, "only an administrator may change the attribute %q", k)
		}
	}
	return nil
}

// Profile returns the user's profile.
func (u *User) Profile() Profile {
	p := u.profile
	p.Attributes = slices.Clone(p.Attributes)
	return p
}

// EmailVerified reports whether the user proved they receive mail at
// their current address.
func (u *User) EmailVerified() bool { return u.emailVerified }

// applyProfile folds a user.profile_updated into the profile.
func (u *User) applyProfile(e events.UserProfileUpdated) {
	if email := clearOf(e.Email); email != "" && email != u.profile.Email {
		u.profile.Email, u.emailVerified = email, false
	}
	if name := clearOf(e.Name); name != "" {
		u.profile.Name = name
	}
	if locale := clearOf(e.Locale); locale != "" {
		u.profile.Locale = locale
	}
	if attrs := attributesOf(e.Attributes); len(attrs) > 0 {
		u.profile.Attributes = attrs
	}
	for _, name := range e.Removed {
		switch name {
		case events.ProfileEmail:
			u.profile.Email, u.emailVerified = "", false
		case events.ProfileName:
			u.profile.Name = ""
		case events.ProfileLocale:
			u.profile.Locale = ""
		case events.ProfileAttributes:
			u.profile.Attributes = nil
		}
	}
}

// String is for test failures.
func (p Profile) String() string {
	return fmt.Sprintf("{email %q name %q locale %q attributes %s}", p.Email, p.Name, p.Locale, p.Attributes)
}

// clearMember is a profile value as the domain records it: a clear
// (legacy) personal member, sealed by the application before it is
// stored; absent when empty.
func clearMember(v string) events.Personal {
	if v == "" {
		return events.Personal{}
	}
	return events.LegacyPersonal(v)
}

// clearOf is the clear value of a personal member the application opened
// (or of one written before sealing); "" for an absent or still sealed
// one, which the domain cannot read.
func clearOf(p events.Personal) string {
	v, _ := p.Legacy()
	return v
}

// attributesOf is the attributes object of a clear attributes member.
func attributesOf(p events.Personal) json.RawMessage {
	v := clearOf(p)
	if v == "" {
		return nil
	}
	return json.RawMessage(v)
}
