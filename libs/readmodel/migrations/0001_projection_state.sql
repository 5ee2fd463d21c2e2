-- The projector's bookkeeping. Projection tables come in later migrations.

-- The last stream sequence applied per (projection, partition), written in the
-- same transaction as the rows it covers: Postgres owns the cursor, so a
-- crash between applying and recording is impossible.
CREATE TABLE projection_checkpoints (
    projection text        NOT NULL,
    partition  int         NOT NULL CHECK (partition >= 0),
    seq        bigint      NOT NULL CHECK (seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, partition)
);

-- The event a partition is stuck on. At most one per (projection, partition):
-- the partition stops advancing until an operator resumes it, so nothing
-- after the failing event is applied out of order.
CREATE TABLE projection_quarantine (
    projection     text        NOT NULL,
    partition      int         NOT NULL CHECK (partition >= 0),
    seq            bigint      NOT NULL,
    subject        text        NOT NULL,
    event_id       text        NOT NULL,
    event_type     text        NOT NULL,
    error          text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, partition)
);
