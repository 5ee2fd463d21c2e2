package auditlog_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/events"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// verifyExport is the check of docs/auditing.md ("Checking with standard
// tools"), with golang.org/x/mod alone: the export's events must be exactly
// the log the checkpoint signs.
func verifyExport(checkpoint []byte, verifierKey string, export []events.Envelope) error {
	v, _ := note.NewVerifier(verifierKey)
	n, err := note.Open(checkpoint, note.VerifierList(v))
	if err != nil {
		return err // not signed by the tenant's audit key
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	size, _ := strconv.ParseInt(lines[1], 10, 64)
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, e := range export { // the export's lines, decoded, in order
		leaf, _ := hex.DecodeString(e.Hash)
		h, _ := tlog.StoredHashes(int64(i), leaf, r)
		hashes = append(hashes, h...)
	}
	if int64(len(export)) != size {
		return errors.New("the export is not the log the checkpoint signs")
	}
	root, err := tlog.TreeHash(size, r)
	if err != nil || root.String() != lines[2] {
		return errors.New("the export is not the log the checkpoint signs")
	}
	return nil
}

func Example_verifyExport() {
	// A tenant's log of three events, and a checkpoint the platform
	// signed over it.
	var export []events.Envelope
	for i := range 3 {
		e, _ := events.New(events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"docs:read"}}, events.Meta{
			ID: events.NewID(), Tenant: "acme", Aggregate: events.AggregateRole, AggregateID: "r" + strconv.Itoa(i),
			OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Actor: events.System,
		})
		_ = events.Chain("", 1, &e)
		export = append(export, e)
	}
	var tree auditlog.Tree
	for _, e := range export {
		_ = tree.Append(e.Hash)
	}
	root, _ := tree.Root(3)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := auditlog.NewSigner("auth.example.com/t/acme", priv)
	checkpoint, _ := auditlog.Sign(auditlog.Checkpoint{Origin: "auth.example.com/t/acme", Size: 3, Root: root}, signer)
	key, _ := auditlog.VerifierKey("auth.example.com/t/acme", pub)

	fmt.Println(verifyExport(checkpoint, key, export))
	fmt.Println(verifyExport(checkpoint, key, export[:2]))                                         // the last event cut off
	fmt.Println(verifyExport(checkpoint, key, []events.Envelope{export[1], export[0], export[2]})) // two swapped
	// Output:
	// <nil>
	// the export is not the log the checkpoint signs
	// the export is not the log the checkpoint signs
}
