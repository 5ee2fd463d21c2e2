package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// Bounds of the tenant settings document (events.TenantSettings).
const (
	// MaxDisplayNameLen is the longest display name, in characters.
	MaxDisplayNameLen = 100
	// MaxAttemptsPerMinute is the highest rate limit a tenant may set;
	// the lowest is 1.
	MaxAttemptsPerMinute = 100000
	// MaxMFAPermissions bounds the permissions of an MFA policy.
	MaxMFAPermissions = 64
)

// ChangeSettings applies patch, a JSON merge patch (RFC 7396), to the
// tenant's settings document and records tenant.settings_changed with the
// whole resulting document, or nothing when the document stays as it is.
// The patch must be a JSON object; the result must be a valid document:
// only known members, each of its type and within its bounds
// (ErrInvalidSettings, naming the member). The tenant must exist and be
// active (ErrTenantNotFound, ErrTenantDisabled). When the current document
// holds members this build does not know, written by a newer version of
// the service, nothing is changed (ErrSettingsFromNewerVersion): writing
// the whole document would drop them.
func (t *Tenant) ChangeSettings(patch []byte) error {
	p, err := decodeJSON(patch)
	if err != nil {
		return detail(ErrInvalidSettings, "the settings patch is not valid JSON")
	}
	if _, ok := p.(map[string]any); !ok {
		return detail(ErrInvalidSettings, "the settings patch must be a JSON object")
	}
	return t.changeSettingsFrom(settingsJSON(t.settings), p)
}

// changeSettingsFrom is ChangeSettings applying patch p to current, the
// tenant's document as a JSON value.
func (t *Tenant) changeSettingsFrom(current, p any) error {
	if err := t.RequireActive(); err != nil {
		return err
	}
	if unknown := t.settings.Unknown(); len(unknown) > 0 {
		return detail(ErrSettingsFromNewerVersion, "the settings hold %q, which this version of the service does not know; retry once every instance is upgraded", unknown)
	}
	next, err := settingsOf(mergePatch(current, p))
	if err != nil {
		return err
	}
	if sameSettings(next, t.settings) {
		return nil
	}
	t.record(t.apply, events.TypeTenantSettingsChanged, events.TenantSettingsChanged{Settings: next})
	return nil
}

// Settings returns the tenant's settings document: the empty document
// until its settings are first changed.
func (t *Tenant) Settings() events.TenantSettings { return cloneSettings(t.settings) }

// settingsOf reads a settings document from its JSON value (decoded with
// numbers as json.Number), strictly: an unknown member, a member of the
// wrong type or out of bounds is ErrInvalidSettings. An empty rate_limits
// object is the same as none.
func settingsOf(doc any) (events.TenantSettings, error) {
	var s events.TenantSettings
	m, ok := doc.(map[string]any)
	if !ok {
		return s, detail(ErrInvalidSettings, "the settings must be a JSON object")
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		switch v := m[name]; name {
		case "display_name":
			str, ok := v.(string)
			if !ok || str == "" {
				return s, detail(ErrInvalidSettings, "display_name must be a string of 1 to %d characters", MaxDisplayNameLen)
			}
			if problem := checkText(str, MaxDisplayNameLen, false); problem != "" {
				return s, detail(ErrInvalidSettings, "display_name %s", problem)
			}
			s.DisplayName = str
		case "password_grant":
			b, ok := v.(bool)
			if !ok {
				return s, detail(ErrInvalidSettings, "password_grant must be true or false")
			}
			s.PasswordGrant = &b
		case "rate_limits":
			limits, err := rateLimitsOf(v)
			if err != nil {
				return s, err
			}
			if limits != (events.TenantRateLimits{}) {
				s.RateLimits = &limits
			}
		case "mfa":
			mfa, err := mfaOf(v)
			if err != nil {
				return s, err
			}
			s.MFA = &mfa
		case "user_profile":
			up, err := userProfileOf(v)
			if err != nil {
				return s, err
			}
			if up.AttributesSchema != nil || up.SelfEditableAttributes != nil {
				s.UserProfile = &up
			}
		case "passwordless":
			b, ok := v.(bool)
			if !ok {
				return s, detail(ErrInvalidSettings, "passwordless must be true or false")
			}
			s.Passwordless = &b
		case "self_signup":
			b, ok := v.(bool)
			if !ok {
				return s, detail(ErrInvalidSettings, "self_signup must be true or false")
			}
			s.SelfSignup = &b
		default:
			return s, detail(ErrInvalidSettings, "unknown settings member %q", name)
		}
	}
	return s, nil
}

