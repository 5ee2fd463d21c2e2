// Package eventstore appends, loads and reads authstream's events on NATS
// JetStream: the AUTH_EVENTS and AUTH_ACTIVITY streams, optimistic
// concurrency per aggregate subject, atomic multi-aggregate batches,
// uniqueness claims written in the same batch, idempotent retries by event
// id, ordered reads for projectors and auditors, and opaque consistency
// tokens.
//
// The atomic batches of concurrent Appends to one stream are merged into
// one (group commit, WithGroupCommit; ADR 0016), each keeping its own
// expectations and ids; a merged batch that fails is followed by each
// Append's own batch, so every guarantee below holds per Append.
//
// Callers never see nats.go errors to decide on: a lost race is
// ErrConcurrency, a held uniqueness claim is ErrClaimTaken, an append whose
// outcome could not be learned is ErrAmbiguous.
//
// Facts about nats-server v2.15.2 that the code relies on (each is checked
// by the conformance suite in eventstoretest against a single server and a
// three-node cluster):
//
//   - The stream subject transform applies only to subjects that match its
//     source; others, such as claims on "auth.uniq.>", are stored as
//     published. One stream-level transform therefore serves both.
//   - Nats-Expected-Last-Subject-Sequence is checked against the stored,
//     transformed subject, in plain publishes and inside atomic batches, and
//     0 means "no message on that subject yet". The optional
//     Nats-Expected-Last-Subject-Sequence-Subject header is not needed.
//   - A failed expectation answers 10071 (wrong last sequence: N), in an
//     atomic batch too; 10164 (wrong last sequence, no number) answers an
//     expectation on a subject that another in-flight batch is writing.
//   - Nats-Msg-Id de-duplication applies inside atomic batches: a batch
//     carrying an id still in the duplicate window is rejected whole with
//     10201. A plain publish of such an id is acknowledged as a duplicate,
//     except that a single server checks the expected sequence first and
//     answers 10071. Every one of these cases is settled by reading the
//     aggregate back and looking for the event ids.
//   - The messages of an atomic batch get consecutive stream sequences, the
//     last one being the sequence in the batch acknowledgement.
//   - A direct get is answered, headers Nats-Stream naming the answering
//     stream, by whichever server holds the stream (or a mirror serving
//     direct gets); on a stream of one replica that is the leader alone,
//     so leader reads take it there (leader.go).
//   - A batched direct get ({"seq", "next_by_subj", "batch"}) answers with at
//     most batch messages, each with a Nats-Num-Pending header, then an
//     end-of-batch message (status 204, no body) whose Nats-Num-Pending
//     counts the matching messages left after the batch. The subject may
//     be a wildcard filter ("auth.evt.acme.>"), which is how Count counts
//     without creating a consumer.
//   - A batched direct get of the last messages of listed subjects
//     ({"multi_last": [...]}, at most 1,024) answers the subjects that hold
//     a message, each with a Nats-Num-Pending header, then the same
//     end-of-batch message; status 404 when none does. ClaimStates reads
//     many claims with it.
package eventstore
