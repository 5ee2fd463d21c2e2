// Package domain is the query service's model: the aggregates the login
// path decides on, Signin (one user's sign-in attempts: lockout), Session
// (one refresh-token family, or the grant of an authorization code:
// rotation, reuse detection, binding to its client, revocation), AuthCode
// (one authorization code: single use, bound to its client, redirect URI
// and PKCE challenge) and Browser (one single sign-on session of a
// browser), the refresh tokens, codes and cookies themselves, and the
// states auditors ask for (an account, a role, a user's sign-ins, a
// tenant's permission holders as of an instant), folded from events.
//
// It is pure: it imports the standard library, libs/events, libs/authz and
// libs/fault only, and reads no clock (every instant is an argument). The
// sources of randomness are NewRefreshToken, NewAuthCode and
// NewBrowserCookie, whose secrets must be unguessable.
//
// The aggregate idiom is the command service's: LoadX folds an aggregate's
// history (its envelopes, in order) into state, and ResumeX rebuilds the
// state a decision needs from the aggregate's last event alone, so that a
// login costs one read however long the history. A command method checks
// the invariants against that state and either returns an error and
// records nothing, or records events. Recording applies the event through
// the same apply switch the fold uses, so state only ever changes in one
// place, and appends it to Pending. The application turns Pending into
// envelopes (id, time, actor, trace, hash chain) and appends them after the
// position it loaded, with optimistic concurrency: a lost race reloads and
// decides again.
//
// Errors. Every error this package returns is a *fault.Error that matches,
// with errors.Is, one of the Err variables. The refusals of a sign-in or a
// refresh are fault.Unauthenticated: the application answers all of them
// alike, so a client learns nothing from the difference.
package domain
