-- The accounts projection: tenants, users, roles, user-role assignments and
-- the effective-permission lookup, as the query and login service reads them.
--
-- The tables of a projection live in a schema per generation (rm_accounts_1,
-- rm_accounts_2, ...). A rebuild fills a new generation next to the live one
-- and swaps it in by replacing the views of the current schema (tenants,
-- users, roles, user_roles, user_permissions) in one transaction, so readers
-- never see an empty or half-built read model. See
-- docs/adr/0003-projection-rebuild.md.
--
-- Schema changes to these tables after this migration: redefine
-- readmodel_accounts_create_tables in a new migration and either alter the
-- live generation's tables there or ship the change as a rebuild.

-- The database role of the query service: it reads, row-level security keeps
-- it inside the tenant named by the setting authstream.tenant. Roles are
-- cluster-wide, so the creation tolerates a concurrent creator.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authstream_query') THEN
        CREATE ROLE authstream_query NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- One row per generation of a projection. At most one generation is active
-- (its tables are behind the views) and at most one is building.
CREATE TABLE projection_generations (
    projection   text        NOT NULL,
    generation   integer     NOT NULL CHECK (generation > 0),
    state        text        NOT NULL CHECK (state IN ('building', 'active', 'retired')),
    schema_name  text        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at   timestamptz,
    PRIMARY KEY (projection, generation)
);
CREATE UNIQUE INDEX projection_generations_one_active
    ON projection_generations (projection) WHERE state = 'active';
CREATE UNIQUE INDEX projection_generations_one_building
    ON projection_generations (projection) WHERE state = 'building';

-- readmodel_accounts_create_tables creates the accounts tables in schema s,
-- with row-level security and grants for authstream_query. Generations and
-- the scratch schema of a per-tenant rebuild are made by it, so they cannot
-- drift apart.
CREATE FUNCTION readmodel_accounts_create_tables(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('CREATE SCHEMA %I', s);

    EXECUTE format($q$
        CREATE TABLE %I.tenants (
            tenant_id  text        NOT NULL,
            name       text        NOT NULL,
            status     text        NOT NULL CHECK (status IN ('active', 'disabled')),
            version    bigint      NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (tenant_id)
        )$q$, s);

    EXECUTE format($q$
        CREATE TABLE %I.users (
            tenant_id    text        NOT NULL,
            user_id      text        NOT NULL,
            username     text        NOT NULL,
            username_key text        NOT NULL,
            status       text        NOT NULL CHECK (status IN ('active', 'disabled')),
            credential   jsonb       NOT NULL,
            version      bigint      NOT NULL,
            not_before   timestamptz,
            created_at   timestamptz NOT NULL,
            updated_at   timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, user_id),
            UNIQUE (tenant_id, username_key)
        )$q$, s);

    EXECUTE format($q$
        CREATE TABLE %I.roles (
            tenant_id   text        NOT NULL,
            name        text        NOT NULL,
            permissions text[]      NOT NULL,
            description text        NOT NULL,
            version     bigint      NOT NULL,
            created_at  timestamptz NOT NULL,
            updated_at  timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, name)
        )$q$, s);

    -- An assignment outlives the deletion of its role (the user aggregate
    -- still holds it; a role defined again under the name grants again),
    -- but not the deletion of its user.
    EXECUTE format($q$
        CREATE TABLE %1$I.user_roles (
            tenant_id text NOT NULL,
            user_id   text NOT NULL,
            role      text NOT NULL,
            PRIMARY KEY (tenant_id, user_id, role),
            FOREIGN KEY (tenant_id, user_id) REFERENCES %1$I.users (tenant_id, user_id) ON DELETE CASCADE
        )$q$, s);

    -- The effective permissions of each user: a view, not a table, so that
    -- redefining a role held by many users writes one row, and a check is a
    -- primary-key probe of user_roles plus one of roles per role held. The
    -- built-in role admin is implicit (never a row of roles) and grants *:*
    -- here. Permissions are stored canonical (resource:action, * as *:*),
    -- so a check asks for permission = ANY(the four patterns that cover the
    -- required one).
    EXECUTE format($q$
        CREATE VIEW %1$I.user_permissions WITH (security_invoker = true) AS
        SELECT ur.tenant_id, ur.user_id, p.permission
          FROM %1$I.user_roles ur
          JOIN %1$I.roles r ON r.tenant_id = ur.tenant_id AND r.name = ur.role
         CROSS JOIN LATERAL unnest(r.permissions) AS p(permission)
        UNION ALL
        SELECT tenant_id, user_id, '*:*'::text
          FROM %1$I.user_roles
         WHERE role = 'admin'
        $q$, s);

    EXECUTE format('ALTER TABLE %I.tenants ENABLE ROW LEVEL SECURITY', s);
    EXECUTE format('ALTER TABLE %I.users ENABLE ROW LEVEL SECURITY', s);
    EXECUTE format('ALTER TABLE %I.roles ENABLE ROW LEVEL SECURITY', s);
    EXECUTE format('ALTER TABLE %I.user_roles ENABLE ROW LEVEL SECURITY', s);
    EXECUTE format($q$CREATE POLICY tenant_isolation ON %I.tenants FOR SELECT TO authstream_query
        USING (tenant_id = current_setting('authstream.tenant', true))$q$, s);
    EXECUTE format($q$CREATE POLICY tenant_isolation ON %I.users FOR SELECT TO authstream_query
        USING (tenant_id = current_setting('authstream.tenant', true))$q$, s);
    EXECUTE format($q$CREATE POLICY tenant_isolation ON %I.roles FOR SELECT TO authstream_query
        USING (tenant_id = current_setting('authstream.tenant', true))$q$, s);
    EXECUTE format($q$CREATE POLICY tenant_isolation ON %I.user_roles FOR SELECT TO authstream_query
        USING (tenant_id = current_setting('authstream.tenant', true))$q$, s);

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO authstream_query', s);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO authstream_query', s);
END
$fn$;

