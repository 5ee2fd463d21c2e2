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
	"slices"
	"strconv"
	"strings"

	"github.com/authstream/authstream/libs/eventstore/snapshot"
	"github.com/nats-io/nats.go"
)

// restoredStream is what restore reports of one stream.
type restoredStream struct {
	Name     string `json:"name"`
	Messages uint64 `json:"messages"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

func runRestore(ctx context.Context, in *inv, fs *flag.FlagSet, args []string) error {
	if err := wantArgs(args); err != nil {
		return err
	}
	dir := flagString(fs, "in")
	if dir == "" {
		return usageErrorf("--in is required")
	}
	replicas := fs.Lookup("replicas").Value.(flag.Getter).Get().(int)
	if replicas < 0 || replicas > 5 {
		return usageErrorf("--replicas must be between 1 and 5, got %d", replicas)
	}
	url, err := natsURL(in, fs)
	if err != nil {
		return err
	}

	// Everything that can be checked without the server is checked before
	// anything is sent to it.
	m, err := readManifest(dir)
	if err != nil {
		return err
	}
	for i, s := range m.Streams {
		if err := verifyBackupFile(dir, s); err != nil {
			return fmt.Errorf("restore: %s: %w; nothing was restored", s.Name, err)
		}
		if replicas > 0 {
			if m.Streams[i].Config, err = withReplicas(s.Config, replicas); err != nil {
				return fmt.Errorf("restore: %s: %w", s.Name, err)
			}
		}
	}
	if !in.opts.json {
		fmt.Fprintf(in.env.Err, "%s: the manifest and the checksums of its %d files verify\n", dir, len(m.Streams))
	}

	nc, err := connectNATS(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := checkTargetEmpty(ctx, nc, m); err != nil {
		return err
	}

	var done []restoredStream
	for _, s := range m.Streams {
		if !in.opts.json {
			fmt.Fprintf(in.env.Err, "restoring %s...\n", s.Name)
		}
		st, err := restoreStream(ctx, nc, dir, s, in.progress(s.Name, "sent"))
		if err != nil {
			return fmt.Errorf("%w%s", err, restoredSoFar(done))
		}
		r := restoredStream{Name: s.Name, Messages: st.Messages, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq}
		done = append(done, r)
		if !in.opts.json {
			fmt.Fprintf(in.env.Out, "%s: restored, %s\n", r.Name, describeState(st))
		}
	}
	if in.opts.json {
		return printJSON(in.env.Out, done)
	}
	fmt.Fprintf(in.env.Out, "restore of %d streams from %s done; start the services with the same AUTH_KEK and an empty database\n", len(done), dir)
	return nil
}

// readManifest reads and checks the manifest of a backup folder.
func readManifest(dir string) (manifest, error) {
	var m manifest
	raw, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, fmt.Errorf("restore: %s has no %s: not a backup, or an incomplete one", dir, manifestFile)
	}
	if err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("restore: %s: %v", manifestFile, err)
	}
	if m.Format != manifestFormat {
		return m, fmt.Errorf("restore: %s has format %d; this authctl reads format %d", manifestFile, m.Format, manifestFormat)
	}
	var names []string
	for _, s := range m.Streams {
		names = append(names, s.Name)
		switch {
		case !slices.Contains(backupStreams, s.Name):
			return m, fmt.Errorf("restore: %s names stream %q, which is not authstream's", manifestFile, s.Name)
		case s.File != snapshotFile(s.Name):
			// The file name is never taken from the manifest as a path.
			return m, fmt.Errorf("restore: %s names file %q for %s, want %q", manifestFile, s.File, s.Name, snapshotFile(s.Name))
		case len(s.Config) == 0 || len(s.SHA256) != sha256.Size*2:
			return m, fmt.Errorf("restore: %s: stream %s lacks its configuration or checksum", manifestFile, s.Name)
		}
		var cfg struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(s.Config, &cfg); err != nil || cfg.Name != s.Name {
			return m, fmt.Errorf("restore: %s: the configuration of %s does not name it", manifestFile, s.Name)
		}
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(backupStreams))
	if !slices.Contains(names, dataKeysStream) {
		want = slices.DeleteFunc(want, func(n string) bool { return n == dataKeysStream }) // an older backup
	}
	if !slices.Equal(names, want) {
		return m, fmt.Errorf("restore: %s lists streams %s, want each of %s once",
			manifestFile, strings.Join(names, ", "), strings.Join(want, ", "))
	}
	return m, nil
}

// verifyBackupFile checks a snapshot file's size and checksum against the
// manifest, then reads it through.
func verifyBackupFile(dir string, s manifestStream) error {
	path := filepath.Join(dir, s.File)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // read only
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != s.Bytes {
		return fmt.Errorf("%s has %d bytes, the manifest says %d", s.File, n, s.Bytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
		return fmt.Errorf("%s does not match its sha256 in the manifest (damaged or altered)", s.File)
	}
	return checkSnapshotFile(path, s.State)
}

// checkTargetEmpty refuses a server that already has one of the streams:
// the server would refuse that stream's restore anyway, but only after the
// ones before it were restored.
func checkTargetEmpty(ctx context.Context, nc *nats.Conn, m manifest) error {
	var present []string
	for _, s := range m.Streams {
		ok, err := snapshot.Exists(ctx, nc, s.Name)
		if err != nil {
			return fmt.Errorf("restore: %w; nothing was restored", err)
		}
		if ok {
			present = append(present, s.Name)
		}
	}
	if len(present) > 0 {
		return fmt.Errorf("restore: the server already has %s; restore only into a NATS without authstream's streams (nothing was changed)",
			strings.Join(present, ", "))
	}
	return nil
}

func restoreStream(ctx context.Context, nc *nats.Conn, dir string, s manifestStream, progress func(int64)) (snapshot.State, error) {
	f, err := os.Open(filepath.Join(dir, s.File))
	if err != nil {
		return snapshot.State{}, fmt.Errorf("restore: %w", err)
	}
	defer f.Close() //nolint:errcheck // read only
	st, err := snapshot.Restore(ctx, nc, s.Name, s.Config, s.State, f, snapshot.WithProgress(progress))
	if err != nil {
		if strings.Contains(err.Error(), "replicas") {
			return st, fmt.Errorf("%w (set the replicas the target can hold with --replicas)", err)
		}
		return st, err
	}
	// Messages may have expired since the backup (activity retention), so
	// only the sequence range must match.
	if st.LastSeq != s.State.LastSeq || st.Messages > s.State.Messages {
		return st, fmt.Errorf("restore: %s came back with %d messages up to sequence %d, the backup has %d up to %d",
			s.Name, st.Messages, st.LastSeq, s.State.Messages, s.State.LastSeq)
	}
	return st, nil
}

// withReplicas returns a stream configuration with its replica count set
// to n, every other field kept as the server wrote it: a backup of a
// three-node cluster restores into a single server only with one replica.
func withReplicas(cfg json.RawMessage, n int) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &m); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	m["num_replicas"] = json.RawMessage(strconv.Itoa(n))
	return json.Marshal(m)
}

// restoredSoFar tells, after a failure, which streams are in place.
func restoredSoFar(done []restoredStream) string {
	if len(done) == 0 {
		return ""
	}
	names := make([]string, len(done))
	for i, d := range done {
		names[i] = d.Name
	}
	return " (already restored: " + strings.Join(names, ", ") + "; delete them before trying again)"
}
