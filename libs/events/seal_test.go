package events_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

// testKey returns a deterministic 32-byte key for a label.
func testKey(label string) []byte {
	sum := sha256.Sum256([]byte("test key " + label))
	return sum[:]
}

// mustKeyring returns a keyring of test keys named ids, newest first.
func mustKeyring(tb testing.TB, ids ...string) *events.Keyring {
	tb.Helper()
	var keys []events.KEK
	for _, id := range ids {
		keys = append(keys, events.KEK{ID: id, Key: testKey(id)})
	}
	r, err := events.NewKeyring(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestParseKeyring(t *testing.T) {
	t.Parallel()
	k1 := base64.StdEncoding.EncodeToString(testKey("one"))
	k2 := base64.StdEncoding.EncodeToString(testKey("two"))
	k2url := base64.RawURLEncoding.EncodeToString(testKey("two"))
	short := base64.StdEncoding.EncodeToString(testKey("one")[:31])
	sum := sha256.Sum256(testKey("one"))
	derived := hex.EncodeToString(sum[:8])

	tests := []struct {
		name    string
		in      string
		current string // CurrentID on success
		wantErr string // substring of the error, "" for success
	}{
		{name: "id and base64", in: "kek-1:" + k1, current: "kek-1"},
		{name: "bare base64 derives the id", in: k1, current: derived},
		{name: "url-safe base64 without padding", in: "kek-2:" + k2url, current: "kek-2"},
		{name: "several keys newest first", in: "kek-2:" + k2 + ", kek-1:" + k1, current: "kek-2"},
		{name: "empty parts are skipped", in: ",kek-1:" + k1 + ",", current: "kek-1"},
		{name: "empty", in: "", wantErr: "at least one key"},
		{name: "bad base64", in: "kek-1:" + k1[:20] + "!!" + k1[22:], wantErr: "key 1 is not valid base64"},
		{name: "wrong length", in: "kek-1:" + short, wantErr: "key 1 must decode to 32 bytes, got 31"},
		{name: "second key wrong length", in: "kek-2:" + k2 + ",kek-1:" + short, wantErr: "key 2 must decode to 32 bytes"},
		{name: "duplicate id", in: "kek-1:" + k1 + ",kek-1:" + k2, wantErr: "appears twice"},
		{name: "duplicate bare key", in: k1 + "," + k1, wantErr: "appears twice"},
		{name: "id with a space", in: "kek 1:" + k1, wantErr: "id must be non-empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := events.ParseKeyring(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseKeyring: %v", err)
				}
				if got := r.CurrentID(); got != tt.current {
					t.Fatalf("CurrentID = %q, want %q", got, tt.current)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseKeyring succeeded, want error %q", tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) {
				t.Fatalf("error %q does not contain %q", msg, tt.wantErr)
			}
			// Error messages never carry key material, in any encoding.
			for _, key := range [][]byte{testKey("one"), testKey("two")} {
				for _, form := range []string{
					base64.StdEncoding.EncodeToString(key)[:12],
					base64.RawURLEncoding.EncodeToString(key)[:12],
					hex.EncodeToString(key)[:12],
					string(key[:12]),
				} {
					if strings.Contains(msg, form) {
						t.Fatalf("error %q contains key material", msg)
					}
				}
			}
		})
	}
}

