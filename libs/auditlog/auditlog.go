// Package auditlog is the contract of each tenant's verifiable log
// (docs/auditing.md): the leaves of its RFC 9162 Merkle tree, its origin,
// and its checkpoints, signed notes in the C2SP checkpoint format with a
// per-tenant Ed25519 key. The projector signs with it, the query service
// serves what it signed, and authctl and auditors' tools verify with it;
// so every piece of the format is written once, here.
//
// The tree itself is golang.org/x/mod/sumdb/tlog's: leaf hash
// SHA-256(0x00 ‖ data), node hash SHA-256(0x01 ‖ left ‖ right), hashes
// stored by tlog's stored-hash index.
package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/authstream/authstream/libs/events"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// IsLeaf reports whether a message of AUTH_EVENTS stored on subject,
// whose body decoded as the envelope e (events.ParseEnvelope), is a leaf
// of its tenant's tree, and so a line of the tenant's export: it is when
// it is stored on the subject of its own tenant, aggregate and id
// (auth.evt.<tenant>.<aggregate>.<id>.<partition of the tenant>). A message
// whose body is no envelope, or that names another tenant, aggregate or id
// than its subject, is no event of the platform and no leaf of anybody's
// tree. The rule names no aggregate and no event type on purpose: which
// messages are leaves must never change, or a new release would change
// the roots of trees already signed.
func IsLeaf(subject string, e events.Envelope) bool {
	// Token by token, without building the subject: it runs for every
	// event a projector applies. A decoded envelope's tokens are valid
	// (events.ParseEnvelope checks them); one holding a dot would span
	// two of the subject's.
	rest, ok := strings.CutPrefix(subject, events.SubjectPrefixEvents+".")
	if !ok {
		return false
	}
	for _, tok := range []string{e.Tenant, e.Aggregate, e.AggregateID} {
		if tok == "" || strings.IndexByte(tok, '.') >= 0 {
			return false
		}
		if rest, ok = strings.CutPrefix(rest, tok); !ok {
			return false
		}
		if rest, ok = strings.CutPrefix(rest, "."); !ok {
			return false
		}
	}
	p, err := strconv.Atoi(rest)
	return err == nil && p == events.Partition(e.Tenant) && rest == strconv.Itoa(p)
}

// LeafData returns the data of the leaf an event is in its tenant's tree:
// the 32 bytes of its hash member, hex-decoded. An event's hash covers its
// whole canonical envelope, prev included, so the leaf commits to the
// event and to the chain of its aggregate before it.
func LeafData(eventHash string) ([]byte, error) {
	if len(eventHash) != 2*tlog.HashSize {
		return nil, fmt.Errorf("event hash %q is not %d hex digits", eventHash, 2*tlog.HashSize)
	}
	b, err := hex.DecodeString(eventHash)
	if err != nil {
		return nil, fmt.Errorf("event hash %q is not hex", eventHash)
	}
	return b, nil
}

// LeafHash returns the tree's hash of the leaf of an event with the hash
// member eventHash: tlog.RecordHash(LeafData(eventHash)).
func LeafHash(eventHash string) (tlog.Hash, error) {
	data, err := LeafData(eventHash)
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.RecordHash(data), nil
}

// Origin returns the origin line of a tenant's checkpoints, which is also
// the name of its audit keys: the tenant's issuer (<publicURL>/t/<tenant>)
// without its scheme, e.g. "127.0.0.1:8080/t/acme". It fails for a public
// URL that is not an absolute http(s) URL, or whose origin would hold a
// character a note key name may not (a space or '+').
func Origin(publicURL, tenant string) (string, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("public url %q is not an absolute http or https url", publicURL)
	}
	o := strings.TrimSuffix(u.Host+u.EscapedPath(), "/") + "/t/" + tenant
	if strings.ContainsAny(o, " +\n\t") || tenant == "" {
		return "", fmt.Errorf("origin %q cannot name a log", o)
	}
	return o, nil
}

