package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore/natsconn"
	"github.com/authstream/authstream/libs/eventstore/snapshot"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/nats-io/nats.go"
)

var backupCommands = []*command{
	{
		name: "backup", synopsis: "[--nats URL] --out DIR",
		summary: "snapshot the event streams and the signing-key bucket from NATS into a new folder",
		flags: func(fs *flag.FlagSet) {
			fs.String("nats", "", "NATS server `URL`s, comma-separated, with the backup user's credentials (default AUTH_NATS_URL)")
			fs.String("out", "", "the `folder` to create (it must not exist, or be empty)")
		},
		run: runBackup,
	},
	{
		name: "restore", synopsis: "[--nats URL] --in DIR [--replicas N]",
		summary: "verify a backup folder and restore its streams into a NATS that does not have them",
		flags: func(fs *flag.FlagSet) {
			fs.String("nats", "", "NATS server `URL`s, comma-separated, with the backup user's credentials (default AUTH_NATS_URL)")
			fs.String("in", "", "the backup `folder` to restore")
			fs.Int("replicas", 0, "restore the streams with this many `replicas` (1 to 5) instead of the backup's")
		},
		run: runRestore,
	},
}

// backupStreams are the streams a backup holds, in the order it takes
// them: the key buckets last, so that every key the account events mention
// is in them (a signing key is stored before its key.created event is
// appended, a user's data key before the user.registered it seals). A
// backup keeps the users' data keys (ADR 0015): without them no username
// in it opens; an erasure in its log destroys the key again at restore.
var backupStreams = []string{events.StreamEvents, events.StreamActivity, "KV_" + keystore.DefaultBucket, dataKeysStream}

// dataKeysStream is the stream of the data keys' bucket, which backups
// taken before usernames were sealed do not hold: restore accepts them.
const dataKeysStream = "KV_" + keystore.DefaultDataKeysBucket

// manifestFile names the manifest in a backup folder.
const manifestFile = "manifest.json"

// manifestFormat is the version of the manifest's shape.
const manifestFormat = 1

// manifest describes a backup folder: what each file holds and its
// checksum. It is written last, so a folder without it is incomplete.
type manifest struct {
	Format            int              `json:"format"`
	CreatedAt         time.Time        `json:"created_at"`
	AuthstreamVersion string           `json:"authstream_version"`
	NATSServerVersion string           `json:"nats_server_version,omitempty"`
	Streams           []manifestStream `json:"streams"`
}

type manifestStream struct {
	Name   string          `json:"name"`
	File   string          `json:"file"`
	Bytes  int64           `json:"bytes"`
	SHA256 string          `json:"sha256"`
	Config json.RawMessage `json:"config"`
	State  snapshot.State  `json:"state"`
}

// natsURL returns the --nats value, or AUTH_NATS_URL, checked.
func natsURL(in *inv, fs *flag.FlagSet) (string, error) {
	v := flagString(fs, "nats")
	name := "--nats"
	if v == "" {
		v, name = in.env.NATSURL, "AUTH_NATS_URL"
	}
	if v == "" {
		return "", usageErrorf("--nats is required when AUTH_NATS_URL is not set")
	}
	r := config.NewReader(config.Map(map[string]string{name: v}))
	urls := r.URLList(name, "nats", "tls", "ws", "wss")
	if err := r.Err(); err != nil {
		return "", usageErrorf("%s", config.Line(err))
	}
	if len(urls) == 0 {
		return "", usageErrorf("%s names no server", name)
	}
	return strings.Join(urls, ","), nil
}

// connectNATS connects for a backup or a restore. Its errors name the
// servers, never the credentials.
func connectNATS(url string) (*nats.Conn, error) {
	nc, err := natsconn.Connect(url, "authctl")
	if err != nil {
		// natsconn names the services' variable; here it may be the flag.
		return nil, errors.New(strings.TrimPrefix(err.Error(), "AUTH_NATS_URL: "))
	}
	return nc, nil
}

