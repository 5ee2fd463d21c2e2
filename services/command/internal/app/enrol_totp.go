package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// EnrolTOTP starts the enrolment of a TOTP authenticator for a user: the
// user themself, or a caller with users:write.
type EnrolTOTP struct {
	Request
	Tenant string
	UserID string
}

// TOTPEnrolment is what EnrolTOTP answers: the seed in base32 and its
// otpauth:// URI, for the user's authenticator app. They are in this
// answer (and that of a replay of the request) only; the log holds the
// seed sealed.
type TOTPEnrolment struct {
	Secret string
	URI    string
	// QRCode is URI as a QR code: a data: URI of a PNG image.
	QRCode string
}

// totpEnrolment returns the answer of an enrolment of secret, its URI
// rendered as a QR code on the server.
func totpEnrolment(secret, uri string) (*TOTPEnrolment, error) {
	qr, err := authn.TOTPQRCode(uri)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "internal error")
	}
	return &TOTPEnrolment{Secret: secret, URI: uri, QRCode: qr}, nil
}

// ErrMFAOff: the tenant's MFA policy is off, so no second factor is
// enrolled.
var ErrMFAOff = fault.New(fault.Conflict, "mfa-off", "second factors are turned off for this tenant (settings mfa.policy)")

type enrolTOTPHandler struct{ e *engine }

// Handle appends user.mfa_enrolment_started with a new seed sealed with the
// key-encryption key (events.MFASecretAAD); the factor counts once
// ConfirmTOTP has seen a code of it. A user holding a TOTP factor already
// gets domain.ErrFactorEnrolled; a tenant whose MFA policy is off,
// ErrMFAOff.
func (h enrolTOTPHandler) Handle(ctx context.Context, cmd EnrolTOTP) (Result, error) {
	p := cmd.Principal
	if _, err := domain.SelfOrPermission(p, cmd.Tenant, cmd.UserID, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	aad := events.MFASecretAAD(cmd.Tenant, cmd.UserID, events.FactorTOTP)
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
		issuer := t.Settings().DisplayName
		if issuer == "" {
			issuer = t.Name()
		}
		if rep, ok := u.Replay(); ok {
			d, err := replayed[events.UserMFAEnrolmentStarted](rep)
			if err != nil {
				return Result{}, err
			}
			seed, err := h.e.kek.Open(d.Secret, aad)
			if err != nil {
				return Result{}, fault.Wrap(fault.Internal, err, "internal error")
			}
			res := Result{ID: cmd.UserID, Version: rep.Version(usr.Kind(), cmd.UserID), Sequence: rep.Sequence, Changed: true, Replayed: true}
			username, err := h.e.openUsername(ctx, cmd.Tenant, usr)
			if err != nil {
				return Result{}, fault.Wrap(fault.Internal, err, "internal error")
			}
			res.TOTP, err = totpEnrolment(string(seed), authn.TOTPURI(issuer, username, string(seed)))
			return res, err
		}
		if err := usr.RequireExists(); err != nil {
			return Result{}, err
		}
		username, err := h.e.openUsername(ctx, cmd.Tenant, usr)
		if err != nil {
			return Result{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		key, err := authn.NewTOTPKey(issuer, username)
		if err != nil {
			return Result{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		sealed, err := h.e.kek.Seal([]byte(key.Secret), aad)
		if err != nil {
			return Result{}, fault.Wrap(fault.Internal, err, "seal totp seed")
		}
		if err := usr.StartTOTPEnrolment(sealed); err != nil {
			return Result{}, err
		}
		res, err := commitOne(ctx, u, usr, cmd.UserID)
		if err != nil {
			return Result{}, err
		}
		res.TOTP, err = totpEnrolment(key.Secret, key.URI)
		return res, err
	})
}