// mfaOf reads the mfa member of a settings document: a policy, and the
// permissions of the policy "permissions" (1 to MaxMFAPermissions valid
// permission strings, canonical and sorted), none with another policy.
func mfaOf(v any) (events.TenantMFA, error) {
	var p events.TenantMFA
	m, ok := v.(map[string]any)
	if !ok {
		return p, detail(ErrInvalidSettings, "mfa must be an object")
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		switch name {
		case "policy":
			str, _ := m[name].(string)
			switch str {
			case events.MFAOff, events.MFAOptional, events.MFARequired, events.MFARequiredForPermissions:
				p.Policy = str
			default:
				return p, detail(ErrInvalidSettings, "mfa.policy must be off, optional, required or permissions")
			}
		case "permissions":
			list, ok := m[name].([]any)
			if !ok || len(list) == 0 || len(list) > MaxMFAPermissions {
				return p, detail(ErrInvalidSettings, "mfa.permissions must be a list of 1 to %d permissions", MaxMFAPermissions)
			}
			perms := make([]string, 0, len(list))
			for _, x := range list {
				str, _ := x.(string)
				perms = append(perms, str)
			}
			set, err := authz.ParseSet(perms)
			if err != nil {
				return p, detail(ErrInvalidSettings, "mfa.permissions: %s", fault.MessageOf(err))
			}
			p.Permissions = set.Strings()
		default:
			return p, detail(ErrInvalidSettings, "unknown settings member %q", "mfa."+name)
		}
	}
	switch {
	case p.Policy == "":
		return p, detail(ErrInvalidSettings, "mfa.policy is required")
	case p.Policy == events.MFARequiredForPermissions && len(p.Permissions) == 0:
		return p, detail(ErrInvalidSettings, "mfa.permissions is required with the policy permissions")
	case p.Policy != events.MFARequiredForPermissions && len(p.Permissions) > 0:
		return p, detail(ErrInvalidSettings, "mfa.permissions goes with the policy permissions only")
	}
	return p, nil
}

// rateLimitsOf reads the rate_limits member of a settings document.
func rateLimitsOf(v any) (events.TenantRateLimits, error) {
	var l events.TenantRateLimits
	m, ok := v.(map[string]any)
	if !ok {
		return l, detail(ErrInvalidSettings, "rate_limits must be an object")
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		var dst *int
		switch name {
		case "account_attempts_per_minute":
			dst = &l.AccountAttemptsPerMinute
		case "address_attempts_per_minute":
			dst = &l.AddressAttemptsPerMinute
		default:
			return l, detail(ErrInvalidSettings, "unknown settings member %q", "rate_limits."+name)
		}
		num, _ := m[name].(json.Number)
		n, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || n < 1 || n > MaxAttemptsPerMinute {
			return l, detail(ErrInvalidSettings, "rate_limits.%s must be an integer from 1 to %d", name, MaxAttemptsPerMinute)
		}
		*dst = int(n)
	}
	return l, nil
}

// mergePatch returns target with patch applied, as RFC 7396 defines it: an
// object patch merges into an object target member by member, a null
// member removes the target's, and any other patch replaces the target.
// Neither argument is changed.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if ok {
		t = maps.Clone(t)
	} else {
		t = map[string]any{}
	}
	for name, v := range p {
		if v == nil {
			delete(t, name)
			continue
		}
		t[name] = mergePatch(t[name], v)
	}
	return t
}

// decodeJSON decodes one JSON value, numbers as json.Number so that
// integers stay exact.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return v, nil
}

