package authn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// PasskeyTimeout is how long a WebAuthn ceremony stays open: the
// browser's timeout and the expiry of the ceremony's state.
const PasskeyTimeout = 5 * time.Minute

// maxPasskeyResponse bounds the JSON of a ceremony's response: a
// credential with its attestation is a few kilobytes.
const maxPasskeyResponse = 32 << 10

// MaxPasskeyHandle is the longest user handle WebAuthn allows.
const MaxPasskeyHandle = 64

// ErrPasskeysUnavailable is returned by NewPasskeys when the public URL
// cannot be a WebAuthn relying party: its host is an IP address (a
// relying party id is a domain name) or it is not an absolute http(s)
// URL.
var ErrPasskeysUnavailable = errors.New("passkeys need a public url whose host is a domain name")

// ErrInvalidPasskey is returned when a ceremony's response does not verify:
// malformed JSON or base64, another challenge, origin or relying party,
// an expired ceremony, a credential the user does not hold, a bad
// signature or attestation. The cause is wrapped for logs; callers answer
// all of them alike.
var ErrInvalidPasskey = errors.New("invalid passkey response")

// Passkeys is the WebAuthn relying party of the platform's public URL:
// its host is the relying party id, its origin the only origin a
// ceremony's client data may name. It does the protocol only; the
// ceremony's state (PasskeyCeremony) and the credentials are the caller's
// to keep.
type Passkeys struct {
	w      *webauthn.WebAuthn
	rpID   string
	origin string
}

// NewPasskeys returns the relying party of publicURL (AUTH_PUBLIC_URL),
// shown to users as displayName. A public URL whose host is an IP address
// (or that is not an absolute http or https URL) is
// ErrPasskeysUnavailable: browsers refuse IP addresses as relying party
// ids.
func NewPasskeys(publicURL, displayName string) (*Passkeys, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, ErrPasskeysUnavailable
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return nil, ErrPasskeysUnavailable
	}
	origin := u.Scheme + "://" + strings.ToLower(u.Host)
	timeout := webauthn.TimeoutConfig{Enforce: true, Timeout: PasskeyTimeout, TimeoutUVD: PasskeyTimeout}
	w, err := webauthn.New(&webauthn.Config{
		RPID: host, RPDisplayName: displayName, RPOrigins: []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts:              webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party: %w", err)
	}
	return &Passkeys{w: w, rpID: host, origin: origin}, nil
}

// RPID returns the relying party id: the public URL's host.
func (p *Passkeys) RPID() string { return p.rpID }

// Origin returns the one origin ceremonies are accepted from.
func (p *Passkeys) Origin() string { return p.origin }

// PasskeyUser is the account a ceremony is about: Handle is the WebAuthn
// user handle (the user id: opaque, no personal data, at most 64 bytes),
// Name what the authenticator shows, Credentials the passkeys the user
// holds.
type PasskeyUser struct {
	Handle      []byte
	Name        string
	Credentials []PasskeyCredential
}

// PasskeyCredential is a passkey a user holds: public parts only.
type PasskeyCredential struct {
	ID             []byte
	PublicKey      []byte // COSE_Key
	SignCount      uint32
	Transports     []string
	AAGUID         []byte
	BackupEligible bool
	BackupState    bool
	UserVerified   bool // the registration verified the user
	Format         string
}

// PasskeyCeremony is the state of a ceremony between its options and its
// response: the challenge the response must sign, the user and
// credentials it is for, its expiry. It is an opaque value for the
// caller to keep where the user cannot alter it (sealed); Challenge is a
// secret of the ceremony and must never be logged.
type PasskeyCeremony struct {
	session webauthn.SessionData
}

// MarshalBinary encodes the ceremony for sealing.
func (c PasskeyCeremony) MarshalBinary() ([]byte, error) { return json.Marshal(c.session) }

// UnmarshalBinary decodes a ceremony that MarshalBinary encoded.
func (c *PasskeyCeremony) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, &c.session) }

// Challenge returns the ceremony's challenge (base64url), which the
// response's client data must carry.
func (c PasskeyCeremony) Challenge() string { return c.session.Challenge }

