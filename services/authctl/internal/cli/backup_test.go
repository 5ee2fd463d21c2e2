package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/authctl"
	"github.com/authstream/authstream/services/authctl/internal/cli"
)

var streams = []string{events.StreamEvents, events.StreamActivity, "KV_" + keystore.DefaultBucket, "KV_" + keystore.DefaultDataKeysBucket}

// mustSource starts a server holding the streams and the key bucket as the
// services leave them, and returns its URL and the last sequence of each.
func mustSource(tb testing.TB) (string, map[string]uint64) {
	tb.Helper()
	ctx := context.Background()
	_, url := natstest.RunServer(tb)
	_, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(ctx, js, eventstore.StreamOptions{}); err != nil {
		tb.Fatal(err)
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	ring, err := events.NewKeyring(events.KEK{ID: "k1", Key: kek})
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := keystore.New(ctx, js, ring)
	if err != nil {
		tb.Fatal(err)
	}
	defer keys.Close()
	if _, _, err := keys.Create(ctx, "acme", ""); err != nil {
		tb.Fatal(err)
	}
	dataKeys, err := keystore.NewDataKeys(ctx, js, ring, 1)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := dataKeys.Ensure(ctx, "acme", "u1"); err != nil {
		tb.Fatal(err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	// Two events on each stream, the second after the first's position.
	for _, ev := range []struct {
		aggregate, typ string
		data           any
	}{
		{events.AggregateRole, events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"reports:read"}}},
		{events.AggregateRole, events.TypeRoleDeleted, events.RoleDeleted{}},
		{events.AggregateSignin, events.TypeSigninFailed, events.SigninFailed{Reason: "wrong password", Failures: 1}},
		{events.AggregateSignin, events.TypeSigninFailed, events.SigninFailed{Reason: "wrong password", Failures: 2}},
	} {
		env, err := events.New(ev.typ, ev.data, events.Meta{
			Tenant: "acme", Aggregate: ev.aggregate, AggregateID: "a1", OccurredAt: time.Now(), Actor: events.System,
		})
		if err != nil {
			tb.Fatal(err)
		}
		h, err := store.Load(ctx, "acme", ev.aggregate, "a1")
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := store.Append(ctx, eventstore.Events{After: h.Position, Events: []events.Envelope{env}}); err != nil {
			tb.Fatal(err)
		}
	}
	return url, mustLastSeqs(tb, js)
}

func mustLastSeqs(tb testing.TB, js jetstream.JetStream) map[string]uint64 {
	tb.Helper()
	out := map[string]uint64{}
	for _, name := range streams {
		s, err := js.Stream(context.Background(), name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		out[name] = s.CachedInfo().State.LastSeq
	}
	return out
}

// run runs authctl's command line with env's NATS URL.
func run(natsURL string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = cli.Run(context.Background(), cli.Env{
		QueryURL: authctl.DefaultQueryURL, CommandURL: authctl.DefaultCommandURL, ProjectorURL: authctl.DefaultProjectorURL,
		NATSURL: natsURL, Out: &out, Err: &errOut,
	}, args)
	return out.String(), errOut.String(), err
}

func mustBackup(tb testing.TB, url string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "backup")
	if _, stderr, err := run(url, "backup", "--out", dir); err != nil {
		tb.Fatalf("backup: %v\n%s", err, stderr)
	}
	return dir
}

func TestBackup_RoundTrip(t *testing.T) {
	t.Parallel()
	src, want := mustSource(t)
	dir := filepath.Join(t.TempDir(), "backup")
	stdout, stderr, err := run("", "backup", "--nats", src, "--out", dir, "--json")
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}

	t.Run("the manifest describes every file", func(t *testing.T) {
		var printed, stored map[string]any
		if err := json.Unmarshal([]byte(stdout), &printed); err != nil {
			t.Fatalf("--json printed %q: %v", stdout, err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &stored); err != nil {
			t.Fatal(err)
		}
		if printed["created_at"] != stored["created_at"] || stored["format"] != float64(1) || stored["authstream_version"] == "" {
			t.Errorf("manifest = %v, printed %v", stored, printed)
		}
		list, _ := stored["streams"].([]any)
		if len(list) != len(streams) {
			t.Fatalf("manifest lists %d streams", len(list))
		}
		for i, item := range list {
			s := item.(map[string]any)
			state := s["state"].(map[string]any)
			cfg := s["config"].(map[string]any)
			if s["name"] != streams[i] || cfg["name"] != streams[i] || state["last_seq"] != float64(want[streams[i]]) || len(s["sha256"].(string)) != 64 {
				t.Errorf("stream %d = %v, want %s up to %d", i, s, streams[i], want[streams[i]])
			}
			fi, err := os.Stat(filepath.Join(dir, s["file"].(string)))
			if err != nil || fi.Size() != int64(s["bytes"].(float64)) || fi.Mode().Perm() != 0o600 {
				t.Errorf("file %v: %v, %v", s["file"], fi, err)
			}
		}
	})

	t.Run("restore brings every stream back", func(t *testing.T) {
		_, dst := natstest.RunServer(t)
		stdout, stderr, err := run(dst, "restore", "--in", dir)
		if err != nil {
			t.Fatalf("restore: %v\n%s", err, stderr)
		}
		for _, name := range streams {
			if !strings.Contains(stdout, name+": ") {
				t.Errorf("restore output lacks %s: %s", name, stdout)
			}
		}
		_, js := natstest.Connect(t, dst)
		if got := mustLastSeqs(t, js); !maps.Equal(got, want) || len(got) != len(streams) {
			t.Errorf("restored %v, want %v", got, want)
		}
	})
}

func TestBackup_Refusals(t *testing.T) {
	t.Parallel()
	src, _ := mustSource(t)
	notEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(notEmpty, "other"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	closed := mustClosedAddr(t)
	for _, tc := range []struct {
		name    string
		env     string
		args    []string
		usage   bool
		wantErr string
	}{
		{name: "no folder", env: src, args: []string{"backup"}, usage: true, wantErr: "--out is required"},
		{name: "no server", args: []string{"backup", "--out", t.TempDir()}, usage: true, wantErr: "--nats is required"},
		{name: "not a NATS URL", args: []string{"backup", "--nats", "http://x:1", "--out", t.TempDir()}, usage: true, wantErr: "--nats"},
		{name: "a bad AUTH_NATS_URL", env: "nats://", args: []string{"backup", "--out", t.TempDir()}, usage: true, wantErr: "AUTH_NATS_URL"},
		{name: "an argument", env: src, args: []string{"backup", "--out", t.TempDir(), "extra"}, usage: true},
		{name: "a folder with files", env: src, args: []string{"backup", "--out", notEmpty}, wantErr: "not empty"},
		{name: "a server out of reach", args: []string{"backup", "--nats", "nats://backup:s3cret-pw@" + closed, "--out", t.TempDir()}, wantErr: closed},
		{name: "no folder to restore", env: src, args: []string{"restore"}, usage: true, wantErr: "--in is required"},
		{name: "not a backup", env: src, args: []string{"restore", "--in", notEmpty}, wantErr: "has no manifest.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(tc.env, tc.args...)
			if err == nil {
				t.Fatal("succeeded")
			}
			if errors.Is(err, cli.ErrUsage) != tc.usage {
				t.Errorf("error %v: usage %v, want %v", err, errors.Is(err, cli.ErrUsage), tc.usage)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q lacks %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret-pw") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q shows the password or spans lines", err)
			}
		})
	}
	if entries, _ := os.ReadDir(notEmpty); len(entries) != 1 {
		t.Errorf("a refused backup wrote into the folder: %d entries", len(entries))
	}
}

