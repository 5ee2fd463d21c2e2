package authn

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/authstream/authstream/libs/fault"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Password hashes imported from another provider, in modular-crypt or PHC
// string form. Bcrypt hashes ($2a$, $2b$, $2y$) are kept as they are and
// never need a rehash; the others are verified at the user's first login
// and then replaced by a bcrypt hash (NeedsRehash).
//
// Accepted forms (the base64 parts in the standard alphabet without
// padding, or passlib's, which writes '.' for '+'):
//
//	$2a$10$<53 characters>                         bcrypt
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
//	$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>
//	$pbkdf2-sha256$<iterations>$<salt>$<hash>      (passlib)
//	$pbkdf2-sha256$i=<iterations>[,l=<len>]$<salt>$<hash>
//
// The parameters are bounded so that one imported hash cannot make a login
// spend more than the limits below in memory or time.
const (
	// MaxImportedHashLen is the longest imported hash string accepted.
	MaxImportedHashLen = 512
	// maxArgon2Memory is the largest argon2id memory, in KiB (256 MiB).
	maxArgon2Memory = 256 << 10
	maxArgon2Time   = 16
	maxArgon2Lanes  = 16
	// maxScryptMemory bounds scrypt's 128·N·r bytes (256 MiB).
	maxScryptMemory = 256 << 20
	maxScryptP      = 16
	// maxPBKDF2Iterations bounds PBKDF2-SHA256 (Django's default is under a
	// million).
	maxPBKDF2Iterations = 5_000_000
	minDigestLen        = 16
	maxDigestLen        = 128
)

// ErrInvalidImportedHash is what CheckImportedHash returns for a hash it
// does not accept. Its message says what is wrong with the hash's form and
// never repeats the hash.
var ErrInvalidImportedHash = fault.New(fault.Invalid, "invalid-password-hash", "password hash is not in an accepted form")

// importedHash is a parsed non-bcrypt hash: the scheme, its parameters,
// the salt and the digest to compare with.
type importedHash struct {
	scheme string
	verify func(password []byte) []byte
	digest []byte
}

// CheckImportedHash returns nil when hash is a password hash the platform
// can verify: bcrypt in $2a$/$2b$/$2y$ form, argon2id, scrypt or
// PBKDF2-SHA256 in the forms listed above, within the parameter bounds.
// Otherwise it returns an error wrapping ErrInvalidImportedHash whose
// message names the problem (never the hash).
func CheckImportedHash(hash string) error {
	if len(hash) > MaxImportedHashLen {
		return invalidHash("is longer than %d bytes", MaxImportedHashLen)
	}
	if isBcrypt(hash) {
		if _, err := bcrypt.Cost([]byte(hash)); err != nil || !bcryptForm.MatchString(hash) {
			return invalidHash("is not a well-formed bcrypt hash")
		}
		return nil
	}
	_, err := parseImported(hash)
	return err
}

// NoPassword is the stored hash of a user imported without a password: no
// password matches it (Compare spends a dummy comparison and answers
// ErrMismatch), so the user signs in only once an administrator has set a
// password.
const NoPassword = "!"

// NeedsRehash reports whether hash is neither a bcrypt hash nor
// NoPassword: a hash imported in another form, which the login path
// replaces by a bcrypt hash once the password has matched it.
func NeedsRehash(hash []byte) bool { return !isBcrypt(string(hash)) && string(hash) != NoPassword }

// bcryptForm is a bcrypt hash: version, two-digit cost, then 22
// characters of salt and 31 of digest in bcrypt's base64 alphabet.
var bcryptForm = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

// isBcrypt reports whether hash has a bcrypt prefix this package accepts.
func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

// compareImported compares password with a non-bcrypt hash in constant
// time: nil on a match, ErrMismatch otherwise, a fault.Internal for a hash
// that does not parse.
func compareImported(hash []byte, password string) error {
	h, err := parseImported(string(hash))
	if err != nil {
		return fault.New(fault.Internal, "bad-password-hash", "stored password hash is malformed")
	}
	if subtle.ConstantTimeCompare(h.verify([]byte(password)), h.digest) != 1 {
		return ErrMismatch
	}
	return nil
}

// parseImported parses a non-bcrypt hash.
func parseImported(hash string) (importedHash, error) {
	parts := strings.Split(hash, "$")
	if len(parts) < 2 || parts[0] != "" {
		return importedHash{}, invalidHash("must start with $ and a scheme")
	}
	switch parts[1] {
	case "argon2id":
		return parseArgon2id(parts)
	case "scrypt":
		return parseScrypt(parts)
	case "pbkdf2-sha256":
		return parsePBKDF2(parts)
	case "2a", "2b", "2y":
		return importedHash{}, invalidHash("is not a well-formed bcrypt hash")
	}
	return importedHash{}, invalidHash("has an unsupported scheme: use bcrypt, argon2id, scrypt or pbkdf2-sha256")
}

// parseArgon2id parses $argon2id$v=19$m=..,t=..,p=..$salt$hash.
func parseArgon2id(parts []string) (importedHash, error) {
	if len(parts) != 6 {
		return importedHash{}, invalidHash("argon2id: want $argon2id$v=19$m=,t=,p=$salt$hash")
	}
	if parts[2] != "v=19" {
		return importedHash{}, invalidHash("argon2id: only version 19 is supported")
	}
	params, err := parseParams(parts[3], []string{"m", "t", "p"})
	if err != nil {
		return importedHash{}, invalidHash("argon2id: %s", err)
	}
	m, t, p := params["m"], params["t"], params["p"]
	switch {
	case m < 8*p || m > maxArgon2Memory:
		return importedHash{}, invalidHash("argon2id: memory must be 8·p to %d KiB", maxArgon2Memory)
	case t < 1 || t > maxArgon2Time:
		return importedHash{}, invalidHash("argon2id: time must be 1 to %d", maxArgon2Time)
	case p < 1 || p > maxArgon2Lanes:
		return importedHash{}, invalidHash("argon2id: parallelism must be 1 to %d", maxArgon2Lanes)
	}
	salt, digest, err := saltAndDigest("argon2id", parts[4], parts[5])
	if err != nil {
		return importedHash{}, err
	}
	return importedHash{scheme: "argon2id", digest: digest, verify: func(pw []byte) []byte {
		return argon2.IDKey(pw, salt, uint32(t), uint32(m), uint8(p), uint32(len(digest))) //nolint:gosec // G115: bounded above
	}}, nil
}

