package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/authstream/authstream/libs/authz"
	"github.com/go-chi/chi/v5"
)

// platformPermissions are the permissions the platform's own APIs check,
// which the wildcard preview matches patterns against with the tenant's.
var platformPermissions = []string{
	"audit:read", "clients:read", "clients:write", "projections:read", "projections:write", "roles:assign", "roles:read",
	"roles:write", "settings:write", "tenants:write", "users:read", "users:write",
}

func (c *Console) roles(w http.ResponseWriter, r *http.Request) {
	var roles roleList
	if err := c.clientOf(r).query(r.Context(), "/roles", nil, &roles); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.page(w, r, "roles.html", view{Title: "Roles", Section: "/roles", Data: roles.Items})
}

// roleData is the role editor's.
type roleData struct {
	New         bool
	Name        string
	Description string
	Permissions string // one a line
	Builtin     bool
	Preview     []preview
}

// preview says which known permissions a pattern of the editor covers.
type preview struct {
	Pattern string
	Problem string
	Matches []string
}

// editRole shows the role editor: empty for /roles/new, else the role.
func (c *Console) editRole(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	d := roleData{New: name == ""}
	k := c.clientOf(r)
	if !d.New {
		var role roleRow
		if err := k.query(r.Context(), "/roles/"+url.PathEscape(name), nil, &role); err != nil {
			c.apiFailure(w, r, err)
			return
		}
		d.Name, d.Description, d.Builtin = role.Name, role.Description, role.Builtin
		d.Permissions = strings.Join(role.Permissions, "\n")
		d.Preview = c.preview(r, k, role.Permissions)
	}
	c.page(w, r, "role.html", view{Title: titleOf(d), Section: "/roles", Data: d})
}

func titleOf(d roleData) string {
	if d.New {
		return "New role"
	}
	return "Role " + d.Name
}

// saveRole defines the role (PUT /roles/{name}), or with the preview
// button shows what the patterns cover without saving.
func (c *Console) saveRole(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	d := roleData{New: name == "", Name: name, Description: r.PostFormValue("description"), Permissions: r.PostFormValue("permissions")}
	if d.New {
		d.Name = strings.TrimSpace(r.PostFormValue("name"))
	}
	perms := splitPermissions(d.Permissions)
	k := c.clientOf(r)
	if r.PostFormValue("action") == "preview" {
		d.Preview = c.preview(r, k, perms)
		c.page(w, r, "role.html", view{Title: titleOf(d), Section: "/roles", Data: d})
		return
	}
	ct, err := k.command(r.Context(), http.MethodPut, "/roles/"+url.PathEscape(d.Name),
		map[string]any{"permissions": perms, "description": d.Description}, nil)
	if err != nil {
		if e, ok := asInvalid(err); ok {
			d.Preview = c.preview(r, k, perms)
			c.page(w, r, "role.html", view{Title: titleOf(d), Section: "/roles", Status: e.Status, Error: e.Error(), Data: d})
			return
		}
		c.apiFailure(w, r, err)
		return
	}
	done := "saved"
	if d.New {
		done = "created"
	}
	c.after(w, r, "/roles/"+url.PathEscape(d.Name), ct, done)
}

// splitPermissions reads the editor's permissions: one a line (or
// separated by commas or spaces), blanks dropped.
func splitPermissions(s string) []string {
	out := []string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// preview matches each pattern against the known permissions: the
// platform's and every permission the tenant's roles name.
func (c *Console) preview(r *http.Request, k client, patterns []string) []preview {
	known := slices.Clone(platformPermissions)
	var roles roleList
	if k.query(r.Context(), "/roles", nil, &roles) == nil {
		for _, role := range roles.Items {
			for _, p := range role.Permissions {
				if !strings.Contains(p, "*") && !slices.Contains(known, p) {
					known = append(known, p)
				}
			}
		}
	}
	slices.Sort(known)
	out := make([]preview, 0, len(patterns))
	for _, pat := range patterns {
		pv := preview{Pattern: pat}
		granted, err := authz.Parse(pat)
		if err != nil {
			pv.Problem = err.Error()
			out = append(out, pv)
			continue
		}
		for _, kp := range known {
			if need, err := authz.Parse(kp); err == nil && granted.Matches(need) {
				pv.Matches = append(pv.Matches, kp)
			}
		}
		out = append(out, pv)
	}
	return out
}

// deleteRole deletes the role (DELETE /roles/{name}) once the form
// repeats its name.
func (c *Console) deleteRole(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if r.PostFormValue("confirm") != name {
		c.renderError(w, r, http.StatusBadRequest, "Type the role's name exactly to confirm the deletion: nothing was deleted.")
		return
	}
	ct, err := c.clientOf(r).command(r.Context(), http.MethodDelete, "/roles/"+url.PathEscape(name), nil, nil)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/roles", ct, "deleted")
}