func runBackup(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	dir := flagString(fs, "out")
	if dir == "" {
		return usageErrorf("--out is required")
	}
	url, err := natsURL(in, fs)
	if err != nil {
		return err
	}
	if err := makeBackupDir(dir); err != nil {
		return err
	}
	nc, err := connectNATS(url)
	if err != nil {
		return err
	}
	defer nc.Close()

	m := manifest{
		Format: manifestFormat, CreatedAt: in.env.Now().UTC(),
		AuthstreamVersion: buildVersion(), NATSServerVersion: nc.ConnectedServerVersion(),
	}
	// Whatever goes wrong, leave no file that could pass for a backup.
	complete := false
	defer func() {
		if !complete {
			for _, name := range backupStreams {
				_ = os.Remove(filepath.Join(dir, snapshotFile(name)))
			}
		}
	}()
	for _, name := range backupStreams {
		if !in.opts.json {
			fmt.Fprintf(in.env.Err, "backing up %s...\n", name)
		}
		s, err := backupStream(ctx, nc, dir, name, in.progress(name, "written"))
		if err != nil {
			return err
		}
		m.Streams = append(m.Streams, s)
		if !in.opts.json {
			fmt.Fprintf(in.env.Out, "%s: %s, %s, sha256 %s\n", name, describeState(s.State), byteSize(s.Bytes), s.SHA256[:16])
		}
	}
	if err := writeManifest(dir, m); err != nil {
		return err
	}
	complete = true
	if in.opts.json {
		return printJSON(in.env.Out, m)
	}
	fmt.Fprintf(in.env.Out, "backup of %d streams written to %s; keep AUTH_KEK apart from it\n", len(m.Streams), dir)
	return nil
}

// makeBackupDir creates dir, readable by its owner only, or accepts an
// empty one: a backup never mixes with other files.
func makeBackupDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("backup: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("backup: %s is not empty; give a new folder", dir)
	}
	return nil
}

// backupStream writes one stream's snapshot into dir and checks it back:
// the file must read as a complete snapshot of the state the server
// reported.
func backupStream(ctx context.Context, nc *nats.Conn, dir, name string, progress func(int64)) (manifestStream, error) {
	path := filepath.Join(dir, snapshotFile(name))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return manifestStream{}, fmt.Errorf("backup: %w", err)
	}
	defer f.Close() //nolint:errcheck // for the failure paths: closed and checked below
	h := sha256.New()
	info, err := snapshot.Snapshot(ctx, nc, name, io.MultiWriter(f, h), snapshot.WithProgress(progress))
	if errors.Is(err, snapshot.ErrStreamNotFound) {
		return manifestStream{}, fmt.Errorf("backup: the server has no stream %s: is this authstream's NATS, and its account?", name)
	}
	if err != nil {
		return manifestStream{}, fmt.Errorf("backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		return manifestStream{}, fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return manifestStream{}, fmt.Errorf("backup: %w", err)
	}
	if err := checkSnapshotFile(path, info.State); err != nil {
		return manifestStream{}, fmt.Errorf("backup: %s: %w", name, err)
	}
	return manifestStream{
		Name: name, File: snapshotFile(name), Bytes: info.Bytes, SHA256: hex.EncodeToString(h.Sum(nil)),
		Config: info.Config, State: info.State,
	}, nil
}

func snapshotFile(stream string) string { return stream + ".snapshot" }

// checkSnapshotFile reads a snapshot file through and compares what it
// holds with the state recorded for it.
func checkSnapshotFile(path string, want snapshot.State) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // read only
	c, err := snapshot.Inspect(f)
	if err != nil {
		return err
	}
	if c.Format == snapshot.FormatArchive && (c.State.LastSeq != want.LastSeq || c.State.FirstSeq != want.FirstSeq) {
		return fmt.Errorf("the snapshot holds sequences %d to %d, the manifest says %d to %d",
			c.State.FirstSeq, c.State.LastSeq, want.FirstSeq, want.LastSeq)
	}
	return nil
}

func writeManifest(dir string, m manifest) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+manifestFile+".*")
	if err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	// Both are for the failure paths: the file is closed and renamed below.
	defer os.Remove(tmp.Name()) //nolint:errcheck // see above
	defer tmp.Close()           //nolint:errcheck // see above
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, manifestFile)); err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	return nil
}

// buildVersion is the version authctl was built as, "dev" for a build
// from a work tree.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// describeState says how many messages a stream holds and where: "3
// messages (sequences 1 to 3)", "no messages (last sequence 9)".
func describeState(st snapshot.State) string {
	switch {
	case st.Messages == 0 && st.LastSeq == 0:
		return "no messages"
	case st.Messages == 0:
		return fmt.Sprintf("no messages (last sequence %d)", st.LastSeq)
	case st.Messages == 1:
		return fmt.Sprintf("1 message (sequence %d)", st.LastSeq)
	}
	return fmt.Sprintf("%d messages (sequences %d to %d)", st.Messages, st.FirstSeq, st.LastSeq)
}

// progressEvery is how often a long snapshot or restore reports the bytes
// moved so far.
const progressEvery = 2 * time.Second

// progress returns a callback for snapshot.WithProgress that prints a line
// on standard error at most every progressEvery; nothing with --json.
func (in *inv) progress(stream, verb string) func(int64) {
	last := time.Now()
	return func(n int64) {
		if in.opts.json || time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		fmt.Fprintf(in.env.Err, "  %s: %s %s so far\n", stream, byteSize(n), verb)
	}
}

// byteSize is n in B, KiB or MiB, for progress lines.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
