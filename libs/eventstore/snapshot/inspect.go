package snapshot

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats-server/v2/server/archive"
)

// Formats of a snapshot.
const (
	// FormatArchive is nats-server v2.15's: one entry per message, with its
	// sequence, subject and timestamp, and an end-of-backup sentinel.
	FormatArchive = "archive"
	// FormatTar is older servers' copy of the store's files.
	FormatTar = "tar"
)

// Contents is what Inspect found in a snapshot.
type Contents struct {
	// Format is FormatArchive or FormatTar.
	Format string
	// State is the stream state recorded in an archive (zero for tar).
	State State
	// Messages counts the messages of an archive, and FirstSeq and LastSeq
	// are the first and last of their sequences (0 when it holds none). A
	// tar's messages are not counted.
	Messages          uint64
	FirstSeq, LastSeq uint64
	// Consumers counts the consumers in the snapshot (archive only).
	Consumers int
	// Files counts the files of a tar.
	Files int
}

// Inspect reads a whole snapshot without a server and reports what it
// holds. It returns an error wrapping ErrFormat when the bytes are not a
// complete snapshot: not S2 compressed, neither format, a message out of
// order or beyond the recorded state, or cut short (an archive without its
// end sentinel, a tar without its end).
func Inspect(r io.Reader) (Contents, error) {
	br := bufio.NewReaderSize(s2.NewReader(r), 64<<10)
	magic, err := br.Peek(len(archive.MagicBytes))
	if err != nil {
		return Contents{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if bytes.Equal(magic, []byte(archive.MagicBytes)) {
		return inspectArchive(br)
	}
	return inspectTar(br)
}

func inspectArchive(r io.Reader) (Contents, error) {
	c := Contents{Format: FormatArchive}
	ar := archive.NewReader(r)
	bad := func(format string, args ...any) (Contents, error) {
		return c, fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
	}
	hdr, err := ar.Next()
	if err != nil {
		return bad("%v", err)
	}
	if hdr.Name != "state.json" {
		return bad("first entry is %q, not the stream state", hdr.Name)
	}
	if err := json.NewDecoder(io.LimitReader(ar, 1<<20)).Decode(&c.State); err != nil {
		return bad("stream state: %v", err)
	}
	for {
		hdr, err := ar.Next()
		if err != nil {
			// io.EOF too: the sentinel is missing, so the snapshot was cut.
			return bad("after %d messages: %v", c.Messages, err)
		}
		if hdr.Sequence == 0 {
			if hdr.Name == "" && hdr.Timestamp == 0 && hdr.HeaderSize == 0 && hdr.PayloadSize == 0 {
				break
			}
			if name, ok := strings.CutPrefix(hdr.Name, "consumers/"); ok && name != "" && c.Messages == 0 {
				c.Consumers++
				continue
			}
			return bad("unexpected entry %q", hdr.Name)
		}
		if hdr.Sequence <= c.LastSeq {
			return bad("message %d comes after %d", hdr.Sequence, c.LastSeq)
		}
		if hdr.Sequence > c.State.LastSeq {
			return bad("message %d is beyond the recorded last sequence %d", hdr.Sequence, c.State.LastSeq)
		}
		if c.Messages == 0 {
			c.FirstSeq = hdr.Sequence
		}
		c.Messages++
		c.LastSeq = hdr.Sequence
	}
	// Reading on drains the S2 stream, which checks its checksums to the
	// end.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return bad("%v", err)
	}
	if c.Messages > c.State.Messages {
		return bad("%d messages, more than the %d recorded", c.Messages, c.State.Messages)
	}
	if c.Consumers != c.State.Consumers {
		return bad("%d consumers, %d recorded", c.Consumers, c.State.Consumers)
	}
	return c, nil
}

func inspectTar(r io.Reader) (Contents, error) {
	c := Contents{Format: FormatTar}
	tr := tar.NewReader(r)
	for {
		_, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return c, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		// G110: the entry is read into io.Discard, so a decompression bomb
		// costs reading time here, not memory.
		if _, err := io.Copy(io.Discard, tr); err != nil { //nolint:gosec // G110, as said above
			return c, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		c.Files++
	}
	if c.Files == 0 {
		return c, fmt.Errorf("%w: no files", ErrFormat)
	}
	return c, nil
}
