package domain

import (
	"maps"
	"slices"
)

// PasskeyUse is a passkey response of a sign-in, as the application
// verified it against the ceremony it answers and the user's passkey.
type PasskeyUse struct {
	// Verified is true when the response verified (challenge, origin,
	// relying party id, the user's credential, the signature).
	Verified bool
	// Ceremony is the start of the ceremony it answers, in Unix
	// nanoseconds: a ceremony answered once, and every earlier one, never
	// passes again.
	Ceremony int64
	// CredentialID names the passkey (base64url).
	CredentialID string
	// SignCount is the signature counter the response reports, and
	// Registered the passkey's counter at its registration.
	SignCount, Registered uint32
	// Held are the credential ids of the passkeys the user holds: the
	// counters of the others are dropped, so the state stays bounded.
	Held []string
}

// AttemptPasskey records the passkey step of a sign-in:
// events.SigninSucceeded with amr when the response verified, answers a
// ceremony started after the last one answered (so a response, replayed
// or submitted twice in parallel, passes once), and its signature counter
// went up since the passkey's last use (or the authenticator keeps none:
// zero then and always); the success carries the ceremony and the counter
// forward. Otherwise events.SigninFailed with ReasonWrongPasskey, counted
// toward the lock like a wrong password: a counter that did not go up
// means a cloned authenticator. It reports whether the passkey passed.
// While the account is locked it returns ErrLocked and records nothing.
func (s *Signin) AttemptPasskey(a Attempt, use PasskeyUse, amr []string, p Policy) (bool, error) {
	p = p.withDefaults()
	if s.Locked(a.Now) {
		return false, ErrLocked
	}
	last := max(s.factors.PasskeyCounts[use.CredentialID], use.Registered)
	counted := use.SignCount > last || (use.SignCount == 0 && last == 0)
	if !use.Verified || use.CredentialID == "" || use.Ceremony <= s.factors.PasskeyCeremony || !counted {
		s.fail(Attempt{Outcome: WrongPasskey, Client: a.Client, Now: a.Now}, p)
		return false, nil
	}
	next := s.factors
	next.PasskeyCeremony = use.Ceremony
	next.PasskeyCounts = maps.Clone(s.factors.PasskeyCounts)
	maps.DeleteFunc(next.PasskeyCounts, func(id string, _ uint32) bool { return !slices.Contains(use.Held, id) })
	if use.SignCount > 0 {
		if next.PasskeyCounts == nil {
			next.PasskeyCounts = map[string]uint32{}
		}
		next.PasskeyCounts[use.CredentialID] = use.SignCount
	}
	s.succeed(a, slices.Clone(amr), next)
	return true, nil
}
