package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
)

// InviteUser invites a person by e-mail address: a user of the tenant
// whose username and profile address are Email, optionally holding
// Roles, with a password nobody knows, and user.invited, after which the
// dispatcher mails the invitation link through which the invitee sets
// their password. It needs what RegisterUser needs (users:write, and
// roles:assign with the cover of the roles).
type InviteUser struct {
	Request
	Tenant string
	Email  string
	Roles  []string
}

type inviteUserHandler struct{ reg registerUserHandler }

// Handle registers and invites in one atomic batch; the errors are
// RegisterUser's (ErrUsernameTaken for an address already a username,
// domain.ErrInvalidEmail for a malformed one). Result.ID is the invited
// user's id.
func (h inviteUserHandler) Handle(ctx context.Context, cmd InviteUser) (Result, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead
	return h.reg.Handle(ctx, RegisterUser{
		Request: cmd.Request, Tenant: cmd.Tenant, Username: cmd.Email, Email: cmd.Email, Roles: cmd.Roles,
		Password: base64.RawURLEncoding.EncodeToString(b[:]), invite: true,
	})
}
