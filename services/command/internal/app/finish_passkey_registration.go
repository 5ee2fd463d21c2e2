package app

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// ErrInvalidPasskey: the registration's response does not answer the
// ceremony under way (another challenge, origin or relying party, an
// expired ceremony, malformed JSON or base64, a bad attestation).
var ErrInvalidPasskey = fault.New(fault.Invalid, "invalid-passkey", "the passkey response does not answer the registration under way")

// FinishPasskeyRegistration registers the passkey that answers the
// registration under way: the user themself, or a caller with
// users:write.
type FinishPasskeyRegistration struct {
	Request
	Tenant string
	UserID string
	// Response is the JSON of the PublicKeyCredential that
	// navigator.credentials.create returned.
	Response json.RawMessage
	// Name is the user's label of the passkey; optional.
	Name string
}

// PasskeyOutcome is what the passkey commands answer.
type PasskeyOutcome struct {
	// Options are the PublicKeyCredentialCreationOptions of
	// BeginPasskeyRegistration, for navigator.credentials.create.
	Options json.RawMessage
	// CredentialID is the passkey FinishPasskeyRegistration registered
	// (base64url).
	CredentialID string
}

type finishPasskeyRegistrationHandler struct{ e *engine }

// Handle opens the sealed ceremony of the registration under way, verifies
// the response against it (challenge, origin, relying party id,
// attestation) and appends user.passkey_registered with the credential's
// public parts (Result.Passkey.CredentialID). Without a registration under
// way it is domain.ErrNoEnrolment; a response that does not verify,
// ErrInvalidPasskey; a passkey the user holds already,
// domain.ErrPasskeyExists.
func (h finishPasskeyRegistrationHandler) Handle(ctx context.Context, cmd FinishPasskeyRegistration) (Result, error) {
	p := cmd.Principal
	if _, err := domain.SelfOrPermission(p, cmd.Tenant, cmd.UserID, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	if h.e.passkeys == nil {
		return Result{}, ErrPasskeysUnavailable
	}
	var credentialID string
	res, err := runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(ctx context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		if err := usr.RequireExists(); err != nil {
			return nil, err
		}
		sealed := usr.PendingPasskey()
		if sealed.IsZero() {
			return nil, domain.ErrNoEnrolment
		}
		pending, err := openPasskeyPending(h.e.kek, sealed, events.MFASecretAAD(cmd.Tenant, cmd.UserID, events.FactorWebAuthn))
		if err != nil {
			return nil, err
		}
		var ceremony authn.PasskeyCeremony
		if err := ceremony.UnmarshalBinary(pending.Ceremony); err != nil {
			return nil, fault.Wrap(fault.Internal, err, "internal error")
		}
		pu, err := h.e.passkeyUser(ctx, cmd.Tenant, usr, cmd.UserID)
		if err != nil {
			return nil, err
		}
		cred, err := h.e.passkeys.FinishRegistration(pu, ceremony, cmd.Response)
		switch {
		case errors.Is(err, authn.ErrInvalidPasskey):
			return nil, &fault.Error{Code: fault.Invalid, Reason: ErrInvalidPasskey.Reason, Message: ErrInvalidPasskey.Message, Err: err}
		case err != nil:
			return nil, fault.Wrap(fault.Internal, err, "internal error")
		}
		ev := events.UserPasskeyRegistered{
			CredentialID: base64.RawURLEncoding.EncodeToString(cred.ID),
			PublicKey:    base64.RawURLEncoding.EncodeToString(cred.PublicKey),
			SignCount:    cred.SignCount, Transports: cred.Transports, Name: cmd.Name, Format: cred.Format,
			BackupEligible: cred.BackupEligible, BackupState: cred.BackupState, UserVerified: cred.UserVerified,
		}
		if len(cred.AAGUID) == 16 {
			ev.AAGUID = formatUUID(cred.AAGUID)
		} else if len(cred.AAGUID) != 0 {
			return nil, &fault.Error{Code: fault.Invalid, Reason: ErrInvalidPasskey.Reason, Message: ErrInvalidPasskey.Message,
				Err: fmt.Errorf("aaguid of %d bytes", len(cred.AAGUID))}
		}
		credentialID = ev.CredentialID
		return nil, usr.RegisterPasskey(ev)
	})
	if err != nil {
		return Result{}, err
	}
	if res.Replayed && credentialID == "" {
		// The answer of a request sent again: the passkey it registered.
		rep, err := h.e.store.Load(ctx, cmd.Tenant, events.AggregateUser, cmd.UserID)
		if err != nil {
			return Result{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		if envs := rep.Envelopes(); res.Version > 0 && res.Version <= uint64(len(envs)) {
			if d, err := events.Decode(envs[res.Version-1]); err == nil {
				if r, ok := d.(events.UserPasskeyRegistered); ok {
					credentialID = r.CredentialID
				}
			}
		}
	}
	res.Passkey = &PasskeyOutcome{CredentialID: credentialID}
	return res, nil
}

// formatUUID writes 16 bytes in the UUID form (8-4-4-4-12 hex digits).
func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
