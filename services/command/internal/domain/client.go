package domain

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
)

// Client is the OpenID Connect client aggregate of a tenant; its id is the
// client id (a UUID the application chooses). A client is registered once,
// public or confidential for good; its configuration is replaced as a
// whole; a confidential client has a secret, known here by its SHA-256
// only, which rotations replace (the previous one keeps working for a
// grace period); and once deleted it stays deleted: every later command
// gives ErrClientDeleted and the id is never registered again.
type Client struct {
	base
	status Status
	config events.ClientConfig
	// secret is the hash of the current secret; previous that of the
	// secret before the last rotation, which works until previousUntil.
	secret, previous string
	previousUntil    time.Time
	roles            map[string]struct{}
}

// LoadClient folds a client's history, oldest first, into its state. An
// empty history gives a client that does not exist yet. The errors are
// ErrInvalidClientID when id cannot be a subject token and
// ErrCorruptHistory.
func LoadClient(id string, history []events.Envelope) (*Client, error) {
	if !events.ValidToken(id) {
		return nil, detail(ErrInvalidClientID, "client id %q is invalid", id)
	}
	c := &Client{base: base{kind: events.AggregateClient, id: id}, roles: map[string]struct{}{}}
	if err := c.fold(history, c.apply); err != nil {
		return nil, err
	}
	return c, nil
}

// Register records client.registered with cfg as NormalizeClientConfig
// makes it (ErrInvalidClientConfig) and, for a confidential client, the
// hash of its secret: 64 lowercase hex digits, the SHA-256 the application
// computed of the secret it generated; a public client has none
// (ErrInvalidClientSecret either way). The id must not have been
// registered before, even if deleted since (ErrClientExists). Nothing is
// recorded unless everything is valid.
func (c *Client) Register(cfg events.ClientConfig, secretHash string) error {
	norm, err := NormalizeClientConfig(cfg)
	if err != nil {
		return err
	}
	if err := checkSecretHash(norm.Type, secretHash); err != nil {
		return err
	}
	if c.status != StatusAbsent {
		return detail(ErrClientExists, "client %q already exists", c.id)
	}
	c.record(c.apply, events.TypeClientRegistered, events.ClientRegistered{Config: norm, SecretHash: secretHash})
	return nil
}

// Update records client.updated with cfg as NormalizeClientConfig makes it
// (ErrInvalidClientConfig): the whole configuration is replaced, and an
// omitted list takes its default, not the client's current value. An empty
// type keeps the client's; another type than the client's gives
// ErrClientTypeChange. The client must exist (ErrClientNotFound,
// ErrClientDeleted); an update that changes nothing is a no-op.
func (c *Client) Update(cfg events.ClientConfig) error {
	if err := c.RequireExists(); err != nil {
		return err
	}
	if cfg.Type == "" {
		cfg.Type = c.config.Type
	}
	if cfg.Type != c.config.Type {
		return detail(ErrClientTypeChange, "client %q is %s; its type cannot change (register another client)", c.id, c.config.Type)
	}
	norm, err := NormalizeClientConfig(cfg)
	if err != nil {
		return err
	}
	if sameClientConfig(norm, c.config) {
		return nil
	}
	c.record(c.apply, events.TypeClientUpdated, events.ClientUpdated{Config: norm})
	return nil
}

// RotateSecret records client.secret_rotated: secretHash (as in Register)
// becomes the secret, and the current one keeps working until
// previousUntil, which the application sets from the grace period asked
// for (at the command's time for none). Only a confidential client has a
// secret (ErrPublicClient); the client must exist (ErrClientNotFound,
// ErrClientDeleted). It is never a no-op: each rotation brings a new
// secret.
func (c *Client) RotateSecret(secretHash string, previousUntil time.Time) error {
	if err := c.RequireExists(); err != nil {
		return err
	}
	if c.config.Type != events.ClientConfidential {
		return detail(ErrPublicClient, "client %q is public: it has no secret to rotate", c.id)
	}
	if err := checkSecretHash(c.config.Type, secretHash); err != nil {
		return err
	}
	if secretHash == c.secret {
		return detail(ErrInvalidClientSecret, "the new secret is the current one")
	}
	if previousUntil.IsZero() {
		return detail(ErrInvalidClientSecret, "the end of the previous secret's grace period is missing")
	}
	c.record(c.apply, events.TypeClientSecretRotated, events.ClientSecretRotated{
		SecretHash: secretHash, PreviousSecretHash: c.secret, PreviousSecretExpiresAt: previousUntil.UTC(),
	})
	return nil
}

// Delete records client.deleted. The client must exist
// (ErrClientNotFound); deleting a deleted client gives ErrClientDeleted
// like every other command, since it no longer exists.
func (c *Client) Delete() error {
	if err := c.RequireExists(); err != nil {
		return err
	}
	c.record(c.apply, events.TypeClientDeleted, events.ClientDeleted{})
	return nil
}

// AssignRole records client.role_assigned: the client's own tokens carry
// the role's permissions. role must be well formed (ErrInvalidRoleName);
// whether it exists and whether the caller may grant it is checked with
// CanGrant. Only a confidential client holds roles (ErrPublicClient); the
// client must exist (ErrClientNotFound, ErrClientDeleted); assigning a role
// the client holds is a no-op.
func (c *Client) AssignRole(role string) error {
	if err := authz.ValidRoleName(role); err != nil {
		return rebrand(ErrInvalidRoleName, err)
	}
	if err := c.RequireExists(); err != nil {
		return err
	}
	if c.config.Type != events.ClientConfidential {
		return detail(ErrPublicClient, "client %q is public: it cannot act on its own, so it holds no roles", c.id)
	}
	if c.HasRole(role) {
		return nil
	}
	c.record(c.apply, events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: role})
	return nil
}