func TestKeyring_Open(t *testing.T) {
	t.Parallel()
	plaintext := []byte("$2a$04$abcdefghijklmnopqrstuv")
	aad := []byte("acme/user-1")
	old := mustKeyring(t, "kek-1")
	sealedOld, err := old.Seal(plaintext, aad)
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustKeyring(t, "kek-2", "kek-1")
	sealedNew, err := rotated.Seal(plaintext, aad)
	if err != nil {
		t.Fatal(err)
	}
	if sealedNew.KID != "kek-2" || sealedOld.KID != "kek-1" {
		t.Fatalf("sealed with %q and %q, want kek-1 then kek-2", sealedOld.KID, sealedNew.KID)
	}
	tampered := sealedNew
	tampered.Ciphertext = bytes.Clone(sealedNew.Ciphertext)
	tampered.Ciphertext[0] ^= 1
	shortNonce := sealedNew
	shortNonce.Nonce = sealedNew.Nonce[:8]
	renamed := sealedOld
	renamed.KID = "kek-2" // right ciphertext, wrong key

	tests := []struct {
		name    string
		ring    *events.Keyring
		sealed  events.Sealed
		aad     []byte
		wantErr error
	}{
		{name: "newest key", ring: rotated, sealed: sealedNew, aad: aad},
		{name: "older key after rotation", ring: rotated, sealed: sealedOld, aad: aad},
		{name: "wrong aad", ring: rotated, sealed: sealedNew, aad: []byte("acme/user-2"), wantErr: events.ErrOpen},
		{name: "no aad", ring: rotated, sealed: sealedNew, wantErr: events.ErrOpen},
		{name: "unknown kid", ring: old, sealed: sealedNew, aad: aad, wantErr: events.ErrUnknownKEK},
		{name: "tampered ciphertext", ring: rotated, sealed: tampered, aad: aad, wantErr: events.ErrOpen},
		{name: "short nonce", ring: rotated, sealed: shortNonce, aad: aad, wantErr: events.ErrOpen},
		{name: "kid of another key", ring: rotated, sealed: renamed, aad: aad, wantErr: events.ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.ring.Open(tt.sealed, tt.aad)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !bytes.Equal(got, plaintext) {
				t.Fatalf("Open = %q, want %q", got, plaintext)
			}
		})
	}
}

func TestKeyring_SealFreshNonce(t *testing.T) {
	t.Parallel()
	r := mustKeyring(t, "kek-1")
	a, _ := r.Seal([]byte("same"), nil)
	b, _ := r.Seal([]byte("same"), nil)
	if bytes.Equal(a.Nonce, b.Nonce) || bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Fatal("two seals of one plaintext are equal: nonce reused")
	}
	if a.IsZero() || !(events.Sealed{}).IsZero() {
		t.Fatal("IsZero is wrong")
	}
}

func TestNewKeyring_Invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		keys []events.KEK
	}{
		{name: "none"},
		{name: "empty id", keys: []events.KEK{{Key: testKey("a")}}},
		{name: "id with colon", keys: []events.KEK{{ID: "a:b", Key: testKey("a")}}},
		{name: "short key", keys: []events.KEK{{ID: "a", Key: testKey("a")[:16]}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := events.NewKeyring(tt.keys...); err == nil {
				t.Fatal("NewKeyring succeeded")
			}
		})
	}
}

// The associated data of sealed credentials is part of the stored format:
// every credential in the log was sealed with it, so it never changes.
func TestCredentialAAD_isPinned(t *testing.T) {
	t.Parallel()
	if got, want := string(events.CredentialAAD("acme", "0190a3c4")), "authstream/credential/acme/0190a3c4"; got != want {
		t.Errorf("CredentialAAD = %q, want %q", got, want)
	}
}

func TestKeyring_DeriveKey(t *testing.T) {
	t.Parallel()
	ring := mustKeyring(t, "kek-1")
	a, b := ring.DeriveKey("purpose a"), ring.DeriveKey("purpose b")
	if len(a) != 32 || len(b) != 32 {
		t.Fatalf("lengths %d and %d, want 32", len(a), len(b))
	}
	if bytes.Equal(a, b) {
		t.Error("two purposes give the same key")
	}
	if !bytes.Equal(a, ring.DeriveKey("purpose a")) {
		t.Error("one purpose gives two keys")
	}
	if bytes.Equal(a, mustKeyring(t, "kek-2").DeriveKey("purpose a")) {
		t.Error("two KEKs give the same key")
	}
}
