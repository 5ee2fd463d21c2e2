package app

import (
	"context"

	"github.com/authstream/authstream/libs/fault"
)

// GetUser returns one user of the caller's tenant: the caller itself, or
// anyone for a caller with users:read. Without users:read another user's id
// is answered ErrUserNotFound like an unknown one, so ids cannot be probed;
// with it, an id no user can have is ErrInvalidUserID.
func (a *App) GetUser(ctx context.Context, c Caller, id string) (Account, error) {
	if id != c.UserID() {
		if err := a.require(ctx, c, PermUsersRead); err != nil {
			if fault.CodeOf(err) == fault.Forbidden {
				err = ErrUserNotFound
			}
			return Account{}, err
		}
	}
	if err := checkUserID(id); err != nil {
		return Account{}, err
	}
	return a.readModel.Account(ctx, c.Tenant, id)
}
