// Package login holds the two aggregates of the login path, pure domain:
// Signin (the sign-in attempts of one user: lockout) and Session (one
// refresh-token family: rotation, reuse detection, revocation). Both fold
// their history from event envelopes and decide new events from a command;
// loading and appending with optimistic concurrency is the caller's job, so
// this package imports the standard library and libs/events only.
package login
