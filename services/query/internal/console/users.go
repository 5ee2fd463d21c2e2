package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// userRow is a user of GET /users and GET /users/{id}.
type userRow struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Status    string    `json:"status"`
	Roles     []string  `json:"roles"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// The profile, "" when the user has none.
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	Locale        string `json:"locale"`
}

type userPage struct {
	Items      []userRow `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

// Search bounds: a page shows up to pageSize users, and a search reads
// at most searchPages pages of the API to fill it.
const (
	pageSize    = 50
	searchPages = 20
)

// usersData is the users page's.
type usersData struct {
	Query, Next string
	Users       []userRow
	Invite      string // the address of an invitation the API refused
}

// users lists the tenant's users, or those whose username holds ?q=
// (case-insensitive), a page at a time.
func (c *Console) users(w http.ResponseWriter, r *http.Request) {
	d, err := c.listUsers(r, strings.TrimSpace(r.URL.Query().Get("q")), r.URL.Query().Get("cursor"))
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.page(w, r, "users.html", view{Title: "Users", Section: "/users", Data: d})
}

// listUsers reads the users page of q from cursor.
func (c *Console) listUsers(r *http.Request, q, cursor string) (usersData, error) {
	d := usersData{Query: q}
	k := c.clientOf(r)
	for range searchPages {
		var p userPage
		params := url.Values{"limit": {"200"}}
		if q == "" {
			params.Set("limit", "50")
		}
		if cursor != "" {
			params.Set("cursor", cursor)
		}
		if err := k.query(r.Context(), "/users", params, &p); err != nil {
			return usersData{}, err
		}
		for _, u := range p.Items {
			if q == "" || strings.Contains(strings.ToLower(u.Username), strings.ToLower(q)) {
				d.Users = append(d.Users, u)
			}
		}
		cursor = p.NextCursor
		if q == "" || cursor == "" || len(d.Users) >= pageSize {
			break
		}
	}
	d.Next = cursor
	return d, nil
}

// inviteUser invites the person of the form's address (POST
// /users:invite): a user whose username and address it is, and who sets
// a password through the invitation the dispatcher mails. A refused
// address is shown beside the form, on the users page.
func (c *Console) inviteUser(w http.ResponseWriter, r *http.Request) {
	k := c.clientOf(r)
	email := strings.TrimSpace(r.PostFormValue("email"))
	var out struct {
		ID string `json:"id"`
	}
	ct, err := k.command(r.Context(), http.MethodPost, "/users:invite", map[string]any{"email": email}, &out)
	if err != nil {
		e, ok := asInvalid(err)
		if !ok {
			c.apiFailure(w, r, err)
			return
		}
		d, lerr := c.listUsers(r, "", "")
		if lerr != nil {
			c.apiFailure(w, r, lerr)
			return
		}
		d.Invite = email
		c.page(w, r, "users.html", view{Title: "Users", Section: "/users", Status: e.Status, Error: e.Error(), Data: d})
		return
	}
	c.after(w, r, "/users/"+url.PathEscape(out.ID), ct, "invited")
}

// roleRow is a role of GET /roles.
type roleRow struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Description string   `json:"description"`
	Builtin     bool     `json:"builtin"`
}

type roleList struct {
	Items []roleRow `json:"items"`
}

// newUserData is the new user form's.
type newUserData struct {
	Username string
	Roles    []roleRow
	Chosen   map[string]bool
}

func (c *Console) newUser(w http.ResponseWriter, r *http.Request) {
	var roles roleList
	_ = c.clientOf(r).query(r.Context(), "/roles", nil, &roles) // without roles:read the form offers none
	c.page(w, r, "user_new.html", view{Title: "New user", Section: "/users", Data: newUserData{Roles: roles.Items}})
}

