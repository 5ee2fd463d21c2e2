package backuptest_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// natsPasswords are the passwords of the users of deployments/nats/auth.conf
// in these tests; the configuration reads them from the environment.
var natsPasswords = map[string]string{
	"command":    "0b1c2d3e4f5a6978command",
	"query":      "1c2d3e4f5a6b7089query",
	"projector":  "2d3e4f5a6b7c8190projector",
	"subscriber": "3e4f5a6b7c8d9201subscriber",
	"backup":     "4f5a6b7c8d9e0312backup",
	"dispatcher": "5a6b7c8d9e0f1423dispatcher",
}

var backupStreams = []string{events.StreamEvents, events.StreamActivity, "KV_" + keystore.DefaultBucket, "KV_" + keystore.DefaultDataKeysBucket}

// mustAuthServer starts one node of the production cluster from its own
// configuration and returns the host:port clients connect to.
func mustAuthServer(tb testing.TB) string {
	tb.Helper()
	u, err := url.Parse(authstreamtest.StartProductionNATS(tb, "../../.."))
	if err != nil {
		tb.Fatal(err)
	}
	return u.Host
}

// natsURLAs is the URL of hostPort with user's credentials, as
// AUTH_NATS_URL carries them.
func natsURLAs(user, hostPort string) string {
	return "nats://" + user + ":" + natsPasswords[user] + "@" + hostPort
}

