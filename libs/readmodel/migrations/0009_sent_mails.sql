-- Mails the dispatcher sent, one row per event that asked for one.
--
-- Like the webhook delivery log, this is the dispatcher's record of what
-- happened on the wire, which no replay of the log can tell: a plain
-- table a projection rebuild never touches. The row is keyed by the event
-- id, so an event redelivered by JetStream finds its mail already sent
-- and is only acknowledged. A row is written as 'sending' (committed)
-- before the mail goes to the SMTP server and turned 'sent' after the
-- server accepted it; a row found 'sending' after a crash means the
-- outcome is unknown, and the mail is sent again with the same
-- Message-ID (see docs/adr/0014-mail-delivery.md).
CREATE TABLE sent_mails (
    tenant_id    text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    purpose      text        NOT NULL,
    stream_seq   bigint      NOT NULL,
    -- 'sending': handed to the SMTP server, acceptance not recorded yet;
    -- 'sent': accepted; 'failed': refused for good (or the link expired
    -- before it could go), never retried.
    status       text        NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts     integer     NOT NULL CHECK (attempts >= 0),
    message_id   text        NOT NULL,
    error        text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    sent_at      timestamptz,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX sent_mails_status ON sent_mails (status, updated_at);
ALTER TABLE sent_mails ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sent_mails FOR SELECT TO authstream_query
    USING (tenant_id = current_setting('authstream.tenant', true));
GRANT SELECT ON sent_mails TO authstream_query;