// parseScrypt parses $scrypt$ln=..,r=..,p=..$salt$hash.
func parseScrypt(parts []string) (importedHash, error) {
	if len(parts) != 5 {
		return importedHash{}, invalidHash("scrypt: want $scrypt$ln=,r=,p=$salt$hash")
	}
	params, err := parseParams(parts[2], []string{"ln", "r", "p"})
	if err != nil {
		return importedHash{}, invalidHash("scrypt: %s", err)
	}
	ln, r, p := params["ln"], params["r"], params["p"]
	switch {
	case ln < 1 || ln > 24:
		return importedHash{}, invalidHash("scrypt: ln must be 1 to 24")
	case r < 1 || p < 1 || p > maxScryptP:
		return importedHash{}, invalidHash("scrypt: r must be positive and p 1 to %d", maxScryptP)
	case r > maxScryptMemory/(128<<ln):
		return importedHash{}, invalidHash("scrypt: 128·N·r must be at most %d bytes", maxScryptMemory)
	}
	salt, digest, err := saltAndDigest("scrypt", parts[3], parts[4])
	if err != nil {
		return importedHash{}, err
	}
	return importedHash{scheme: "scrypt", digest: digest, verify: func(pw []byte) []byte {
		out, err := scrypt.Key(pw, salt, 1<<ln, int(r), int(p), len(digest)) //nolint:gosec // G115: r and p are bounded above
		// The parameters were checked: an error is never returned.
		if err != nil {
			return nil
		}
		return out
	}}, nil
}

// parsePBKDF2 parses $pbkdf2-sha256$<iterations>$salt$hash (passlib) and
// $pbkdf2-sha256$i=<iterations>[,l=<len>]$salt$hash.
func parsePBKDF2(parts []string) (importedHash, error) {
	if len(parts) != 5 {
		return importedHash{}, invalidHash("pbkdf2-sha256: want $pbkdf2-sha256$<iterations>$salt$hash")
	}
	var iter uint64
	if strings.HasPrefix(parts[2], "i=") {
		params, err := parseParams(parts[2], []string{"i"}, "l")
		if err != nil {
			return importedHash{}, invalidHash("pbkdf2-sha256: %s", err)
		}
		iter = params["i"]
	} else {
		n, err := strconv.ParseUint(parts[2], 10, 32)
		if err != nil {
			return importedHash{}, invalidHash("pbkdf2-sha256: iterations must be a decimal number")
		}
		iter = n
	}
	if iter < 1 || iter > maxPBKDF2Iterations {
		return importedHash{}, invalidHash("pbkdf2-sha256: iterations must be 1 to %d", maxPBKDF2Iterations)
	}
	salt, digest, err := saltAndDigest("pbkdf2-sha256", parts[3], parts[4])
	if err != nil {
		return importedHash{}, err
	}
	return importedHash{scheme: "pbkdf2-sha256", digest: digest, verify: func(pw []byte) []byte {
		out, err := pbkdf2.Key(sha256.New, string(pw), salt, int(iter), len(digest)) //nolint:gosec // G115: iter is bounded above
		// Only for lengths FIPS mode refuses.
		if err != nil {
			return nil
		}
		return out
	}}, nil
}

// parseParams parses "k=v,k=v" with decimal values: every key of want
// exactly once, and the keys of optional at most once (their values are
// dropped: a PBKDF2 digest's length is its own).
func parseParams(s string, want []string, optional ...string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("parameter %q has no value", k)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parameter %s is not a decimal number", k)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("parameter %s appears twice", k)
		}
		if !slices.Contains(want, k) && !slices.Contains(optional, k) {
			return nil, fmt.Errorf("parameter %s is unknown", k)
		}
		out[k] = n
	}
	for _, k := range want {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("parameter %s is missing", k)
		}
	}
	return out, nil
}

// saltAndDigest decodes the salt and digest parts.
func saltAndDigest(scheme, salt, digest string) ([]byte, []byte, error) {
	s, err := decodeB64(salt)
	if err != nil || len(s) == 0 {
		return nil, nil, invalidHash("%s: salt is not base64", scheme)
	}
	d, err := decodeB64(digest)
	if err != nil {
		return nil, nil, invalidHash("%s: hash is not base64", scheme)
	}
	if len(d) < minDigestLen || len(d) > maxDigestLen {
		return nil, nil, invalidHash("%s: hash must be %d to %d bytes", scheme, minDigestLen, maxDigestLen)
	}
	return s, d, nil
}

// decodeB64 decodes standard base64 with or without padding, and passlib's
// variant, which writes '.' for '+'.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.ReplaceAll(s, ".", "+"), "=")
	return base64.RawStdEncoding.DecodeString(s)
}

func invalidHash(format string, args ...any) error {
	return &fault.Error{
		Code: ErrInvalidImportedHash.Code, Reason: ErrInvalidImportedHash.Reason,
		Message: "password hash " + fmt.Sprintf(format, args...), Err: ErrInvalidImportedHash,
	}
}
