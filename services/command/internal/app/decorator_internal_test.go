package app

import (
	"errors"
	"testing"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

func TestCommandResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"ok", nil, ResultOK},
		{"invalid", fault.New(fault.Invalid, "weak-password", "x"), ResultInvalid},
		{"not found", fault.New(fault.NotFound, "user-not-found", "x"), ResultInvalid},
		{"key reused", unitofwork.ErrIdempotencyKeyReused, ResultInvalid},
		{"forbidden", fault.New(fault.Forbidden, "missing-permission", "x"), ResultForbidden},
		{"unauthenticated", fault.New(fault.Unauthenticated, "bad-token", "x"), ResultForbidden},
		{"sign-ups rate-limited", ErrSignupRateLimited, ResultForbidden},
		{"username taken", ErrUsernameTaken, ResultConflict},
		{"contended", unitofwork.ErrContended, ResultConflict},
		{"outcome unknown", unitofwork.ErrOutcomeUnknown, ResultError},
		{"bug", errors.New("boom"), ResultError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := commandResult(tt.err); got != tt.want {
				t.Errorf("commandResult(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
