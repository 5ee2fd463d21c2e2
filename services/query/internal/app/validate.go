package app

import (
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// The checks of the ids and names a request names, made before anything
// reads them: what no user or role can have is refused as the command
// service refuses it (400, ErrInvalidUserID or ErrInvalidRoleName), rather
// than looked up (PostgreSQL refuses a NUL byte outright).

// checkUserID returns ErrInvalidUserID unless id can be a user id: a
// subject token (events.ValidToken), which the command service requires of
// every user it registers.
func checkUserID(id string) error {
	if !events.ValidToken(id) {
		return ErrInvalidUserID
	}
	return nil
}

// checkRoleName returns an error matching ErrInvalidRoleName, with what is
// wrong, unless name can be a role's name (authz.ValidRoleName).
func checkRoleName(name string) error {
	if err := authz.ValidRoleName(name); err != nil {
		return &fault.Error{Code: ErrInvalidRoleName.Code, Reason: ErrInvalidRoleName.Reason, Message: fault.MessageOf(err), Err: ErrInvalidRoleName}
	}
	return nil
}
