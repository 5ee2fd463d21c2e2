-- Quarantine per tenant (docs/adr/0003-projection-rebuild.md, addendum):
-- an event that cannot be applied stops its own tenant's projection, not its
-- partition's; a message that is no event of the platform at all is
-- recorded and passed.

-- The partition-level quarantine of 0001 goes. Each of its rows marked the
-- event just after its partition's checkpoint (the partition had stopped
-- right before it), so the upgraded worker meets that event first and
-- records it under the new rules: its tenant quarantined, or the message
-- skipped as no platform event. Nothing in a row is lost but the time it
-- was written. (A projector of the previous release still running finds
-- the table gone and stops applying: upgrade every projector together.)
DROP TABLE projection_quarantine;

-- The event a tenant's projection stopped at, per generation. The
-- partition's checkpoint moves on for every other tenant; the tenant's
-- later events are left in the log and passed over until an operator acts.
-- An operator's action (retry the event, or skip it) is written here and
-- carried out by the worker that holds the partition, between two of its
-- batches, so it is ordered with the live events; the worker then deletes
-- the row (released) or moves it to the next event that cannot be applied.
CREATE TABLE projection_tenant_quarantine (
    projection     text        NOT NULL, -- '<projection>@<generation>', as checkpoints
    tenant         text        NOT NULL,
    partition      int         NOT NULL CHECK (partition >= 0),
    seq            bigint      NOT NULL, -- the event the tenant stopped at
    subject        text        NOT NULL,
    event_id       text        NOT NULL,
    event_type     text        NOT NULL,
    error          text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    action         text        CHECK (action IN ('retry', 'skip')),
    action_at      timestamptz,
    PRIMARY KEY (projection, tenant)
);
CREATE INDEX projection_tenant_quarantine_partition ON projection_tenant_quarantine (projection, partition);

-- Messages a projection passed without applying them: messages that are no
-- event of the platform (no valid envelope, a subject that does not name
-- the envelope's aggregate, a malformed subject, an event of a tenant that
-- was never created), and events an operator skipped for good. Keyed by
-- the projection's name, not its generation: every generation meets the
-- same messages, and an operator's skip holds for every generation (a full
-- or per-tenant rebuild passes the event too).
CREATE TABLE projection_skipped_messages (
    projection text        NOT NULL,
    seq        bigint      NOT NULL,
    partition  int         NOT NULL CHECK (partition >= 0),
    subject    text        NOT NULL,
    tenant     text        NOT NULL, -- '' when the subject names none
    event_id   text        NOT NULL, -- '' when the message has no valid envelope
    event_type text        NOT NULL,
    reason     text        NOT NULL CHECK (reason IN
                   ('undecodable', 'malformed-subject', 'subject-mismatch', 'unknown-tenant', 'skipped-by-operator')),
    error      text        NOT NULL,
    skipped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, seq)
);
CREATE INDEX projection_skipped_messages_tenant ON projection_skipped_messages (projection, tenant) WHERE tenant <> '';

-- The quarantined tenants of every projection's active generation, under
-- the projection's plain name, for the query service: a quarantined
-- tenant's reads are not current, and must not be presented as such
-- (readmodel.QuarantinedTenants; changes come on the channel
-- authstream_projection_quarantine).
CREATE VIEW projection_quarantined_tenants AS
SELECT g.projection, q.tenant, q.partition, q.seq, q.event_id, q.event_type, q.error, q.quarantined_at
  FROM projection_generations g
  JOIN projection_tenant_quarantine q ON q.projection = g.projection || '@' || g.generation
 WHERE g.state = 'active';
GRANT SELECT ON projection_quarantined_tenants TO authstream_query;