// Expires returns when the ceremony ends.
func (c PasskeyCeremony) Expires() time.Time { return c.session.Expires }

// waUser adapts a PasskeyUser to the library's User.
type waUser struct {
	u     PasskeyUser
	creds []webauthn.Credential
}

func newWAUser(u PasskeyUser) *waUser {
	w := &waUser{u: u}
	for _, c := range u.Credentials {
		wc := webauthn.Credential{
			ID: bytes.Clone(c.ID), PublicKey: bytes.Clone(c.PublicKey), AttestationFormat: c.Format,
			Flags: webauthn.CredentialFlags{
				UserPresent: true, UserVerified: c.UserVerified, BackupEligible: c.BackupEligible, BackupState: c.BackupState,
			},
			Authenticator: webauthn.Authenticator{AAGUID: bytes.Clone(c.AAGUID), SignCount: c.SignCount},
		}
		for _, t := range c.Transports {
			wc.Transport = append(wc.Transport, protocol.AuthenticatorTransport(t))
		}
		w.creds = append(w.creds, wc)
	}
	return w
}

func (w *waUser) WebAuthnID() []byte                         { return w.u.Handle }
func (w *waUser) WebAuthnName() string                       { return w.u.Name }
func (w *waUser) WebAuthnDisplayName() string                { return w.u.Name }
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// BeginRegistration starts the registration of a new passkey of u: the
// PublicKeyCredentialCreationOptions for the browser (JSON, the
// "publicKey" member of navigator.credentials.create's argument) and the
// ceremony to keep until FinishRegistration. The passkey is asked to be
// discoverable (resident), so that it can sign in without a username, and
// u's passkeys are excluded (an authenticator holding one refuses to make
// another).
func (p *Passkeys) BeginRegistration(u PasskeyUser) (json.RawMessage, PasskeyCeremony, error) {
	if len(u.Handle) == 0 || len(u.Handle) > MaxPasskeyHandle {
		return nil, PasskeyCeremony{}, fmt.Errorf("passkey user handle of %d bytes", len(u.Handle))
	}
	wu := newWAUser(u)
	exclude := make([]protocol.CredentialDescriptor, 0, len(wu.creds))
	for _, c := range wu.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, session, err := p.w.BeginRegistration(wu,
		webauthn.WithExclusions(exclude),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementPreferred),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
	)
	if err != nil {
		return nil, PasskeyCeremony{}, fmt.Errorf("begin passkey registration: %w", err)
	}
	opts, err := json.Marshal(creation.Response)
	if err != nil {
		return nil, PasskeyCeremony{}, fmt.Errorf("passkey creation options: %w", err)
	}
	return opts, PasskeyCeremony{session: *session}, nil
}

// FinishRegistration verifies response, the JSON of the
// PublicKeyCredential that navigator.credentials.create returned, against
// the ceremony c of u, and returns the new passkey (public parts).
// Anything that does not verify is ErrInvalidPasskey.
func (p *Passkeys) FinishRegistration(u PasskeyUser, c PasskeyCeremony, response []byte) (PasskeyCredential, error) {
	if len(response) > maxPasskeyResponse {
		return PasskeyCredential{}, fmt.Errorf("%w: response of %d bytes", ErrInvalidPasskey, len(response))
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return PasskeyCredential{}, invalidPasskey(err)
	}
	cred, err := p.w.CreateCredential(newWAUser(u), c.session, parsed)
	if err != nil {
		return PasskeyCredential{}, invalidPasskey(err)
	}
	out := PasskeyCredential{
		ID: cred.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		AAGUID: cred.Authenticator.AAGUID, Format: cred.AttestationFormat,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, UserVerified: cred.Flags.UserVerified,
	}
	for _, t := range cred.Transport {
		out.Transports = append(out.Transports, string(t))
	}
	return out, nil
}

