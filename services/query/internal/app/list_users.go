package app

import (
	"context"
	"encoding/base64"
	"strconv"

	"github.com/authstream/authstream/libs/events"
)

// Page sizes of ListUsers.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// UserItem is one user of a UserPage.
type UserItem struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Status   string   `json:"status"`
	Roles    []string `json:"roles"`
}

// UserPage is one page of a tenant's users.
type UserPage struct {
	Items      []UserItem `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// encodeCursor makes the opaque cursor after a user id.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte("u1:" + id)) }

func decodeCursor(s string) (string, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 4 || string(b[:3]) != "u1:" || !events.ValidToken(string(b[3:])) {
		return "", ErrInvalidCursor
	}
	return string(b[3:]), nil
}

// ListUsers returns a page of the caller's tenant's users in registration
// order; it needs users:read. cursor is "" for the first page or a
// NextCursor this service returned (ErrInvalidCursor otherwise); limit is
// "" for DefaultPageSize or a page size from 1 to MaxPageSize
// (ErrInvalidLimit otherwise).
func (a *App) ListUsers(ctx context.Context, c Caller, cursor, limit string) (UserPage, error) {
	if err := a.require(ctx, c, PermUsersRead); err != nil {
		return UserPage{}, err
	}
	n := DefaultPageSize
	if limit != "" {
		v, err := strconv.Atoi(limit)
		if err != nil || v < 1 || v > MaxPageSize {
			return UserPage{}, ErrInvalidLimit
		}
		n = v
	}
	after := ""
	if cursor != "" {
		var err error
		if after, err = decodeCursor(cursor); err != nil {
			return UserPage{}, err
		}
	}
	// One more than asked tells whether there is a next page.
	list, err := a.readModel.Accounts(ctx, c.Tenant, after, n+1)
	if err != nil {
		return UserPage{}, err
	}
	page := UserPage{Items: make([]UserItem, 0, min(len(list), n))}
	for i, u := range list {
		if i == n {
			page.NextCursor = encodeCursor(list[i-1].ID)
			break
		}
		page.Items = append(page.Items, UserItem{ID: u.ID, Username: u.Username, Status: u.Status, Roles: u.Roles})
	}
	return page, nil
}