// settingsJSON returns a settings document as the JSON value settingsOf
// reads.
func settingsJSON(s events.TenantSettings) any {
	b, _ := json.Marshal(s) // strings, booleans and integers always marshal
	v, _ := decodeJSON(b)
	return v
}

// sameSettings reports whether two documents say the same.
func sameSettings(a, b events.TenantSettings) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// cloneSettings returns a copy of s that shares nothing with it.
func cloneSettings(s events.TenantSettings) events.TenantSettings {
	c := s
	if s.PasswordGrant != nil {
		c.PasswordGrant = new(*s.PasswordGrant)
	}
	if s.RateLimits != nil {
		c.RateLimits = new(*s.RateLimits)
	}
	if s.MFA != nil {
		c.MFA = &events.TenantMFA{Policy: s.MFA.Policy, Permissions: slices.Clone(s.MFA.Permissions)}
	}
	if s.UserProfile != nil {
		c.UserProfile = &events.TenantUserProfile{
			AttributesSchema:       slices.Clone(s.UserProfile.AttributesSchema),
			SelfEditableAttributes: slices.Clone(s.UserProfile.SelfEditableAttributes),
		}
	}
	if s.Passwordless != nil {
		c.Passwordless = new(*s.Passwordless)
	}
	if s.SelfSignup != nil {
		c.SelfSignup = new(*s.SelfSignup)
	}
	return c
}

// MaxSelfEditableAttributes bounds the attributes a tenant lets its users
// change on their own.
const MaxSelfEditableAttributes = 64

// userProfileOf reads the user_profile member of a settings document: the
// attributes schema (checkAttributesSchema) and the self-editable
// attributes (distinct member names of 1 to 64 characters, sorted).
func userProfileOf(v any) (events.TenantUserProfile, error) {
	var p events.TenantUserProfile
	m, ok := v.(map[string]any)
	if !ok {
		return p, detail(ErrInvalidSettings, "user_profile must be an object")
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		switch name {
		case "attributes_schema":
			canon, err := checkAttributesSchema(m[name])
			if err != nil {
				return p, err
			}
			p.AttributesSchema = canon
		case "self_editable_attributes":
			list, ok := m[name].([]any)
			if !ok || len(list) > MaxSelfEditableAttributes {
				return p, detail(ErrInvalidSettings, "user_profile.self_editable_attributes must be a list of at most %d attribute names", MaxSelfEditableAttributes)
			}
			names := make([]string, 0, len(list))
			for _, x := range list {
				str, _ := x.(string)
				if str == "" || checkText(str, 64, false) != "" {
					return p, detail(ErrInvalidSettings, "user_profile.self_editable_attributes must hold attribute names of 1 to 64 characters")
				}
				names = append(names, str)
			}
			names = slices.Compact(slices.Sorted(slices.Values(names)))
			if len(names) > 0 {
				p.SelfEditableAttributes = names
			}
		default:
			return p, detail(ErrInvalidSettings, "unknown settings member %q", "user_profile."+name)
		}
	}
	return p, nil
}

// SetAttributesSchema replaces the tenant's attributes schema (a JSON
// document, see checkAttributesSchema) and records
// tenant.settings_changed, or nothing when it is the same; the rest of
// the settings stay as they are. The tenant must exist and be active.
func (t *Tenant) SetAttributesSchema(schema []byte) error {
	doc, err := decodeJSON(schema)
	if err != nil {
		return detail(ErrInvalidSettings, "the attributes schema is not valid JSON")
	}
	if _, err := checkAttributesSchema(doc); err != nil {
		return err
	}
	// The merge patch of a whole object would merge into the schema held;
	// removing it first makes the patch a replacement.
	current := settingsJSON(t.settings)
	if m, ok := current.(map[string]any); ok {
		if up, ok := m["user_profile"].(map[string]any); ok {
			delete(up, "attributes_schema")
		}
	}
	patch := map[string]any{"user_profile": map[string]any{"attributes_schema": doc}}
	return t.changeSettingsFrom(current, patch)
}
