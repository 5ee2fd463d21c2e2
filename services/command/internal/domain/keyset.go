package domain

import (
	"errors"
	"fmt"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
)

// KeySet is a tenant's key set aggregate; its id is the tenant slug. It
// records the public facts of the tenant's signing keys: each key's
// creation and its retirement. The keys themselves (private parts, the
// signing schedule) live in the key store, which makes them; the key set
// is what the log says of them, so that subscribers and auditors see every
// key that ever signed.
type KeySet struct {
	base
	created map[string]bool
	retired map[string]bool
	order   []string // kids in creation order
	// The audit keys, which sign the checkpoints of the tenant's
	// verifiable log: another purpose than the signing keys, with events
	// of their own.
	auditCreated map[string]bool
	auditRetired map[string]bool
}

// LoadKeySet folds a key set's history, oldest first, into its state. An
// empty history gives a key set without keys. The errors are
// ErrInvalidTenant for a malformed id and ErrCorruptHistory.
func LoadKeySet(tenant string, history []events.Envelope) (*KeySet, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return nil, rebrand(ErrInvalidTenant, err)
	}
	k := &KeySet{base: base{kind: events.AggregateKeySet, id: tenant}, created: map[string]bool{}, retired: map[string]bool{},
		auditCreated: map[string]bool{}, auditRetired: map[string]bool{}}
	if err := k.fold(history, k.apply); err != nil {
		return nil, err
	}
	return k, nil
}

// Add records key.created for a key the key store made. The key must have
// a kid (ErrInvalidKey); adding a key the set holds already is a no-op, so
// a retried rotation records each key once.
func (k *KeySet) Add(key events.KeyCreated) error {
	if key.KID == "" {
		return detail(ErrInvalidKey, "a created key needs a kid")
	}
	if k.created[key.KID] {
		return nil
	}
	k.record(k.apply, events.TypeKeyCreated, key)
	return nil
}

// Retire records key.retired for a key the key store stopped signing with.
// The key must have a kid (ErrInvalidKey); retiring a key the set has
// retired already is a no-op. A key the set never recorded may be retired:
// the key store is the authority on its keys, and the log must not miss
// the end of one.
func (k *KeySet) Retire(key events.KeyRetired) error {
	if key.KID == "" {
		return detail(ErrInvalidKey, "a retired key needs a kid")
	}
	if k.retired[key.KID] {
		return nil
	}
	k.record(k.apply, events.TypeKeyRetired, key)
	return nil
}

// AddAuditKey records key.audit_created for an audit key the key store
// made. The key needs a kid and a public key (ErrInvalidKey); adding one
// the set holds already is a no-op, so that a retry records each key once.
func (k *KeySet) AddAuditKey(key events.AuditKeyCreated) error {
	if key.KID == "" || len(key.PublicKey) == 0 {
		return detail(ErrInvalidKey, "a created audit key needs a kid and a public key")
	}
	if k.auditCreated[key.KID] {
		return nil
	}
	k.record(k.apply, events.TypeAuditKeyCreated, key)
	return nil
}

// RetireAuditKey records key.audit_retired for an audit key the key store
// retired. The key needs a kid (ErrInvalidKey); retiring one the set has
// retired already is a no-op.
func (k *KeySet) RetireAuditKey(key events.AuditKeyRetired) error {
	if key.KID == "" {
		return detail(ErrInvalidKey, "a retired audit key needs a kid")
	}
	if k.auditRetired[key.KID] {
		return nil
	}
	k.record(k.apply, events.TypeAuditKeyRetired, key)
	return nil
}

// AuditKeyRecorded reports whether the set records the creation of audit
// key kid.
func (k *KeySet) AuditKeyRecorded(kid string) bool { return k.auditCreated[kid] }

// AuditKeyRetired reports whether the set records the retirement of audit
// key kid.
func (k *KeySet) AuditKeyRetired(kid string) bool { return k.auditRetired[kid] }

// Created reports whether the set records the creation of key kid.
func (k *KeySet) Created(kid string) bool { return k.created[kid] }

// Retired reports whether the set records the retirement of key kid.
func (k *KeySet) Retired(kid string) bool { return k.retired[kid] }

// Signing returns the kids the set records as created and not retired, in
// creation order: the keys that sign, or signed last, as far as the log
// knows.
func (k *KeySet) Signing() []string {
	var out []string
	for _, kid := range k.order {
		if !k.retired[kid] {
			out = append(out, kid)
		}
	}
	return out
}

// apply is the only place a key set's state changes. It accepts a
// creation or retirement whatever came before, as the key store decided
// it: the set records facts about keys, it does not schedule them.
func (k *KeySet) apply(data any) error {
	ev, ok := data.(events.KeySetEvent)
	if !ok {
		return fmt.Errorf("key set cannot apply %T", data)
	}
	switch e := ev.(type) {
	case events.KeyCreated:
		if e.KID == "" {
			return errors.New("key.created without a kid")
		}
		if !k.created[e.KID] {
			k.order = append(k.order, e.KID)
		}
		k.created[e.KID] = true
	case events.KeyRetired:
		if e.KID == "" {
			return errors.New("key.retired without a kid")
		}
		k.retired[e.KID] = true
	case events.AuditKeyCreated:
		if e.KID == "" {
			return errors.New("key.audit_created without a kid")
		}
		k.auditCreated[e.KID] = true
	case events.AuditKeyRetired:
		if e.KID == "" {
			return errors.New("key.audit_retired without a kid")
		}
		k.auditRetired[e.KID] = true
	}
	return nil
}
