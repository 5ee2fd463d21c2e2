package app

import "context"

// Me is the answer of GET /me.
type Me struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	Tenant      string   `json:"tenant"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
}

// Me returns the caller, with roles and effective permissions as the read
// model has them now.
func (a *App) Me(ctx context.Context, c Caller) (Me, error) {
	u, err := a.readModel.Account(ctx, c.Tenant, c.UserID())
	if err != nil {
		return Me{}, err
	}
	s, err := a.perms.Subject(ctx, c.Tenant, u.ID)
	if err != nil {
		return Me{}, err
	}
	perms := s.Permissions.Strings()
	if perms == nil {
		perms = []string{}
	}
	return Me{ID: u.ID, Username: u.Username, Tenant: c.Tenant, Roles: u.Roles, Permissions: perms}, nil
}
