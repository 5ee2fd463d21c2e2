// Package authclient is what a Go service needs to work with authstream
// without running any of it:
//
//   - Verifier checks access tokens offline against each tenant's published
//     keys (OpenID discovery and JWKS, cached per tenant and refetched, at a
//     bounded rate, when a token names a key the cache does not hold), with
//     the tenant's issuer and each key's algorithm pinned.
//   - Middleware puts the verified Principal of a request into its context
//     and answers 401 otherwise; RequirePermission asks authstream's check
//     endpoint whether that principal holds a permission and answers 403
//     otherwise.
//   - Consumer delivers the event log to a handler, typed and in order,
//     through a durable JetStream consumer that resumes where it stopped.
//     It needs a NATS connection with a subscriber's credentials
//     (docs/events.md): authstream's servers, the all-in-one's included,
//     refuse anonymous clients.
//   - Profile folds a user's profile (e-mail address and whether it is
//     verified, name, locale, the tenant's attributes) from the user's
//     events, for a subscriber that mirrors users.
//
// The package depends on the wire contract (libs/events), golang-jwt, chi
// and nats.go only. The contract itself is described in docs/events.md.
package authclient
