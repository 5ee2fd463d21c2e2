package embedded

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestAuthConf_isTheDeployedOne(t *testing.T) {
	t.Parallel()
	deployed, err := os.ReadFile("../../../../deployments/nats/auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	if string(deployed) != AuthConf {
		t.Error("internal/embedded/auth.conf differs from deployments/nats/auth.conf: run go generate ./internal/embedded")
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	want := []string{"command", "query", "projector", "dispatcher", "backup", "subscriber"}
	if got := Users(); !slices.Equal(got, want) {
		t.Errorf("Users() = %v, want %v", got, want)
	}
}

// testPasswords are passwords for every user, one of digits only.
func testPasswords() map[string]string {
	pw := map[string]string{}
	for _, u := range Users() {
		pw[u] = "pw-" + u + "-0123456789"
	}
	pw["backup"] = "12345678"
	return pw
}

func TestAuthOptions(t *testing.T) {
	t.Parallel()
	t.Run("every user gets its password, as a string", func(t *testing.T) {
		pw := testPasswords()
		opts, err := authOptions(pw)
		if err != nil {
			t.Fatal(err)
		}
		if len(opts.Users) != len(pw) {
			t.Errorf("%d users, want %d", len(opts.Users), len(pw))
		}
	})
	t.Run("a missing password is an error", func(t *testing.T) {
		pw := testPasswords()
		delete(pw, "projector")
		if _, err := authOptions(pw); err == nil {
			t.Error("authOptions without the projector's password = nil error")
		}
	})
}

// mustStart starts a server on a free loopback port storing under dir.
func mustStart(tb testing.TB, dir string, pw map[string]string) *Server {
	tb.Helper()
	s, err := Start(context.Background(), Options{
		Listen: "127.0.0.1:0", StoreDir: dir, Passwords: pw,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// TestStart_authenticates runs the server with the production accounts:
// nobody connects without the right password, whatever the environment
// says, and every user connects with its own.
func TestStart_authenticates(t *testing.T) {
	// The environment must not be read: a password there is not one.
	t.Setenv("NATS_COMMAND_PASSWORD", "from-the-environment")
	pw := testPasswords()
	s := mustStart(t, t.TempDir(), pw)

	for name, opt := range map[string]nats.Option{
		"anonymous":                     func(*nats.Options) error { return nil },
		"wrong password":                nats.UserInfo("command", "wrong"),
		"the environment's password":    nats.UserInfo("command", "from-the-environment"),
		"unknown user":                  nats.UserInfo("nobody", pw["command"]),
		"another user's password":       nats.UserInfo("command", pw["query"]),
		"the variable name as password": nats.UserInfo("command", "$NATS_COMMAND_PASSWORD"),
	} {
		nc, err := nats.Connect(s.ClientURL(), opt, nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
	for user, p := range pw {
		nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, p), nats.NoReconnect())
		if err != nil {
			t.Errorf("connect as %s: %v", user, err)
			continue
		}
		nc.Close()
		nc, err = s.Connect("test", user, p)
		if err != nil {
			t.Errorf("connect in process as %s: %v", user, err)
			continue
		}
		nc.Close()
	}
}

// TestStart_keepsTheLogOfAnOlderDataFolder starts a server without
// accounts, as the all-in-one process did before, stores a message, and
// starts the embedded server on the same folder: the message is in the
// streams' account.
func TestStart_keepsTheLogOfAnOlderDataFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old, err := server.NewServer(&server.Options{
		ServerName: ServerName, Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go old.Start()
	if !old.ReadyForConnections(10 * time.Second) {
		t.Fatal("old server not ready")
	}
	ctx := context.Background()
	nc, err := nats.Connect(old.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUTH_EVENTS", Subjects: []string{"auth.evt.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "auth.evt.acme.user.u1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	old.Shutdown()
	old.WaitForShutdown()

	pw := testPasswords()
	s := mustStart(t, dir, pw)
	nc, err = s.Connect("test", "query", pw["query"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	stream, err := js.Stream(ctx, "AUTH_EVENTS")
	if err != nil {
		t.Fatalf("AUTH_EVENTS after the move: %v", err)
	}
	if n := stream.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("AUTH_EVENTS holds %d messages after the move, want 1", n)
	}
}
