package app

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

func TestLoginResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, LoginSuccess},
		{"wrong password", refused(ErrInvalidCredentials, errors.New("wrong password")), LoginInvalid},
		{"locked before the comparison", refused(ErrInvalidCredentials, domain.ErrLocked), LoginLocked},
		{"locked while comparing", refused(ErrInvalidCredentials, fmt.Errorf("attempt: %w", domain.ErrLocked)), LoginLocked},
		{"rate limited", rateLimited(time.Second), LoginRateLimited},
		{"password queue full", ErrBusy, LoginShed},
		{"account too contended", errTooContended, LoginShed},
		{"refresh token refused", refused(ErrInvalidRefreshToken, domain.ErrUnknownSession), LoginInvalid},
		{"client refused", refused(ErrInvalidClient, errWrongSecret), LoginInvalid},
		{"grant not allowed", refused(ErrUnauthorizedClient, errors.New("no")), LoginInvalid},
		{"grant turned off", ErrPasswordGrantOff, LoginInvalid},
		{"event store down", appendError("append signin", errors.New("no responders")), LoginError},
		{"bug", errors.New("boom"), LoginError},
		{"tenant quarantined", fault.New(fault.Unavailable, "tenant-quarantined", "x"), LoginError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := loginResult(tt.err); got != tt.want {
				t.Errorf("loginResult(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
