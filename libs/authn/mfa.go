package authn

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters of every factor (RFC 6238 defaults, which every
// authenticator app supports): 30-second steps, six digits, HMAC-SHA1, a
// 160-bit seed.
const (
	TOTPPeriod     = 30
	TOTPDigits     = 6
	totpSecretSize = 20
)

// ErrInvalidCode is returned by TOTPStep when a code is malformed or
// matches none of the accepted steps.
var ErrInvalidCode = errors.New("invalid code")

// TOTPKey is a new TOTP factor: the seed in base32 (what authenticator
// apps take by hand) and the otpauth:// URI of Google Authenticator's Key
// URI format (what they take from a QR code).
type TOTPKey struct {
	Secret string
	URI    string
}

// NewTOTPKey draws a new TOTP seed for account at issuer (the names an
// authenticator app shows).
func NewTOTPKey(issuer, account string) (TOTPKey, error) {
	k, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: TOTPPeriod, SecretSize: totpSecretSize,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return TOTPKey{}, fmt.Errorf("totp key: %w", err)
	}
	return TOTPKey{Secret: k.Secret(), URI: k.URL()}, nil
}

// TOTPCode returns the code of secret at t: what an authenticator app
// shows (tests and benchmarks compute codes with it).
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totpOpts())
}

// TOTPStep checks a code against secret at now and returns the time step
// it belongs to (Unix time / TOTPPeriod). Codes of the current step and of
// the one before and after it are accepted (one step of clock drift each
// way, RFC 6238 section 5.2); anything else, including a code that is not
// six digits, is ErrInvalidCode. Replay protection is the caller's: a step
// once accepted must not be accepted again (RFC 6238 section 5.2), which
// the caller records.
func TOTPStep(secret, code string, now time.Time) (int64, error) {
	if len(code) != TOTPDigits || strings.Trim(code, "0123456789") != "" {
		return 0, ErrInvalidCode
	}
	step := now.Unix() / TOTPPeriod
	var found int64
	ok := 0
	for _, s := range []int64{step - 1, step, step + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*TOTPPeriod, 0), totpOpts())
		if err != nil {
			return 0, fmt.Errorf("totp code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found, ok = s, 1
		}
	}
	if ok == 0 {
		return 0, ErrInvalidCode
	}
	return found, nil
}

func totpOpts() totp.ValidateOpts {
	return totp.ValidateOpts{Period: TOTPPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
}

// RecoveryCodes is how many recovery codes a set holds.
const RecoveryCodes = 10

// recoveryBytes is the entropy of a recovery code: 80 bits, so that the
// unsalted SHA-256 under which it is stored resists an offline search.
const recoveryBytes = 10

// NewRecoveryCodes returns RecoveryCodes new one-time codes, each 16
// base32 letters and digits in four groups ("abcd-efgh-ijkl-mnop"), and
// their hashes (HashRecoveryCode), in the same order. Store only the
// hashes; show the codes once.
func NewRecoveryCodes() (codes, hashes []string) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for range RecoveryCodes {
		b := make([]byte, recoveryBytes)
		_, _ = rand.Read(b)
		s := strings.ToLower(enc.EncodeToString(b))
		code := s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		codes = append(codes, code)
		hashes = append(hashes, HashRecoveryCode(code))
	}
	return codes, hashes
}

// HashRecoveryCode returns the hex SHA-256 of a recovery code in its
// normal form (lower case, without spaces or dashes), so that a code typed
// in capitals or without its dashes matches. A code carries 80 random
// bits: a fast hash is enough, as for refresh tokens.
func HashRecoveryCode(code string) string {
	norm := strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, code)
	sum := sha256.Sum256([]byte(norm))
	return hex.EncodeToString(sum[:])
}

// LooksLikeRecoveryCode reports whether code has the shape of a recovery
// code (16 base32 characters, dashes and spaces aside), as opposed to a
// TOTP code.
func LooksLikeRecoveryCode(code string) bool {
	n := 0
	for _, r := range code {
		switch {
		case r == '-' || r == ' ':
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '2' && r <= '7':
			n++
		default:
			return false
		}
	}
	return n == 16
}

// TOTPURI returns the otpauth:// URI of a TOTP seed (base32) for account
// at issuer, as NewTOTPKey makes it.
func TOTPURI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", "30")
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: v.Encode()}
	return u.String()
}

// TOTPQRCodeSize is the width and height, in pixels, of TOTPQRCode's
// image.
const TOTPQRCodeSize = 256

// TOTPQRCode renders an otpauth:// URI as a QR code (a PNG of
// TOTPQRCodeSize pixels square) and returns it as a data: URI, for a page
// to show in an <img> without a script or a request of its own.
func TOTPQRCode(uri string) (string, error) {
	k, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return "", fmt.Errorf("totp qr code: %w", err)
	}
	img, err := k.Image(TOTPQRCodeSize, TOTPQRCodeSize)
	if err != nil {
		return "", fmt.Errorf("totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("totp qr code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