// BeginLogin starts a sign-in with one of u's passkeys (a second factor:
// the user is known). With u nil it starts a discoverable sign-in, which
// any passkey of the relying party may answer (passwordless: the response
// names its user). It returns the PublicKeyCredentialRequestOptions for
// the browser (JSON, the "publicKey" member of
// navigator.credentials.get's argument) and the ceremony to keep until
// FinishLogin. A second factor prefers user verification (a response says
// whether it was done); a discoverable sign-in requires it, since the
// passkey is then the only credential: the response of an authenticator
// that did not verify its user does not verify.
func (p *Passkeys) BeginLogin(u *PasskeyUser) (json.RawMessage, PasskeyCeremony, error) {
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
		err       error
	)
	uv := webauthn.WithUserVerification(protocol.VerificationPreferred)
	if u == nil {
		assertion, session, err = p.w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	} else {
		assertion, session, err = p.w.BeginLogin(newWAUser(*u), uv)
	}
	if err != nil {
		return nil, PasskeyCeremony{}, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	opts, err := json.Marshal(assertion.Response)
	if err != nil {
		return nil, PasskeyCeremony{}, fmt.Errorf("passkey request options: %w", err)
	}
	return opts, PasskeyCeremony{session: *session}, nil
}

// PasskeyAssertion is a parsed, not yet verified response of a sign-in:
// the credential it names and the user handle the authenticator returned
// (empty unless the passkey is discoverable).
type PasskeyAssertion struct {
	parsed     *protocol.ParsedCredentialAssertionData
	Credential []byte
	UserHandle []byte
}

// ParseAssertion parses response, the JSON of the PublicKeyCredential
// that navigator.credentials.get returned, so that the caller can find
// the user it names before FinishLogin verifies it. Malformed input is
// ErrInvalidPasskey.
func ParseAssertion(response []byte) (PasskeyAssertion, error) {
	if len(response) > maxPasskeyResponse {
		return PasskeyAssertion{}, fmt.Errorf("%w: response of %d bytes", ErrInvalidPasskey, len(response))
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return PasskeyAssertion{}, invalidPasskey(err)
	}
	return PasskeyAssertion{parsed: parsed, Credential: parsed.RawID, UserHandle: parsed.Response.UserHandle}, nil
}

// PasskeyUse is what a verified sign-in response says: the passkey used,
// the signature counter the authenticator reports (0 when it keeps none),
// and whether the user was verified (a PIN, a biometric).
type PasskeyUse struct {
	Credential   []byte
	SignCount    uint32
	UserVerified bool
}

// FinishLogin verifies the assertion a against the ceremony c for u: the
// challenge, origin and relying party id, that the credential is one of
// u's, the user handle when there is one, and the signature. Whether its
// counter went back, and whether its challenge was used before, are the
// caller's to decide from the state it keeps. Anything that does not
// verify is ErrInvalidPasskey.
func (p *Passkeys) FinishLogin(u PasskeyUser, c PasskeyCeremony, a PasskeyAssertion) (PasskeyUse, error) {
	if a.parsed == nil {
		return PasskeyUse{}, ErrInvalidPasskey
	}
	var (
		cred *webauthn.Credential
		err  error
	)
	wu := newWAUser(u)
	if len(c.session.UserID) == 0 {
		cred, err = p.w.ValidateDiscoverableLogin(func(_, handle []byte) (webauthn.User, error) {
			if !bytes.Equal(handle, u.Handle) {
				return nil, errors.New("user handle of another user")
			}
			return wu, nil
		}, c.session, a.parsed)
	} else {
		cred, err = p.w.ValidateLogin(wu, c.session, a.parsed)
	}
	if err != nil {
		return PasskeyUse{}, invalidPasskey(err)
	}
	return PasskeyUse{
		Credential:   cred.ID,
		SignCount:    a.parsed.Response.AuthenticatorData.Counter,
		UserVerified: a.parsed.Response.AuthenticatorData.Flags.HasUserVerified(),
	}, nil
}

// invalidPasskey wraps a library error as ErrInvalidPasskey, with the
// library's detail for logs (never a secret: the library names what
// failed, not the challenge).
func invalidPasskey(err error) error {
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.Details != "" {
		return fmt.Errorf("%w: %s: %s", ErrInvalidPasskey, perr.Type, perr.Details)
	}
	return fmt.Errorf("%w: %s", ErrInvalidPasskey, err.Error())
}