-- readmodel_expect_rows fails the statement it is part of when a change
-- touched fewer or more rows than the events behind it require (a user to
-- disable that does not exist): the projector quarantines such an event.
-- Raising inside the statement aborts the rest of a pipelined batch, so the
-- check costs no round trip of its own.
CREATE FUNCTION readmodel_expect_rows(got bigint, want bigint, what text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF got <> want THEN
        RAISE EXCEPTION '%: % of % rows exist', what, got, want USING ERRCODE = 'no_data_found';
    END IF;
END
$fn$;

-- readmodel_accounts_publish points the views of the current schema at the
-- tables of schema s. CREATE OR REPLACE VIEW swaps a view's definition in
-- place, so a transaction that publishes a generation switches every reader
-- at its commit. The views are security_invoker, so the row-level security
-- of the tables applies to authstream_query reading through them.
CREATE FUNCTION readmodel_accounts_publish(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'users', 'roles', 'user_roles', 'user_permissions'] LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %I WITH (security_invoker = true) AS SELECT * FROM %I.%I', t, s, t);
        EXECUTE format('GRANT SELECT ON %I TO authstream_query', t);
    END LOOP;
END
$fn$;

-- readmodel_accounts_new_generation creates the next generation of the
-- accounts projection: its schema, tables and a checkpoint row per
-- partition at sequence 0. The first generation becomes active at once; a
-- later one is building until a rebuild swaps it in. It returns the new
-- generation number.
CREATE FUNCTION readmodel_accounts_new_generation() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    g integer;
    s text;
    first boolean;
BEGIN
    -- Serialises concurrent callers: generation numbers and the
    -- one-building rule stay consistent.
    LOCK TABLE projection_generations IN SHARE ROW EXCLUSIVE MODE;
    SELECT coalesce(max(generation), 0) + 1 INTO g FROM projection_generations WHERE projection = 'accounts';
    first := g = 1;
    s := format('rm_accounts_%s', g);
    PERFORM readmodel_accounts_create_tables(s);
    INSERT INTO projection_generations (projection, generation, state, schema_name, activated_at)
    VALUES ('accounts', g, CASE WHEN first THEN 'active' ELSE 'building' END, s,
            CASE WHEN first THEN now() END);
    INSERT INTO projection_checkpoints (projection, partition, seq, updated_at)
    SELECT 'accounts@' || g, p, 0, now() FROM generate_series(0, 15) AS p;
    IF first THEN
        PERFORM readmodel_accounts_publish(s);
    END IF;
    RETURN g;
END
$fn$;

SELECT readmodel_accounts_new_generation();

-- The applied position of each partition of every active projection under
-- its logical name: what a consistency token is compared with. The
-- checkpoint rows themselves are keyed by '<projection>@<generation>'.
CREATE VIEW projection_positions AS
SELECT g.projection, c.partition, c.seq, c.updated_at
  FROM projection_generations g
  JOIN projection_checkpoints c ON c.projection = g.projection || '@' || g.generation
 WHERE g.state = 'active';
GRANT SELECT ON projection_positions TO authstream_query;