// Checkpoint is what a signed checkpoint says: that the log named Origin
// had Size leaves with the tree hash Root.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Text returns the checkpoint's note text in the C2SP format: the origin,
// the size in decimal and the root hash in standard base64, one a line.
func (c Checkpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatInt(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// ErrMalformed is wrapped by the errors of ParseCheckpoint and Open for a
// text that is no checkpoint.
var ErrMalformed = errors.New("malformed checkpoint")

// ParseCheckpoint reads a checkpoint's note text (Text). Extension lines
// after the root are allowed by the format and ignored. Errors wrap
// ErrMalformed.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 4 || !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, fmt.Errorf("%w: want an origin, a size and a root hash, one a line", ErrMalformed)
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	if origin == "" {
		return Checkpoint{}, fmt.Errorf("%w: the origin line is empty", ErrMalformed)
	}
	sizeLine := strings.TrimSuffix(lines[1], "\n")
	size, err := strconv.ParseInt(sizeLine, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeLine {
		return Checkpoint{}, fmt.Errorf("%w: size %q is not a decimal number", ErrMalformed, sizeLine)
	}
	root, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: the root is not a base64 hash of %d bytes", ErrMalformed, tlog.HashSize)
	}
	c := Checkpoint{Origin: origin, Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// VerifierKey returns the note verifier key of an audit key
// ("<name>+<hash>+<base64>"), the form auditors give note.NewVerifier and
// authctl's --key.
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(name, pub)
}

// NewSigner returns the note signer of an audit key under name (the
// tenant's origin).
func NewSigner(name string, key ed25519.PrivateKey) (note.Signer, error) {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok || len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("not an ed25519 private key")
	}
	vkey, err := VerifierKey(name, pub)
	if err != nil {
		return nil, err
	}
	// vkey is "<name>+<hash>+<base64 of 0x01 ‖ public key>" (the base64
	// may hold a '+', the name may not); the signer
	// key is "PRIVATE+KEY+<name>+<hash>+<base64 of 0x01 ‖ seed>".
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("note key name %q holds a '+'", name)
	}
	seed := append([]byte{1}, key.Seed()...)
	return note.NewSigner("PRIVATE+KEY+" + name + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(seed))
}

// Sign returns c as a signed note.
func Sign(c Checkpoint, s note.Signer) ([]byte, error) {
	if s.Name() != c.Origin {
		return nil, fmt.Errorf("key %q cannot sign the checkpoints of %q", s.Name(), c.Origin)
	}
	return note.Sign(&note.Note{Text: c.Text()}, s)
}

// Open verifies a signed checkpoint with the verifier keys vkeys (note
// verifier keys; at least one must have signed it) and returns what it
// says. The errors are note.Open's (*note.UnverifiedNoteError when none of vkeys signed it, *note.InvalidSignatureError) and
// ErrMalformed, and one naming a key that does not parse.
func Open(msg []byte, vkeys ...string) (Checkpoint, error) {
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return Checkpoint{}, fmt.Errorf("verifier key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		return Checkpoint{}, err
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	for _, s := range n.Sigs {
		if s.Name != c.Origin {
			return Checkpoint{}, fmt.Errorf("%w: signed by %q, not by the log %q", ErrMalformed, s.Name, c.Origin)
		}
	}
	return c, nil
}

// Unverified reads what a signed checkpoint says without checking any
// signature: for tools that check the signature apart, or say they did
// not.
func Unverified(msg []byte) (Checkpoint, error) {
	text, _, ok := bytes.Cut(msg, []byte("\n\n"))
	if !ok {
		return Checkpoint{}, fmt.Errorf("%w: no signature block", ErrMalformed)
	}
	return ParseCheckpoint(string(text) + "\n")
}

// KeyID returns the id of an audit key: the first 8 bytes of the SHA-256
// of its public key, in hex. Unlike a note key hash it does not depend on
// the key's name, so it stays the key's id if the origin changes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}