// createUser registers a user (POST /users) and shows them.
func (c *Console) createUser(w http.ResponseWriter, r *http.Request) {
	k := c.clientOf(r)
	roles := r.PostForm["role"]
	body := map[string]any{"username": r.PostFormValue("username"), "password": r.PostFormValue("password")}
	if len(roles) > 0 {
		body["roles"] = roles
	}
	var out struct {
		ID string `json:"id"`
	}
	ct, err := k.command(r.Context(), http.MethodPost, "/users", body, &out)
	if err != nil {
		if e, ok := asInvalid(err); ok {
			var all roleList
			_ = k.query(r.Context(), "/roles", nil, &all)
			chosen := map[string]bool{}
			for _, n := range roles {
				chosen[n] = true
			}
			c.page(w, r, "user_new.html", view{Title: "New user", Section: "/users", Status: e.Status, Error: e.Error(),
				Data: newUserData{Username: r.PostFormValue("username"), Roles: all.Items, Chosen: chosen}})
			return
		}
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/users/"+url.PathEscape(out.ID), ct, "created")
}

// asInvalid returns an API refusal a form shows beside itself: bad input
// or a conflict.
func asInvalid(err error) (*apiError, bool) {
	e, ok := err.(*apiError)
	if !ok {
		return nil, false
	}
	switch e.Status {
	case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
		return e, true
	}
	return nil, false
}

// after sends the browser to path of the tenant's console after a
// change, with the change's consistency token, so that the page reads a
// read model that holds it.
func (c *Console) after(w http.ResponseWriter, r *http.Request, path, ct, done string) {
	q := url.Values{"done": {done}}
	if ct != "" {
		q.Set("ct", ct)
	}
	seeOther(w, r, base(chi.URLParam(r, "tenant"))+path+"?"+q.Encode())
}

// userData is the user page's.
type userData struct {
	User      userRow
	Available []string // roles the user could be given
	CanRoles  bool
	CanWrite  bool     // users:write: the second factors' reset
	Signins   []signin // the latest first; nil without audit:read
}

// signin is an event of the user's sign-in history as the page shows it.
type signin struct {
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	Data       struct {
		Reason   string `json:"reason"`
		Client   string `json:"client"`
		Failures int    `json:"failures"`
	} `json:"data"`
}

// maxSignins is how many sign-ins the user page shows.
const maxSignins = 10

// signins reads the user's latest sign-ins (GET /users/{id}/signins,
// audit:read); nil when the admin may not read them or there are none.
func (k client) signins(r *http.Request, id string) []signin {
	var h struct {
		Events []signin `json:"events"`
	}
	if k.query(r.Context(), "/users/"+url.PathEscape(id)+"/signins", nil, &h) != nil {
		return nil
	}
	out := make([]signin, 0, maxSignins)
	for i := len(h.Events) - 1; i >= 0 && len(out) < maxSignins; i-- {
		out = append(out, h.Events[i])
	}
	return out
}

// user shows one user with the forms that change them.
func (c *Console) user(w http.ResponseWriter, r *http.Request) {
	k := c.clientOf(r)
	var d userData
	if err := k.query(r.Context(), "/users/"+url.PathEscape(chi.URLParam(r, "id")), nil, &d.User); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	var roles roleList
	if k.query(r.Context(), "/roles", nil, &roles) == nil {
		d.CanRoles = true
		held := map[string]bool{}
		for _, n := range d.User.Roles {
			held[n] = true
		}
		for _, role := range roles.Items {
			if !held[role.Name] {
				d.Available = append(d.Available, role.Name)
			}
		}
	}
	d.Signins = k.signins(r, d.User.ID)
	v := view{Title: d.User.Username, Section: "/users"}
	var m me
	if k.query(r.Context(), "/me", nil, &m) == nil {
		v.Me = &m
		d.CanWrite = m.can("users:write")
	}
	v.Data = d
	c.page(w, r, "user.html", v)
}

// userAction posts a command without a body to the user (disable,
// enable).
func (c *Console) userAction(suffix, done string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := url.PathEscape(chi.URLParam(r, "id"))
		var body any
		if reason := strings.TrimSpace(r.PostFormValue("reason")); reason != "" && suffix == "/disable" {
			body = map[string]string{"reason": reason}
		}
		ct, err := c.clientOf(r).command(r.Context(), http.MethodPost, "/users/"+id+suffix, body, nil)
		if err != nil {
			c.apiFailure(w, r, err)
			return
		}
		c.after(w, r, "/users/"+id, ct, done)
	}
}

