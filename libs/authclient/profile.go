package authclient

import "github.com/authstream/authstream/libs/events"

// Profile is a user's profile as the event log says it: what a
// subscriber that mirrors users keeps beside the username. Fold the
// user's events into it, in order, with Apply (events.Profile, the one
// fold every reader of the contract shares).
type Profile = events.Profile
