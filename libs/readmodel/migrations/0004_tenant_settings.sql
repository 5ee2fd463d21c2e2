-- A tenant's settings document (tenant.settings_changed): the last
-- document as the event holds it, members this release does not know
-- included, '{}' for a tenant that never changed its settings.
--
-- New generations and per-tenant scratch schemas get the column from the
-- redefined readmodel_accounts_create_tables; the generations that exist
-- get it here, and the views of the active one are published again so that
-- they show it. A settings event that an earlier projector passed without
-- effect reaches the column only through a rebuild (none was ever
-- released).

CREATE OR REPLACE FUNCTION readmodel_accounts_create_tables(s text) RETURNS void
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
            settings   jsonb       NOT NULL DEFAULT '{}',
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

DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT schema_name FROM projection_generations
              WHERE projection = 'accounts' AND state IN ('active', 'building') LOOP
        EXECUTE format($q$ALTER TABLE %I.tenants ADD COLUMN IF NOT EXISTS settings jsonb NOT NULL DEFAULT '{}'$q$, s);
    END LOOP;
    SELECT schema_name INTO s FROM projection_generations WHERE projection = 'accounts' AND state = 'active';
    IF s IS NOT NULL THEN
        PERFORM readmodel_accounts_publish(s);
    END IF;
END
$$;
