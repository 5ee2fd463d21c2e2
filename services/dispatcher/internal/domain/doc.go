// Package domain holds what the dispatcher decides without adapters: the
// state of a webhook endpoint folded from its events, which events it
// receives and on which subjects, the Standard Webhooks signature, and the
// retry schedule. It imports the standard library and libs/events only.
package domain
