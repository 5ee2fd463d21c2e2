package domain

import (
	"maps"
	"slices"

	"github.com/authstream/authstream/libs/events"
)

// The application keeps the folded state of recently used aggregates and
// brings it up to date with the events stored since, instead of folding
// each aggregate's whole history for every command. Clone and Advance are
// what that needs: a cached state is never handed out, only copies of it,
// so a command recording events on its copy leaves the cache untouched.

// clone copies the bookkeeping of b.
func (b base) clone() base {
	b.pending = slices.Clone(b.pending)
	return b
}

// advance folds events that follow the state's version. An aggregate with
// pending events is past its history: advancing it is a bug in the caller.
func (b *base) advance(tail []events.Envelope, apply func(any) error) error {
	if len(b.pending) > 0 {
		return corrupt(b.kind, b.id, b.version+1, "advanced with %d pending events", len(b.pending))
	}
	return b.fold(tail, apply)
}

// Clone returns a copy of the tenant that shares nothing with t: events
// recorded on one do not show on the other.
func (t *Tenant) Clone() *Tenant {
	c := *t
	c.base = t.base.clone()
	c.settings = cloneSettings(t.settings)
	c.mailTemplates = maps.Clone(t.mailTemplates)
	return &c
}

// Advance folds events stored after the tenant's version, oldest first,
// as LoadTenant folds a whole history (ErrCorruptHistory for a gap, a
// foreign event or one the tenant cannot apply). The tenant must have no
// pending events. On error the state is partly advanced and must be
// dropped.
func (t *Tenant) Advance(tail []events.Envelope) error { return t.advance(tail, t.apply) }

// Clone returns a copy of the user that shares nothing with u: events
// recorded on one do not show on the other.
func (u *User) Clone() *User {
	c := *u
	c.base = u.base.clone()
	c.roles = maps.Clone(u.roles)
	if c.roles == nil {
		c.roles = map[string]struct{}{}
	}
	c.mfa.recovery = slices.Clone(u.mfa.recovery) // apply replaces the rest, never changes it in place
	return &c
}

// Advance folds events stored after the user's version, oldest first, as
// LoadUser folds a whole history (ErrCorruptHistory for a gap, a foreign
// event or one the user cannot apply). The user must have no pending
// events. On error the state is partly advanced and must be dropped.
func (u *User) Advance(tail []events.Envelope) error { return u.advance(tail, u.apply) }

// Clone returns a copy of the role that shares nothing with r: events
// recorded on one do not show on the other.
func (r *Role) Clone() *Role {
	c := *r
	c.base = r.base.clone()
	c.permissions = slices.Clone(r.permissions)
	return &c
}

// Advance folds events stored after the role's version, oldest first, as
// LoadRole folds a whole history (ErrCorruptHistory for a gap, a foreign
// event, one the role cannot apply, or any event of the built-in role).
// The role must have no pending events. On error the state is partly
// advanced and must be dropped.
func (r *Role) Advance(tail []events.Envelope) error {
	if r.builtin && len(tail) > 0 {
		return corrupt(r.kind, r.id, 1, "the built-in role has no events")
	}
	return r.advance(tail, r.apply)
}

// Clone returns a copy of the client that shares nothing with c: events
// recorded on one do not show on the other.
func (c *Client) Clone() *Client {
	cp := *c
	cp.base = c.base.clone()
	cp.config = cloneClientConfig(c.config)
	cp.roles = maps.Clone(c.roles)
	if cp.roles == nil {
		cp.roles = map[string]struct{}{}
	}
	return &cp
}

// Advance folds events stored after the client's version, oldest first,
// as LoadClient folds a whole history (ErrCorruptHistory for a gap, a
// foreign event or one the client cannot apply). The client must have no
// pending events. On error the state is partly advanced and must be
// dropped.
func (c *Client) Advance(tail []events.Envelope) error { return c.advance(tail, c.apply) }

// Clone returns a copy of the webhook endpoint that shares nothing with w:
// events recorded on one do not show on the other.
func (w *Webhook) Clone() *Webhook {
	cp := *w
	cp.base = w.base.clone()
	cp.config = cloneWebhookConfig(w.config)
	return &cp
}

// Advance folds events stored after the endpoint's version, oldest first,
// as LoadWebhook folds a whole history (ErrCorruptHistory for a gap, a
// foreign event or one the endpoint cannot apply). The endpoint must have
// no pending events. On error the state is partly advanced and must be
// dropped.
func (w *Webhook) Advance(tail []events.Envelope) error { return w.advance(tail, w.apply) }
