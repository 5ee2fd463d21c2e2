package datadir_test

import (
	"encoding/base64"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authstream/authstream/services/authstream/internal/datadir"
)

func TestKEK_GeneratedOnceThenReused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, created, err := datadir.KEK(dir)
	if err != nil || !created {
		t.Fatalf("first KEK = %v, created %v; want a new key", err, created)
	}
	if b, err := base64.StdEncoding.DecodeString(first); err != nil || len(b) != 32 {
		t.Fatalf("KEK is not base64 of 32 bytes (err %v, %d bytes)", err, len(b))
	}
	mustMode(t, filepath.Join(dir, datadir.KEKFile), 0o600)
	second, created, err := datadir.KEK(dir)
	if err != nil || created || second != first {
		t.Fatalf("second KEK: err %v, created %v, same %v; want the first key again", err, created, second == first)
	}
}

func TestAdmin_GeneratedOnceThenReused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	user, pass, created, err := datadir.Admin(dir, "admin")
	if err != nil || !created || user != "admin" || len(pass) < 20 {
		t.Fatalf("first Admin = %q, %d-char password, created %v, err %v", user, len(pass), created, err)
	}
	mustMode(t, filepath.Join(dir, datadir.AdminFile), 0o600)
	user2, pass2, created, err := datadir.Admin(dir, "someone-else")
	if err != nil || created || user2 != user || pass2 != pass {
		t.Fatalf("second Admin = %q, same password %v, created %v, err %v; want the first credentials", user2, pass2 == pass, created, err)
	}
}

func TestAdmin_DamagedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, datadir.AdminFile), []byte("username=admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := datadir.Admin(dir, "admin")
	if err == nil || !strings.Contains(err.Error(), "delete the file") {
		t.Fatalf("Admin on a file without password = %v, want an error saying how to recover", err)
	}
}

func TestNATSUsers(t *testing.T) {
	t.Parallel()
	users := []string{"command", "query", "subscriber"}
	t.Run("generated once, URL-safe, then reused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		first, created, err := datadir.NATSUsers(dir, users)
		if err != nil || !created || len(first) != len(users) {
			t.Fatalf("first NATSUsers = %v, created %v, err %v", first, created, err)
		}
		seen := map[string]bool{}
		for _, u := range users {
			pw := first[u]
			if len(pw) < 32 || url.UserPassword(u, pw).String() != u+":"+pw || seen[pw] {
				t.Errorf("password of %s = %q: want 32 URL-safe characters of its own", u, pw)
			}
			seen[pw] = true
		}
		mustMode(t, filepath.Join(dir, datadir.NATSUsersFile), 0o600)
		second, created, err := datadir.NATSUsers(dir, users)
		if err != nil || created || !maps.Equal(first, second) {
			t.Fatalf("second NATSUsers: err %v, created %v, same %v; want the first passwords", err, created, maps.Equal(first, second))
		}
	})
	t.Run("a file without a user's password is an error", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, datadir.NATSUsersFile), []byte("# comment\ncommand=a\nquery=b\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := datadir.NATSUsers(dir, users)
		if err == nil || !strings.Contains(err.Error(), "subscriber") || !strings.Contains(err.Error(), "delete the file") {
			t.Fatalf("NATSUsers on a file without the subscriber = %v, want an error saying how to recover", err)
		}
	})
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := datadir.Prepare(dir); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	mustMode(t, dir, 0o700)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := datadir.Prepare(filepath.Join(file, "sub"))
	if err == nil || !strings.HasPrefix(err.Error(), "AUTH_DATA_DIR: cannot create ") {
		t.Fatalf("Prepare under a file = %v, want an AUTH_DATA_DIR error", err)
	}
}

func mustMode(tb testing.TB, path string, want os.FileMode) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		tb.Errorf("%s: mode %o, want %o", path, got, want)
	}
}