func mustConnectAs(tb testing.TB, hostPort, user string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(natsURLAs(user, hostPort))
	if err != nil {
		tb.Fatalf("connect as %s: %v", user, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// mustServiceData fills the streams and the key bucket as the services
// would, each as its own user.
func mustServiceData(tb testing.TB, hostPort string) {
	tb.Helper()
	ctx := context.Background()
	js := mustConnectAs(tb, hostPort, "command")
	if err := eventstore.EnsureStreams(ctx, js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("EnsureStreams as command: %v", err)
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	ring, err := events.NewKeyring(events.KEK{ID: "kek-test", Key: kek})
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := keystore.New(ctx, js, ring)
	if err != nil {
		tb.Fatalf("keystore: %v", err)
	}
	defer keys.Close()
	if _, _, err := keys.Create(ctx, "acme", ""); err != nil {
		tb.Fatalf("create key: %v", err)
	}
	dataKeys, err := keystore.NewDataKeys(ctx, js, ring, 1)
	if err != nil {
		tb.Fatalf("data keys as command: %v", err)
	}
	if _, err := dataKeys.Ensure(ctx, "acme", "u1"); err != nil {
		tb.Fatalf("data key as command: %v", err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	env, err := events.New(events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:read"}}, events.Meta{
		Tenant: "acme", Aggregate: events.AggregateRole, AggregateID: "billing", OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := store.Append(ctx, eventstore.Events{Events: []events.Envelope{env}}); err != nil {
		tb.Fatalf("append as command: %v", err)
	}
	qstore, err := eventstore.New(mustConnectAs(tb, hostPort, "query"))
	if err != nil {
		tb.Fatal(err)
	}
	failed, err := events.New(events.TypeSigninFailed, events.SigninFailed{Reason: "wrong password", Failures: 1}, events.Meta{
		Tenant: "acme", Aggregate: events.AggregateSignin, AggregateID: "u1", OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := qstore.Append(ctx, eventstore.Events{Events: []events.Envelope{failed}}); err != nil {
		tb.Fatalf("append as query: %v", err)
	}
}

// mustStates returns the last sequence of each stream, as user.
func mustStates(tb testing.TB, js jetstream.JetStream) map[string]uint64 {
	tb.Helper()
	out := map[string]uint64{}
	for _, name := range backupStreams {
		s, err := js.Stream(context.Background(), name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			tb.Fatalf("stream %s: %v", name, err)
		}
		out[name] = s.CachedInfo().State.LastSeq
	}
	return out
}

// TestBackupUser_Permissions runs authctl backup and restore against
// servers started from the production configuration: the backup user can
// snapshot the three streams and restore them into a server without them;
// the services' users and the subscriber can do neither.
func TestBackupUser_Permissions(t *testing.T) {
	for user, pw := range natsPasswords {
		t.Setenv("NATS_"+strings.ToUpper(user)+"_PASSWORD", pw)
	}
	source := mustAuthServer(t)
	mustServiceData(t, source)
	before := mustStates(t, mustConnectAs(t, source, "command"))
	if len(before) != len(backupStreams) {
		t.Fatalf("the source has streams %v, want %d", before, len(backupStreams))
	}

	dir := filepath.Join(t.TempDir(), "backup")
	t.Run("the backup user takes a backup", func(t *testing.T) {
		r := mustAuthctl(t, nil, "", 0, "backup", "--nats", natsURLAs("backup", source), "--out", dir, "--json")
		var m struct {
			Streams []struct {
				Name  string `json:"name"`
				State struct {
					LastSeq uint64 `json:"last_seq"`
				} `json:"state"`
			} `json:"streams"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("backup --json printed %q: %v", r.stdout, err)
		}
		if len(m.Streams) != len(backupStreams) {
			t.Fatalf("backup holds %d streams, want %d", len(m.Streams), len(backupStreams))
		}
		for _, s := range m.Streams {
			if s.State.LastSeq != before[s.Name] || s.State.LastSeq == 0 {
				t.Errorf("backup of %s up to %d, the stream is at %d", s.Name, s.State.LastSeq, before[s.Name])
			}
		}
		if strings.Contains(r.stdout+r.stderr, natsPasswords["backup"]) {
			t.Error("the output shows the password")
		}
	})

	for _, user := range []string{"command", "query", "projector", "subscriber"} {
		t.Run(user+" cannot take a backup", func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "backup")
			r := mustAuthctl(t, nil, "", 1, "backup", "--nats", natsURLAs(user, source), "--out", out)
			if !strings.Contains(r.stderr, "permissions violation") {
				t.Errorf("stderr = %q, want the refusal", r.stderr)
			}
			if strings.Contains(r.stderr, natsPasswords[user]) {
				t.Error("the error shows the password")
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("a refused backup left %d files", len(entries))
			}
		})
	}

	target := mustAuthServer(t)
	for _, user := range []string{"command", "query", "projector"} {
		t.Run(user+" cannot restore", func(t *testing.T) {
			r := mustAuthctl(t, nil, "", 1, "restore", "--nats", natsURLAs(user, target), "--in", dir)
			if !strings.Contains(r.stderr, "permissions violation") {
				t.Errorf("stderr = %q, want the refusal", r.stderr)
			}
			if got := mustStates(t, mustConnectAs(t, target, "command")); len(got) != 0 {
				t.Errorf("a refused restore created %v", got)
			}
		})
	}

	t.Run("the backup user restores into a server without the streams", func(t *testing.T) {
		mustAuthctl(t, nil, "", 0, "restore", "--nats", natsURLAs("backup", target), "--in", dir)
		if got := mustStates(t, mustConnectAs(t, target, "command")); !maps.Equal(got, before) || len(got) != len(backupStreams) {
			t.Errorf("restored streams at %v, want %v", got, before)
		}
	})

	t.Run("the backup user cannot restore over live streams", func(t *testing.T) {
		r := mustAuthctl(t, nil, "", 1, "restore", "--nats", natsURLAs("backup", source), "--in", dir)
		if !strings.Contains(r.stderr, "already has") || !strings.Contains(r.stderr, "nothing was changed") {
			t.Errorf("stderr = %q", r.stderr)
		}
		if got := mustStates(t, mustConnectAs(t, source, "command")); got[events.StreamEvents] != before[events.StreamEvents] {
			t.Errorf("the live streams moved: %v, were %v", got, before)
		}
	})
}
