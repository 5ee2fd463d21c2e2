-- Webhook endpoints and their deliveries.
--
-- The endpoints of each tenant (webhook.registered, webhook.updated,
-- webhook.secret_rotated, webhook.paused, webhook.resumed,
-- webhook.replay_requested, webhook.deleted) are part of the accounts
-- projection: a table in every generation, published as a view. Their
-- secrets stay in the events, sealed: the read model holds none.
--
-- The delivery log and each endpoint's delivery state are the
-- dispatcher's, not a projection: they record what happened on the wire,
-- which no replay of the log can tell, so they live in plain tables a
-- rebuild never touches.

-- readmodel_accounts_create_webhook_tables creates the webhook table in
-- the existing schema s, with row-level security and grants for
-- authstream_query: in every new generation (through
-- readmodel_accounts_create_tables) and, below, in those that exist.
CREATE FUNCTION readmodel_accounts_create_webhook_tables(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    -- event_types are kept as the events hold them (sorted). A deleted
    -- endpoint has no row.
    EXECUTE format($q$
        CREATE TABLE %I.webhooks (
            tenant_id                  text        NOT NULL,
            webhook_id                 text        NOT NULL,
            url                        text        NOT NULL,
            event_types                text[]      NOT NULL,
            description                text        NOT NULL,
            paused                     boolean     NOT NULL,
            previous_secret_expires_at timestamptz,
            version                    bigint      NOT NULL,
            created_at                 timestamptz NOT NULL,
            updated_at                 timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, webhook_id)
        )$q$, s);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO authstream_query', s);
    EXECUTE format('ALTER TABLE %I.webhooks ENABLE ROW LEVEL SECURITY', s);
    EXECUTE format($q$CREATE POLICY tenant_isolation ON %I.webhooks FOR SELECT TO authstream_query
        USING (tenant_id = current_setting('authstream.tenant', true))$q$, s);
    EXECUTE format('GRANT SELECT ON %I.webhooks TO authstream_query', s);
END
$fn$;

-- readmodel_accounts_create_tables and readmodel_accounts_publish, as in
-- 0006, with the webhook table.
CREATE OR REPLACE FUNCTION readmodel_accounts_create_tables(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM readmodel_accounts_create_account_tables(s);
    PERFORM readmodel_accounts_create_client_tables(s);
    PERFORM readmodel_accounts_create_audit_tables(s);
    PERFORM readmodel_accounts_create_webhook_tables(s);
END
$fn$;

CREATE OR REPLACE FUNCTION readmodel_accounts_publish(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'users', 'roles', 'user_roles', 'user_permissions', 'clients', 'client_roles',
                             'audit_tree_heads', 'audit_tree_hashes', 'webhooks'] LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %I WITH (security_invoker = true) AS SELECT * FROM %I.%I', t, s, t);
        EXECUTE format('GRANT SELECT ON %I TO authstream_query', t);
    END LOOP;
END
$fn$;

-- The generations that exist get the table. Webhook events an earlier
-- projector passed without effect reach it only through a rebuild.
DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT schema_name FROM projection_generations
              WHERE projection = 'accounts' AND state IN ('active', 'building') LOOP
        PERFORM readmodel_accounts_create_webhook_tables(s);
    END LOOP;
    SELECT schema_name INTO s FROM projection_generations WHERE projection = 'accounts' AND state = 'active';
    IF s IS NOT NULL THEN
        PERFORM readmodel_accounts_publish(s);
    END IF;
END
$$;

-- Every delivery attempt of the dispatcher: the event (its id, type and
-- stream sequence), the attempt's number, its outcome (delivered, failed:
-- retried at next_attempt_at, dead: given up on after the dead-letter
-- time), the receiver's status code (NULL when none came), the latency
-- and a short error (never the secret, never the body).
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id       text        NOT NULL,
    webhook_id      text        NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    stream_seq      bigint      NOT NULL,
    attempt         integer     NOT NULL CHECK (attempt > 0),
    status          text        NOT NULL CHECK (status IN ('delivered', 'failed', 'dead')),
    response_code   integer,
    latency_ms      double precision NOT NULL,
    error           text        NOT NULL DEFAULT '',
    attempted_at    timestamptz NOT NULL,
    next_attempt_at timestamptz,
    PRIMARY KEY (tenant_id, webhook_id, id)
);
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries FOR SELECT TO authstream_query
    USING (tenant_id = current_setting('authstream.tenant', true));
GRANT SELECT ON webhook_deliveries TO authstream_query;

-- Each endpoint's delivery state: ok, or failing since the first failure
-- of the delivery under way (dead letters were dropped since when the
-- dead-letter time passed), and the last event delivered.
CREATE TABLE webhook_endpoint_state (
    tenant_id          text        NOT NULL,
    webhook_id         text        NOT NULL,
    status             text        NOT NULL CHECK (status IN ('ok', 'failing')),
    failing_since      timestamptz,
    dead_letters       bigint      NOT NULL DEFAULT 0,
    last_delivered_seq bigint      NOT NULL DEFAULT 0,
    last_delivered_at  timestamptz,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id)
);
ALTER TABLE webhook_endpoint_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_endpoint_state FOR SELECT TO authstream_query
    USING (tenant_id = current_setting('authstream.tenant', true));
GRANT SELECT ON webhook_endpoint_state TO authstream_query;
