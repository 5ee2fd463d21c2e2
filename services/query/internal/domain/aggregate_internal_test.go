package domain

import (
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// TestBase_record checks that recording refuses what the aggregate's
// apply would not accept: commands can only record what they know, so a
// refusal is a bug and panics rather than append a wrong event.
func TestBase_record(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  string
		data any
	}{
		{"unknown type", "signin.mystery", events.SigninSucceeded{}},
		{"type of another aggregate", events.TypeSessionRevoked, events.SessionRevoked{}},
		{"payload of another type", events.TypeSigninFailed, events.SigninSucceeded{}},
		{"payload by pointer", events.TypeSigninSucceeded, &events.SigninSucceeded{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := LoadSignin("u1", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if recover() == nil {
					t.Fatal("recorded without a panic")
				}
				if s.Version() != 0 || s.Pending() != nil {
					t.Fatalf("a refused event changed the state: version %d, pending %v", s.Version(), s.Pending())
				}
			}()
			s.record(s.apply, tt.typ, tt.data, time.Now())
		})
	}
}
