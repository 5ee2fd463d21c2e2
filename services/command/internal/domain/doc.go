// Package domain is the write side's model of authstream: the tenant, user,
// role, key set and client aggregates and the rules that decide who may
// change them. It is pure: it imports the standard library, libs/events,
// libs/authz and libs/fault only, reads no clock and draws no random
// numbers, so every decision can be replayed and tested from a list of
// events.
//
// The aggregate idiom: LoadX folds an aggregate's history (its envelopes, in
// order) into state. A command method checks the invariants against that
// state and either returns an error, records nothing and returns nil (the
// command would change nothing: see below), or records one or more events.
// Recording applies the event to the state through the same apply switch the
// fold uses, so state only ever changes in one place, and appends it to
// Pending. The application layer turns Pending into envelopes (id, time,
// actor, trace, hash chain) and appends them with LoadedVersion as the
// expected version.
//
// No-ops. A command on an aggregate that exists but whose effect is already
// in place (enable an enabled user, assign a role the user holds, define a
// role exactly as it is) is not an error: it records no events and returns
// nil, so retrying any command is safe. A command on an aggregate that does
// not exist, or no longer exists (a deleted user or role), is an error
// (fault.NotFound), and so is creating what already exists
// (fault.Conflict): those mean the caller's picture of the world is wrong.
//
// Errors. Every error this package returns is a *fault.Error that matches,
// with errors.Is, one of the Err variables; its message is safe to show and
// often more precise than the variable's own. The one exception is a
// fault.Internal error from Authorize when the code asks for a malformed
// permission, which is a bug in the caller.
package domain
