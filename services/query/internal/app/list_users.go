package app

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

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
	Email    string   `json:"email,omitempty"`
	Name     string   `json:"name,omitempty"`
}

// UserPage is one page of a tenant's users.
type UserPage struct {
	Items      []UserItem `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
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
	after, n, err := readPage(userCursor, cursor, limit)
	if err != nil {
		return UserPage{}, err
	}
	// One more than asked tells whether there is a next page.
	list, err := a.readModel.Accounts(ctx, c.Tenant, after, n+1)
	if err != nil {
		return UserPage{}, err
	}
	list, next := cutPage(userCursor, list, n, func(u Account) string { return u.ID })
	page := UserPage{Items: make([]UserItem, 0, len(list)), NextCursor: next}
	for _, u := range list {
		page.Items = append(page.Items, userItem(u))
	}
	return page, nil
}

// The prefixes of the cursors of each listing: a cursor of one is not
// one of another.
const (
	userCursor   = "u1:"
	clientCursor = "c1:"
)

// encodeCursor makes the opaque cursor after an id of a listing.
func encodeCursor(prefix, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + id))
}

func decodeCursor(prefix, s string) (string, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	id, ok := strings.CutPrefix(string(b), prefix)
	if err != nil || !ok || !events.ValidToken(id) {
		return "", ErrInvalidCursor
	}
	return id, nil
}

// readPage reads the cursor and the limit of a request for a page of the
// listing of prefix: the id the page starts after ("" for the first) and
// its size. Errors are ErrInvalidCursor and ErrInvalidLimit.
func readPage(prefix, cursor, limit string) (after string, n int, err error) {
	n = DefaultPageSize
	if limit != "" {
		v, err := strconv.Atoi(limit)
		if err != nil || v < 1 || v > MaxPageSize {
			return "", 0, ErrInvalidLimit
		}
		n = v
	}
	if cursor != "" {
		if after, err = decodeCursor(prefix, cursor); err != nil {
			return "", 0, err
		}
	}
	return after, n, nil
}

// cutPage returns the first n items of list, read with a limit of n+1,
// and the cursor after them when there are more.
func cutPage[T any](prefix string, list []T, n int, id func(T) string) ([]T, string) {
	if len(list) <= n {
		return list, ""
	}
	return list[:n], encodeCursor(prefix, id(list[n-1]))
}