// resetPassword sets a user's password (PUT /users/{id}/password).
func (c *Console) resetPassword(w http.ResponseWriter, r *http.Request) {
	id := url.PathEscape(chi.URLParam(r, "id"))
	ct, err := c.clientOf(r).command(r.Context(), http.MethodPut, "/users/"+id+"/password",
		map[string]string{"password": r.PostFormValue("password")}, nil)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/users/"+id, ct, "password")
}

// assignRole gives the user the role of the form.
func (c *Console) assignRole(w http.ResponseWriter, r *http.Request) {
	id := url.PathEscape(chi.URLParam(r, "id"))
	role := url.PathEscape(r.PostFormValue("role"))
	ct, err := c.clientOf(r).command(r.Context(), http.MethodPut, "/users/"+id+"/roles/"+role, nil, nil)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/users/"+id, ct, "assigned")
}

// unassignRole takes a role from the user.
func (c *Console) unassignRole(w http.ResponseWriter, r *http.Request) {
	id := url.PathEscape(chi.URLParam(r, "id"))
	role := url.PathEscape(chi.URLParam(r, "name"))
	ct, err := c.clientOf(r).command(r.Context(), http.MethodDelete, "/users/"+id+"/roles/"+role, nil, nil)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/users/"+id, ct, "unassigned")
}

// deleteUser deletes the user (DELETE /users/{id}) once the form repeats
// their username: a deletion cannot be undone.
func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request) {
	c.confirmedUserCommand(w, r, http.MethodDelete, "", "deletion: nothing was deleted", "deleted")
}

// eraseUser erases the user (POST /users/{id}/erase, ADR 0015) once the
// form repeats their username: unlike a deletion, an erasure makes every
// personal member of the user's events unreadable for good, and cannot
// be undone by anyone.
func (c *Console) eraseUser(w http.ResponseWriter, r *http.Request) {
	c.confirmedUserCommand(w, r, http.MethodPost, "/erase", "erasure: nothing was erased", "erased")
}

// confirmedUserCommand sends method to /users/{id}<suffix> once the form's
// "confirm" repeats the user's username exactly, and otherwise refuses
// with a page that names what was not done (refused).
func (c *Console) confirmedUserCommand(w http.ResponseWriter, r *http.Request, method, suffix, refused, done string) {
	id := url.PathEscape(chi.URLParam(r, "id"))
	k := c.clientOf(r)
	var u userRow
	if err := k.query(r.Context(), "/users/"+id, nil, &u); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	if r.PostFormValue("confirm") != u.Username {
		c.renderError(w, r, http.StatusBadRequest, "Type the username exactly to confirm the "+refused+".")
		return
	}
	ct, err := k.command(r.Context(), method, "/users/"+id+suffix, nil, nil)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/users", ct, done)
}

// resetFactors removes every second factor of the user (DELETE
// /users/{id}/mfa, an admin's reset), once the form's box says the admin
// means it: the user's sessions end with it.
func (c *Console) resetFactors(w http.ResponseWriter, r *http.Request) {
	id := url.PathEscape(chi.URLParam(r, "id"))
	if r.PostFormValue("confirm") != "reset" {
		c.renderError(w, r, http.StatusBadRequest, "Tick the box to confirm the reset: nothing was reset.")
		return
	}
	ct, err := c.clientOf(r).command(r.Context(), http.MethodDelete, "/users/"+id+"/mfa", nil, nil)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/users/"+id, ct, "mfa")
}
