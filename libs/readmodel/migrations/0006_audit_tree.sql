-- Each tenant's verifiable log (docs/auditing.md, docs/adr/0008): the RFC
-- 9162 Merkle tree over the tenant's account events in stream order, kept
-- by the accounts projection in each generation's schema, and the signed
-- checkpoints, kept outside every generation.
--
-- The tree is a projection like the accounts tables: a rebuild fills a new
-- generation's tree from the log and swaps it in with the rest, and since
-- the leaves are the events' own hashes in stream order it reproduces the
-- same hashes. A checkpoint is not: it is a statement the platform signed
-- at a time, so it lives in a table of its own that no rebuild touches.

-- readmodel_accounts_create_audit_tables creates the tree tables in the
-- existing schema s, with row-level security and grants for
-- authstream_query: in every new generation (through
-- readmodel_accounts_create_tables) and, below, in those that exist.
--
-- audit_tree_heads is each tenant's tree as of the generation's
-- checkpoint: its size, its root, and its frontier (the roots of the
-- complete subtrees along its right edge, largest first, 32 bytes each),
-- from which the next leaves are appended without reading stored hashes.
-- partition is the tenant's, for the worker that holds it.
--
-- audit_tree_hashes holds the tree's stored hashes by tlog's stored-hash
-- index (golang.org/x/mod/sumdb/tlog): a row holds the hashes of indexes
-- start_idx, start_idx+1, ... (32 bytes each) that one batch added for the
-- tenant. Appending leaves adds hashes of consecutive indexes only, so a
-- batch writes one row per tenant, and a stored hash never changes.
CREATE FUNCTION readmodel_accounts_create_audit_tables(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    t text;
BEGIN
    EXECUTE format($q$
        CREATE TABLE %I.audit_tree_heads (
            tenant_id  text        NOT NULL,
            partition  int         NOT NULL CHECK (partition >= 0),
            size       bigint      NOT NULL CHECK (size > 0),
            root       bytea       NOT NULL CHECK (length(root) = 32),
            frontier   bytea       NOT NULL CHECK (length(frontier) %% 32 = 0),
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (tenant_id)
        )$q$, s);
    EXECUTE format('CREATE INDEX ON %I.audit_tree_heads (partition)', s);

    EXECUTE format($q$
        CREATE TABLE %I.audit_tree_hashes (
            tenant_id text   NOT NULL,
            start_idx bigint NOT NULL CHECK (start_idx >= 0),
            hashes    bytea  NOT NULL CHECK (length(hashes) > 0 AND length(hashes) %% 32 = 0),
            PRIMARY KEY (tenant_id, start_idx)
        )$q$, s);

    FOREACH t IN ARRAY ARRAY['audit_tree_heads', 'audit_tree_hashes'] LOOP
        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', s, t);
        EXECUTE format($q$CREATE POLICY tenant_isolation ON %I.%I FOR SELECT TO authstream_query
            USING (tenant_id = current_setting('authstream.tenant', true))$q$, s, t);
        EXECUTE format('GRANT SELECT ON %I.%I TO authstream_query', s, t);
    END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION readmodel_accounts_create_tables(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM readmodel_accounts_create_account_tables(s);
    PERFORM readmodel_accounts_create_client_tables(s);
    PERFORM readmodel_accounts_create_audit_tables(s);
END
$fn$;

CREATE OR REPLACE FUNCTION readmodel_accounts_publish(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'users', 'roles', 'user_roles', 'user_permissions', 'clients', 'client_roles',
                             'audit_tree_heads', 'audit_tree_hashes'] LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %I WITH (security_invoker = true) AS SELECT * FROM %I.%I', t, s, t);
        EXECUTE format('GRANT SELECT ON %I TO authstream_query', t);
    END LOOP;
END
$fn$;

-- Generations whose trees cannot be whole: they had applied events before
-- this migration gave them tree tables, so their trees would start in the
-- middle of the tenants' logs. The projector keeps no tree in them (and so
-- cuts no checkpoint) until a rebuild replaces them with a generation
-- whose trees start at sequence 1 (docs/operations.md).
CREATE TABLE audit_tree_incomplete (
    schema_name text PRIMARY KEY
);

-- The generations that exist get the tables; those that applied events
-- already are listed above.
DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT schema_name FROM projection_generations
              WHERE projection = 'accounts' AND state IN ('active', 'building') LOOP
        PERFORM readmodel_accounts_create_audit_tables(s);
    END LOOP;
    INSERT INTO audit_tree_incomplete (schema_name)
    SELECT g.schema_name FROM projection_generations g
     WHERE g.projection = 'accounts' AND g.state IN ('active', 'building')
       AND EXISTS (SELECT 1 FROM projection_checkpoints c
                    WHERE c.projection = g.projection || '@' || g.generation AND c.seq > 0);
    SELECT schema_name INTO s FROM projection_generations WHERE projection = 'accounts' AND state = 'active';
    IF s IS NOT NULL THEN
        PERFORM readmodel_accounts_publish(s);
    END IF;
END
$$;

-- Every checkpoint the projector signed: the tenant's tree at size, its
-- root, the signed note (text/plain, as GET /t/{t}/audit/checkpoint serves
-- it) and the id of the audit key that signed it. At most one per size: a
-- checkpoint is cut only when the tree has grown past the last one. Rows
-- are never updated; none is needed for a proof (the tree gives them), so
-- an operator may delete old ones (docs/operations.md).
CREATE TABLE audit_checkpoints (
    tenant_id text        NOT NULL,
    size      bigint      NOT NULL CHECK (size > 0),
    root      bytea       NOT NULL CHECK (length(root) = 32),
    note      text        NOT NULL,
    key_id    text        NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, size)
);
ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_checkpoints FOR SELECT TO authstream_query
    USING (tenant_id = current_setting('authstream.tenant', true));
GRANT SELECT ON audit_checkpoints TO authstream_query;
