package app

import (
	"context"
	"encoding/json"
	"strings"
	"unicode"

	"github.com/authstream/authstream/libs/fault"
)

// ErrInvalidEmail refuses a search by an e-mail address that no user can
// have.
var ErrInvalidEmail = fault.New(fault.Invalid, "invalid-email", "e-mail address is invalid")

// ErrNoUserSchema answers a tenant that has set no attributes schema.
var ErrNoUserSchema = fault.New(fault.NotFound, "user-schema-not-found", "the tenant has no attributes schema")

// maxEmailLen is the longest address a profile holds (the command
// service's bound).
const maxEmailLen = 254

// FindUsersByEmail returns the caller's tenant's users whose e-mail
// address is email (case-insensitively), at most MaxPageSize of them, in
// registration order; it needs users:read. Addresses are not unique: two
// users may share one.
func (a *App) FindUsersByEmail(ctx context.Context, c Caller, email string) (UserPage, error) {
	if err := a.require(ctx, c, PermUsersRead); err != nil {
		return UserPage{}, err
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 || len(email) > maxEmailLen || strings.IndexFunc(email, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '<' || r == '>'
	}) >= 0 {
		return UserPage{}, ErrInvalidEmail
	}
	list, err := a.readModel.AccountsByEmail(ctx, c.Tenant, email, MaxPageSize)
	if err != nil {
		return UserPage{}, err
	}
	page := UserPage{Items: make([]UserItem, 0, len(list))}
	for _, u := range list {
		page.Items = append(page.Items, userItem(u))
	}
	return page, nil
}

// userItem is u as a listing shows it.
func userItem(u Account) UserItem {
	return UserItem{ID: u.ID, Username: u.Username, Status: u.Status, Roles: u.Roles, Email: u.Email, Name: u.Name}
}

// UserSchema returns the JSON Schema of the caller's tenant's users'
// attributes (ErrNoUserSchema when it has none). Every user of the
// tenant may read it: it says what a profile may hold, not what any
// holds.
func (a *App) UserSchema(ctx context.Context, c Caller) (json.RawMessage, error) {
	s, err := a.tenantSettings(ctx, c.Tenant)
	if err != nil {
		return nil, err
	}
	if s.UserProfile == nil || len(s.UserProfile.AttributesSchema) == 0 {
		return nil, ErrNoUserSchema
	}
	return json.RawMessage(s.UserProfile.AttributesSchema), nil
}
