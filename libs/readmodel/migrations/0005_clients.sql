-- The OpenID Connect clients of each tenant (client.registered,
-- client.updated, client.secret_rotated, client.deleted,
-- client.role_assigned, client.role_unassigned): their configuration, the
-- hashes of the secrets that authenticate them, and the roles of their own
-- tokens. A deleted client has no rows: its id is never registered again.
--
-- New generations and per-tenant scratch schemas get the tables from the
-- redefined readmodel_accounts_create_tables; the generations that exist
-- get them here, and the views are published again with the two new ones.
-- Client events an earlier projector passed without effect reach the
-- tables only through a rebuild of the projection (or of the tenant).

-- readmodel_accounts_create_client_tables creates the client tables in the
-- existing schema s, with row-level security and grants for
-- authstream_query: in every new generation (through
-- readmodel_accounts_create_tables) and, below, in those that exist.
CREATE FUNCTION readmodel_accounts_create_client_tables(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    t text;
BEGIN
    -- The lists are kept as the events hold them (exact strings, in their
    -- order). secret_hash is the lowercase hex SHA-256 of a confidential
    -- client's current secret (NULL for a public client);
    -- previous_secret_hash that of the secret before the last rotation,
    -- which works until previous_secret_expires_at.
    EXECUTE format($q$
        CREATE TABLE %I.clients (
            tenant_id                  text        NOT NULL,
            client_id                  text        NOT NULL,
            name                       text        NOT NULL,
            type                       text        NOT NULL CHECK (type IN ('public', 'confidential')),
            redirect_uris              text[]      NOT NULL,
            post_logout_redirect_uris  text[]      NOT NULL,
            grant_types                text[]      NOT NULL,
            scopes                     text[]      NOT NULL,
            id_token_alg               text        NOT NULL,
            secret_hash                text,
            previous_secret_hash       text,
            previous_secret_expires_at timestamptz,
            version                    bigint      NOT NULL,
            created_at                 timestamptz NOT NULL,
            updated_at                 timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, client_id)
        )$q$, s);

    -- As user_roles: an assignment outlives the deletion of its role, not
    -- that of its client.
    EXECUTE format($q$
        CREATE TABLE %1$I.client_roles (
            tenant_id text NOT NULL,
            client_id text NOT NULL,
            role      text NOT NULL,
            PRIMARY KEY (tenant_id, client_id, role),
            FOREIGN KEY (tenant_id, client_id) REFERENCES %1$I.clients (tenant_id, client_id) ON DELETE CASCADE
        )$q$, s);

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO authstream_query', s);
    FOREACH t IN ARRAY ARRAY['clients', 'client_roles'] LOOP
        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', s, t);
        EXECUTE format($q$CREATE POLICY tenant_isolation ON %I.%I FOR SELECT TO authstream_query
            USING (tenant_id = current_setting('authstream.tenant', true))$q$, s, t);
        EXECUTE format('GRANT SELECT ON %I.%I TO authstream_query', s, t);
    END LOOP;
END
$fn$;

-- readmodel_accounts_create_tables keeps its name, which the projector
-- calls: the definition of 0004 goes on under another name, and the new
-- one adds the client tables to what it creates.
ALTER FUNCTION readmodel_accounts_create_tables(text) RENAME TO readmodel_accounts_create_account_tables;

CREATE FUNCTION readmodel_accounts_create_tables(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM readmodel_accounts_create_account_tables(s);
    PERFORM readmodel_accounts_create_client_tables(s);
END
$fn$;

-- readmodel_accounts_publish, as in 0002, with the client tables among
-- the views.
CREATE OR REPLACE FUNCTION readmodel_accounts_publish(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'users', 'roles', 'user_roles', 'user_permissions', 'clients', 'client_roles'] LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %I WITH (security_invoker = true) AS SELECT * FROM %I.%I', t, s, t);
        EXECUTE format('GRANT SELECT ON %I TO authstream_query', t);
    END LOOP;
END
$fn$;

DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT schema_name FROM projection_generations
              WHERE projection = 'accounts' AND state IN ('active', 'building') LOOP
        PERFORM readmodel_accounts_create_client_tables(s);
    END LOOP;
    SELECT schema_name INTO s FROM projection_generations WHERE projection = 'accounts' AND state = 'active';
    IF s IS NOT NULL THEN
        PERFORM readmodel_accounts_publish(s);
    END IF;
END
$$;
