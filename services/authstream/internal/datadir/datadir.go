// Package datadir keeps the all-in-one binary's generated state in its data
// folder: the key-encryption key, the first platform admin's credentials
// and the passwords of the embedded NATS server's users, all created on
// first start and reused afterwards.
package datadir

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/authstream/authstream/libs/config"
)

// KEKFile, AdminFile and NATSUsersFile are the names of the generated
// files in the data folder. All are written with mode 0600.
const (
	KEKFile       = "kek"
	AdminFile     = "bootstrap-admin.txt"
	NATSUsersFile = "nats-users.txt"
)

// Prepare creates the data folder (mode 0700) when missing.
func Prepare(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("AUTH_DATA_DIR: cannot create %s: %s", dir, config.Cause(err))
	}
	return nil
}

// KEK returns the key-encryption key kept in dir (base64 of 32 bytes),
// generating it on first use. created reports whether it was just generated.
func KEK(dir string) (kek string, created bool, err error) {
	path := filepath.Join(dir, KEKFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	kek = base64.StdEncoding.EncodeToString(key)
	created, err = writeNew(path, kek+"\n")
	if err != nil || !created {
		// Another process won the race: use its key.
		return readKEK(path, err)
	}
	return kek, true, nil
}

func readKEK(path string, err error) (string, bool, error) {
	if err != nil {
		return "", false, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), false, nil
}

// Admin returns the platform admin credentials kept in dir, generating a
// password for username on first use. created reports whether they were just
// generated (the only time the caller shows the password).
func Admin(dir, username string) (user, password string, created bool, err error) {
	path := filepath.Join(dir, AdminFile)
	if user, password, err = readAdmin(path); err == nil {
		return user, password, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", false, err
	}
	password = newPassword(18)
	body := "# The first platform admin of this installation, generated on first start.\n" +
		"# Change the password, then delete this file.\n" +
		"tenant=platform\nusername=" + username + "\npassword=" + password + "\n"
	if created, err = writeNew(path, body); err != nil {
		return "", "", false, err
	}
	if !created {
		user, password, err = readAdmin(path)
		return user, password, false, err
	}
	return username, password, true, nil
}

// readAdmin parses the key=value lines of the admin file.
func readAdmin(path string) (user, password string, err error) {
	kv, err := readKeyValues(path)
	if err != nil {
		return "", "", err
	}
	user, password = kv["username"], kv["password"]
	if user == "" || password == "" {
		return "", "", fmt.Errorf("%s: want username= and password= lines; delete the file to generate new credentials", path)
	}
	return user, password, nil
}

// NATSUsers returns the passwords of users (user → password) kept in dir,
// generating a random one for each on first use. created reports whether
// they were just generated. The passwords are URL-safe, so that they can
// stand in a nats://user:password@host URL as they are. A file that lacks
// one of users is an error: deleting it makes the next start generate
// them all again (which is how they are rotated).
func NATSUsers(dir string, users []string) (passwords map[string]string, created bool, err error) {
	path := filepath.Join(dir, NATSUsersFile)
	passwords, err = ReadNATSUsers(dir, users)
	if err == nil {
		return passwords, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	var body strings.Builder
	body.WriteString("# The users of the embedded NATS server (deployments/nats/auth.conf) and\n" +
		"# their passwords, generated on first start. Delete this file and restart\n" +
		"# to generate new ones.\n")
	passwords = map[string]string{}
	for _, u := range users {
		passwords[u] = newPassword(24)
		body.WriteString(u + "=" + passwords[u] + "\n")
	}
	if created, err = writeNew(path, body.String()); err != nil {
		return nil, false, err
	}
	if !created {
		// Another process won the race: use its passwords.
		passwords, err = ReadNATSUsers(dir, users)
		return passwords, false, err
	}
	return passwords, true, nil
}

// ReadNATSUsers reads the password of each of users from the file NATSUsers
// generated in dir; an error wrapping fs.ErrNotExist when there is none.
func ReadNATSUsers(dir string, users []string) (map[string]string, error) {
	path := filepath.Join(dir, NATSUsersFile)
	kv, err := readKeyValues(path)
	if err != nil {
		return nil, err
	}
	passwords := map[string]string{}
	for _, u := range users {
		if kv[u] == "" {
			return nil, fmt.Errorf("%s: no password for NATS user %s; delete the file to generate new passwords", path, u)
		}
		passwords[u] = kv[u]
	}
	return passwords, nil
}

// readKeyValues parses the key=value lines of a generated file; other
// lines (comments) are left out.
func readKeyValues(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // read only
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return kv, nil
}

// newPassword returns n random bytes in URL-safe base64 without padding.
func newPassword(n int) string {
	raw := make([]byte, n)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(raw)
}

// writeNew creates path with mode 0600 and writes body, unless the file
// already exists (created is then false). Creating exclusively keeps two
// processes starting on one folder from generating two different secrets.
func writeNew(path, body string) (created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.WriteString(body); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}
