package queries

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/query/internal/accounts"
	"github.com/go-chi/chi/v5"
)

// Page sizes of GET /users.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// UserItem is one user in GET /users.
type UserItem struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Status   string   `json:"status"`
	Roles    []string `json:"roles"`
}

// UserPage is the answer of GET /users.
type UserPage struct {
	Items      []UserItem `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

var errBadCursor = fault.New(fault.Invalid, "invalid-cursor", "cursor is not one this service returned")

// encodeCursor makes the opaque cursor after a user id.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte("u1:" + id)) }

func decodeCursor(s string) (string, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 4 || string(b[:3]) != "u1:" || !events.ValidToken(string(b[3:])) {
		return "", errBadCursor
	}
	return string(b[3:]), nil
}

// users is GET /users?cursor=&limit=: users in registration order, needs
// users:read.
func (h *Handler) users(w http.ResponseWriter, r *http.Request) {
	if err := h.require(r, permUsersRead); err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	q := r.URL.Query()
	limit := DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			httpserver.WriteError(w, r, h.log, fault.Errorf(fault.Invalid, "limit must be an integer from 1 to %d", MaxLimit))
			return
		}
		limit = n
	}
	after := ""
	if v := q.Get("cursor"); v != "" {
		var err error
		if after, err = decodeCursor(v); err != nil {
			httpserver.WriteError(w, r, h.log, err)
			return
		}
	}
	c := callerOf(r)
	// One more than asked tells whether there is a next page.
	list, err := h.accounts.Users(r.Context(), c.tenant, after, limit+1)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	page := UserPage{Items: make([]UserItem, 0, min(len(list), limit))}
	for i, u := range list {
		if i == limit {
			page.NextCursor = encodeCursor(list[i-1].ID)
			break
		}
		page.Items = append(page.Items, UserItem{ID: u.ID, Username: u.Username, Status: u.Status, Roles: u.Roles})
	}
	httpserver.WriteJSON(w, http.StatusOK, page)
}

// user is GET /users/{id}: the caller itself, or anyone with users:read.
// Without users:read another user's id is answered 404 like an unknown one,
// so ids cannot be probed.
func (h *Handler) user(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	id := chi.URLParam(r, "id")
	if id != c.claims.Subject {
		if err := h.require(r, permUsersRead); err != nil {
			if fault.CodeOf(err) == fault.Forbidden {
				err = accounts.ErrUserNotFound
			}
			httpserver.WriteError(w, r, h.log, err)
			return
		}
	}
	u, err := h.accounts.User(r.Context(), c.tenant, id)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, u)
}
