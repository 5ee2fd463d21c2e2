package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// ErrPasskeysUnavailable: the platform's public URL has an IP address for
// host, which cannot be a WebAuthn relying party id, so no passkey can be
// registered or used.
var ErrPasskeysUnavailable = fault.New(fault.Conflict, "passkeys-unavailable",
	"passkeys need a public URL (AUTH_PUBLIC_URL) whose host is a domain name, not an IP address")

// BeginPasskeyRegistration starts the registration of a passkey (a
// WebAuthn credential) for a user: the user themself, or a caller with
// users:write.
type BeginPasskeyRegistration struct {
	Request
	Tenant string
	UserID string
}

// passkeyPending is the plaintext of a registration under way, sealed in
// user.passkey_registration_started: the ceremony the response must
// answer, and the options given to the browser, which a replay of the
// request answers again.
type passkeyPending struct {
	Ceremony []byte          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
}

// passkeyUser returns the WebAuthn account of usr: the user handle is the
// user id (opaque, no personal data), the name the username, opened with
// the user's data key.
func (e *engine) passkeyUser(ctx context.Context, tenant string, usr *domain.User, userID string) (authn.PasskeyUser, error) {
	name, err := e.openUsername(ctx, tenant, usr)
	if err != nil {
		return authn.PasskeyUser{}, err
	}
	u := authn.PasskeyUser{Handle: []byte(userID), Name: name}
	for _, p := range usr.Passkeys() {
		id, err1 := base64.RawURLEncoding.DecodeString(p.CredentialID)
		pub, err2 := base64.RawURLEncoding.DecodeString(p.PublicKey)
		if err := errors.Join(err1, err2); err != nil {
			return authn.PasskeyUser{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		u.Credentials = append(u.Credentials, authn.PasskeyCredential{ID: id, PublicKey: pub, SignCount: p.SignCount, Transports: p.Transports,
			BackupEligible: p.BackupEligible, BackupState: p.BackupState, UserVerified: p.UserVerified, Format: p.Format})
	}
	return u, nil
}

type beginPasskeyRegistrationHandler struct{ e *engine }

// Handle appends user.passkey_registration_started with the ceremony
// sealed with the key-encryption key (events.MFASecretAAD, factor
// webauthn) and answers the PublicKeyCredentialCreationOptions for the
// browser (Result.Passkey). A public URL that cannot be a relying party is
// ErrPasskeysUnavailable; a tenant whose MFA policy is off, ErrMFAOff.
func (h beginPasskeyRegistrationHandler) Handle(ctx context.Context, cmd BeginPasskeyRegistration) (Result, error) {
	p := cmd.Principal
	if _, err := domain.SelfOrPermission(p, cmd.Tenant, cmd.UserID, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	if h.e.passkeys == nil {
		return Result{}, ErrPasskeysUnavailable
	}
	aad := events.MFASecretAAD(cmd.Tenant, cmd.UserID, events.FactorWebAuthn)
	return h.e.run(ctx, cmd.Request, actorOf(p), cmd.idParts(), func(ctx context.Context, u unit) (Result, error) {
		t, err := u.activeTenant(ctx, cmd.Tenant)
		if err != nil {
			return Result{}, err
		}
		usr, err := u.user(ctx, cmd.Tenant, cmd.UserID)
		if err != nil {
			return Result{}, err
		}
		if t.Settings().MFAPolicy().Policy == events.MFAOff {
			return Result{}, ErrMFAOff
		}
		if rep, ok := u.Replay(); ok {
			d, err := replayed[events.UserPasskeyRegistrationStarted](rep)
			if err != nil {
				return Result{}, err
			}
			pending, err := openPasskeyPending(h.e.kek, d.Ceremony, aad)
			if err != nil {
				return Result{}, err
			}
			return Result{ID: cmd.UserID, Version: rep.Version(usr.Kind(), cmd.UserID), Sequence: rep.Sequence, Changed: true, Replayed: true,
				Passkey: &PasskeyOutcome{Options: pending.Options}}, nil
		}
		if err := usr.RequireExists(); err != nil {
			return Result{}, err
		}
		pu, err := h.e.passkeyUser(ctx, cmd.Tenant, usr, cmd.UserID)
		if err != nil {
			return Result{}, err
		}
		opts, ceremony, err := h.e.passkeys.BeginRegistration(pu)
		if err != nil {
			return Result{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		state, err := ceremony.MarshalBinary()
		if err != nil {
			return Result{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		plain, err := json.Marshal(passkeyPending{Ceremony: state, Options: opts})
		if err != nil {
			return Result{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		sealed, err := h.e.kek.Seal(plain, aad)
		clear(plain)
		if err != nil {
			return Result{}, fault.Wrap(fault.Internal, err, "seal passkey ceremony")
		}
		if err := usr.StartPasskeyRegistration(sealed); err != nil {
			return Result{}, err
		}
		res, err := commitOne(ctx, u, usr, cmd.UserID)
		if err != nil {
			return Result{}, err
		}
		res.Passkey = &PasskeyOutcome{Options: opts}
		return res, nil
	})
}

// openPasskeyPending opens the sealed registration under way.
func openPasskeyPending(kek *events.Keyring, sealed events.Sealed, aad []byte) (passkeyPending, error) {
	plain, err := kek.Open(sealed, aad)
	if err != nil {
		return passkeyPending{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	defer clear(plain)
	var p passkeyPending
	if err := json.Unmarshal(plain, &p); err != nil {
		return passkeyPending{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	return p, nil
}

// relyingPartyName is the name authenticators show for the platform's
// passkeys: the public URL's host.
func relyingPartyName(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "authstream"
}
