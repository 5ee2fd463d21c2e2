package authn_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
)

// The vectors: bcrypt's from Openwall's crypt_blowfish tests, argon2id's
// from golang.org/x/crypto's (password "password", salt "somesalt"),
// scrypt's and PBKDF2-SHA256's from RFC 7914 (sections 12 and 11), and a
// passlib-style PBKDF2 hash at 29,000 rounds.
func TestImportedHashes(t *testing.T) {
	t.Parallel()
	h := mustHasher(t)
	tests := []struct {
		name, hash, password string
		rehash               bool
	}{
		{"bcrypt 2a", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", false},
		{"bcrypt 2b", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", false},
		{"bcrypt 2y", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", false},
		{"argon2id t=1", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7", "password", true},
		{"argon2id t=2", "$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbHQ$Bo1ismRVk2qm6+YAYLCmWHDb+j3fjUH3", "password", true},
		{"argon2id reordered", "$argon2id$v=19$t=2,p=1,m=64$c29tZXNhbHQ$Bo1ismRVk2qm6+YAYLCmWHDb+j3fjUH3", "password", true},
		{"scrypt", "$scrypt$ln=10,r=8,p=16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSedmDDaxyevuUqD7m2DYMvfoswGQA", "password", true},
		{"scrypt passlib alphabet", "$scrypt$ln=10,r=8,p=16$TmFDbA$/bq.HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSedmDDaxyevuUqD7m2DYMvfoswGQA", "password", true},
		{"pbkdf2-sha256 phc", "$pbkdf2-sha256$i=1,l=64$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLxJypzM8Xm2RZkWZLOdd+8xfHG4RbHjC9UJESBB06GXgw", "passwd", true},
		{"pbkdf2-sha256 passlib", "$pbkdf2-sha256$29000$c2FsdHlzYWx0MTIzNDU2Nzg$k4QXuZO5xDsfrj1hdEF0nW3tS7N51T0SE.67S7NIwpw", "password", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := authn.CheckImportedHash(tc.hash); err != nil {
				t.Fatalf("CheckImportedHash = %v", err)
			}
			if got := authn.NeedsRehash([]byte(tc.hash)); got != tc.rehash {
				t.Errorf("NeedsRehash = %v, want %v", got, tc.rehash)
			}
			if err := h.Compare([]byte(tc.hash), tc.password); err != nil {
				t.Errorf("Compare with the right password = %v", err)
			}
			if err := h.Compare([]byte(tc.hash), tc.password+"x"); !errors.Is(err, authn.ErrMismatch) {
				t.Errorf("Compare with a wrong password = %v, want ErrMismatch", err)
			}
		})
	}
}

func TestNoPassword(t *testing.T) {
	t.Parallel()
	h := mustHasher(t)
	for _, pw := range []string{"", "!", "password"} {
		if err := h.Compare([]byte(authn.NoPassword), pw); !errors.Is(err, authn.ErrMismatch) {
			t.Errorf("Compare(NoPassword, %q) = %v, want ErrMismatch", pw, err)
		}
	}
	if authn.NeedsRehash([]byte(authn.NoPassword)) {
		t.Error("NoPassword needs a rehash")
	}
}

func TestCheckImportedHash_malformed(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, hash, says string }{
		{"empty", "", "must start with $"},
		{"plain text", "hunter2", "must start with $"},
		{"unknown scheme", "$md5$abc$def", "unsupported scheme"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7", "unsupported scheme"},
		{"bcrypt short", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0Xou", "bcrypt"},
		{"bcrypt bad cost", "$2a$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "bcrypt"},
		{"bcrypt 2x", "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "unsupported scheme"},
		{"argon2id version", "$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7", "version 19"},
		{"argon2id missing part", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ", "want $argon2id"},
		{"argon2id missing param", "$argon2id$v=19$m=64,t=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7", "parameter p is missing"},
		{"argon2id huge memory", "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7", "memory"},
		{"argon2id bad salt", "$argon2id$v=19$m=64,t=1,p=1$!!!$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7", "salt is not base64"},
		{"argon2id short digest", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$ZVrRXg", "hash must be"},
		{"scrypt huge", "$scrypt$ln=24,r=8,p=1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI", "128·N·r"},
		{"scrypt unknown param", "$scrypt$ln=10,r=8,p=1,x=2$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI", "unknown"},
		{"pbkdf2 no rounds", "$pbkdf2-sha256$$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw", "decimal"},
		{"pbkdf2 too many rounds", "$pbkdf2-sha256$900000000$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw", "iterations"},
		{"too long", "$scrypt$" + strings.Repeat("a", 600), "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := authn.CheckImportedHash(tc.hash)
			if !errors.Is(err, authn.ErrInvalidImportedHash) || fault.CodeOf(err) != fault.Invalid {
				t.Fatalf("CheckImportedHash = %v, want ErrInvalidImportedHash", err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
			if len(tc.hash) > 8 && strings.Contains(err.Error(), tc.hash[8:]) {
				t.Errorf("error %q repeats the hash", err)
			}
		})
	}
}