func TestRestore_VerifiesBeforeTouchingTheServer(t *testing.T) {
	t.Parallel()
	src, _ := mustSource(t)
	good := mustBackup(t, src)

	// copyBackup copies good and lets edit damage the copy.
	copyBackup := func(t *testing.T, edit func(dir string, m map[string]any)) string {
		dir := filepath.Join(t.TempDir(), "backup")
		if err := os.CopyFS(dir, os.DirFS(good)); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		edit(dir, m)
		raw, _ = json.Marshal(m)
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stream := func(m map[string]any, i int) map[string]any { return m["streams"].([]any)[i].(map[string]any) }

	for _, tc := range []struct {
		name    string
		edit    func(dir string, m map[string]any)
		wantErr string
	}{
		{"a damaged snapshot", func(dir string, m map[string]any) {
			path := filepath.Join(dir, "KV_AUTH_KEYS.snapshot")
			raw, _ := os.ReadFile(path)
			raw[len(raw)/2] ^= 0xff
			_ = os.WriteFile(path, raw, 0o600)
		}, "does not match its sha256"},
		{"a cut snapshot", func(dir string, m map[string]any) {
			path := filepath.Join(dir, "AUTH_ACTIVITY.snapshot")
			raw, _ := os.ReadFile(path)
			_ = os.WriteFile(path, raw[:len(raw)-10], 0o600)
		}, "bytes, the manifest says"},
		{"a missing snapshot", func(dir string, m map[string]any) {
			_ = os.Remove(filepath.Join(dir, "AUTH_EVENTS.snapshot"))
		}, "no such file"},
		{"a file outside the folder", func(dir string, m map[string]any) {
			stream(m, 0)["file"] = "../AUTH_EVENTS.snapshot"
		}, "names file"},
		{"a stream that is not authstream's", func(dir string, m map[string]any) {
			stream(m, 1)["name"] = "OTHER"
		}, "not authstream's"},
		{"a stream left out", func(dir string, m map[string]any) {
			m["streams"] = m["streams"].([]any)[:2]
		}, "want each of"},
		{"a configuration of another stream", func(dir string, m map[string]any) {
			stream(m, 0)["config"].(map[string]any)["name"] = "AUTH_ACTIVITY"
		}, "does not name it"},
		{"a newer format", func(dir string, m map[string]any) {
			m["format"] = 2
		}, "format 2"},
		{"a state the snapshot does not hold", func(dir string, m map[string]any) {
			stream(m, 0)["state"].(map[string]any)["last_seq"] = 1
		}, "the snapshot holds sequences 1 to 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyBackup(t, tc.edit)
			_, dst := natstest.RunServer(t)
			_, _, err := run(dst, "restore", "--in", dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("restore = %v, want an error with %q", err, tc.wantErr)
			}
			_, js := natstest.Connect(t, dst)
			if got := mustLastSeqs(t, js); len(got) != 0 {
				t.Errorf("a refused restore created %v", got)
			}
		})
	}

	t.Run("a backup from before the data keys bucket", func(t *testing.T) {
		dir := copyBackup(t, func(dir string, m map[string]any) {
			list := m["streams"].([]any)
			m["streams"] = list[:len(list)-1] // the data keys, taken last
			_ = os.Remove(filepath.Join(dir, "KV_AUTH_DATA_KEYS.snapshot"))
		})
		_, dst := natstest.RunServer(t)
		if _, stderr, err := run(dst, "restore", "--in", dir); err != nil {
			t.Fatalf("restore of a backup without the data keys: %v\n%s", err, stderr)
		}
		_, js := natstest.Connect(t, dst)
		if got := mustLastSeqs(t, js); len(got) != 3 {
			t.Errorf("restored %v, want the three streams of the backup", got)
		}
	})

	t.Run("replicas the server cannot hold, and --replicas", func(t *testing.T) {
		dir := copyBackup(t, func(dir string, m map[string]any) {
			for i := range 3 {
				stream(m, i)["config"].(map[string]any)["num_replicas"] = 3
			}
		})
		_, dst := natstest.RunServer(t)
		_, js := natstest.Connect(t, dst)
		_, _, err := run(dst, "restore", "--in", dir)
		if err == nil || !strings.Contains(err.Error(), "--replicas") {
			t.Fatalf("restore of a three-replica backup into one server = %v, want a hint at --replicas", err)
		}
		if got := mustLastSeqs(t, js); len(got) != 0 {
			t.Errorf("a refused restore created %v", got)
		}
		if _, stderr, err := run(dst, "restore", "--in", dir, "--replicas", "1"); err != nil {
			t.Fatalf("restore --replicas 1: %v\n%s", err, stderr)
		}
		s, err := js.Stream(context.Background(), events.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; cfg.Replicas != 1 || !cfg.DenyDelete {
			t.Errorf("restored config = %+v, want one replica and the rest as backed up", cfg)
		}
		if _, _, err := run(dst, "restore", "--in", dir, "--replicas", "9"); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("--replicas 9 = %v, want a usage error", err)
		}
	})

	t.Run("a server that has one of the streams", func(t *testing.T) {
		_, dst := natstest.RunServer(t)
		_, js := natstest.Connect(t, dst)
		if err := eventstore.EnsureStream(context.Background(), js, eventstore.StreamOptions{}, events.StreamActivity); err != nil {
			t.Fatal(err)
		}
		_, _, err := run(dst, "restore", "--in", good)
		if err == nil || !strings.Contains(err.Error(), "already has AUTH_ACTIVITY") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("restore = %v", err)
		}
		if got := mustLastSeqs(t, js); len(got) != 1 || got[events.StreamActivity] != 0 {
			t.Errorf("after a refused restore the server has %v", got)
		}
	})
}

// TestMain_BackupExitStatus checks the binary's side: AUTH_NATS_URL is the
// default server, usage errors exit 2 and failures 1, each one line.
func TestMain_BackupExitStatus(t *testing.T) {
	t.Parallel()
	src, _ := mustSource(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"AUTH_NATS_URL is the default", map[string]string{"AUTH_NATS_URL": src}, []string{"backup", "--out", filepath.Join(t.TempDir(), "b")}, 0},
		{"no server", nil, []string{"backup", "--out", t.TempDir()}, 2},
		{"a failure", map[string]string{"AUTH_NATS_URL": src}, []string{"restore", "--in", t.TempDir()}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := authctl.ConfigFromEnv(config.Map(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			cfg.Args, cfg.Out, cfg.Err = tc.args, &stdout, &stderr
			cfg.Credentials = filepath.Join(t.TempDir(), "credentials.json")
			if got := authctl.Main(context.Background(), cfg); got != tc.want {
				t.Fatalf("exit %d, want %d; stderr %s", got, tc.want, stderr.String())
			}
			if tc.want == 1 && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr %q is not one line", stderr.String())
			}
		})
	}
}

func mustClosedAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