// UnassignRole records client.role_unassigned. role must be well formed
// (ErrInvalidRoleName); the caller's right to take it is checked with
// CanRevoke. The client must exist (ErrClientNotFound, ErrClientDeleted);
// unassigning a role the client does not hold is a no-op.
func (c *Client) UnassignRole(role string) error {
	if err := authz.ValidRoleName(role); err != nil {
		return rebrand(ErrInvalidRoleName, err)
	}
	if err := c.RequireExists(); err != nil {
		return err
	}
	if !c.HasRole(role) {
		return nil
	}
	c.record(c.apply, events.TypeClientRoleUnassigned, events.ClientRoleUnassigned{Role: role})
	return nil
}

// Exists reports whether the client is registered and not deleted.
func (c *Client) Exists() bool { return c.status == StatusActive }

// Status returns StatusAbsent, StatusActive or StatusDeleted.
func (c *Client) Status() Status { return c.status }

// Config returns the client's configuration, sharing nothing with it.
func (c *Client) Config() events.ClientConfig { return cloneClientConfig(c.config) }

// SecretHash returns the hash of the client's current secret; "" for a
// public client.
func (c *Client) SecretHash() string { return c.secret }

// PreviousSecret returns the hash of the secret before the last rotation
// and the instant it stops working; "" before any rotation.
func (c *Client) PreviousSecret() (hash string, until time.Time) { return c.previous, c.previousUntil }

// Roles returns the names of the roles the client holds, sorted.
func (c *Client) Roles() []string { return slices.Sorted(maps.Keys(c.roles)) }

// HasRole reports whether the client holds role.
func (c *Client) HasRole(role string) bool {
	_, ok := c.roles[role]
	return ok
}

// RequireExists returns nil if the client is registered and not deleted:
// ErrClientNotFound when it was never registered, ErrClientDeleted when it
// is deleted.
func (c *Client) RequireExists() error {
	switch c.status {
	case StatusAbsent:
		return detail(ErrClientNotFound, "client %q not found", c.id)
	case StatusDeleted:
		return detail(ErrClientDeleted, "client %q is deleted", c.id)
	}
	return nil
}

// apply is the only place a client's state changes.
func (c *Client) apply(data any) error {
	ev, ok := data.(events.ClientEvent)
	if !ok {
		return fmt.Errorf("client cannot apply %T", data)
	}
	switch e := ev.(type) {
	case events.ClientRegistered:
		c.config, c.secret, c.status = cloneClientConfig(e.Config), e.SecretHash, StatusActive
	case events.ClientUpdated:
		// History is read as strictly as commands decide: a type that
		// changed would make secrets and roles mean something else.
		if e.Config.Type != c.config.Type {
			return fmt.Errorf("client.updated changes the type from %q to %q", c.config.Type, e.Config.Type)
		}
		c.config = cloneClientConfig(e.Config)
	case events.ClientSecretRotated:
		if c.config.Type != events.ClientConfidential {
			return errors.New("client.secret_rotated of a public client")
		}
		c.secret, c.previous, c.previousUntil = e.SecretHash, e.PreviousSecretHash, e.PreviousSecretExpiresAt
	case events.ClientDeleted:
		// The secrets go with the client: nothing may authenticate as it.
		c.status, c.secret, c.previous, c.previousUntil = StatusDeleted, "", "", time.Time{}
		clear(c.roles)
	case events.ClientRoleAssigned:
		c.roles[e.Role] = struct{}{}
	case events.ClientRoleUnassigned:
		delete(c.roles, e.Role)
	}
	return nil
}

// checkSecretHash checks the secret hash a client of type typ registers or
// rotates with: 64 lowercase hex digits for a confidential client, none
// for a public one.
func checkSecretHash(typ, hash string) error {
	if typ == events.ClientPublic {
		if hash != "" {
			return detail(ErrInvalidClientSecret, "a public client has no secret")
		}
		return nil
	}
	if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 || hex.EncodeToString(b) != hash {
		return detail(ErrInvalidClientSecret, "a confidential client's secret hash must be 64 lowercase hex digits")
	}
	return nil
}

// sameClientConfig reports whether two normalised configurations say the
// same.
func sameClientConfig(a, b events.ClientConfig) bool {
	return a.Name == b.Name && a.Type == b.Type && a.IDTokenSignedResponseAlg == b.IDTokenSignedResponseAlg &&
		slices.Equal(a.RedirectURIs, b.RedirectURIs) && slices.Equal(a.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs) &&
		slices.Equal(a.GrantTypes, b.GrantTypes) && slices.Equal(a.Scopes, b.Scopes)
}

// cloneClientConfig returns a copy of cfg that shares no list with it.
func cloneClientConfig(cfg events.ClientConfig) events.ClientConfig {
	c := cfg
	c.RedirectURIs = slices.Clone(cfg.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(cfg.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(cfg.GrantTypes)
	c.Scopes = slices.Clone(cfg.Scopes)
	return c
}
