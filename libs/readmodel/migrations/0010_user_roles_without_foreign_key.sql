-- The accounts projection keeps user_roles consistent with users itself
-- (docs/adr/0031): a batch deletes a deleted user's assignments in the
-- statement before the user's row, and an assignment moves its user's
-- version, which refuses it when the user's row does not exist. The
-- foreign key did both again, row by row: every assignment ran a locking
-- read of its user (a query of its own, a lock written to the user's row
-- and to the WAL), about a fifth of PostgreSQL's CPU in a replay. Only
-- the projector writes these tables.
--
-- New generations and per-tenant scratch schemas lose it through the
-- redefined readmodel_accounts_create_tables; the generations that exist
-- lose it here.

CREATE FUNCTION readmodel_accounts_drop_user_roles_fk(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('ALTER TABLE %I.user_roles DROP CONSTRAINT IF EXISTS user_roles_tenant_id_user_id_fkey', s);
END
$fn$;

-- readmodel_accounts_create_tables as in 0008, without the foreign key.
CREATE OR REPLACE FUNCTION readmodel_accounts_create_tables(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM readmodel_accounts_create_account_tables(s);
    PERFORM readmodel_accounts_create_profile_columns(s);
    PERFORM readmodel_accounts_create_client_tables(s);
    PERFORM readmodel_accounts_create_audit_tables(s);
    PERFORM readmodel_accounts_create_webhook_tables(s);
    PERFORM readmodel_accounts_drop_user_roles_fk(s);
END
$fn$;

DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT schema_name FROM projection_generations
              WHERE projection = 'accounts' AND state IN ('active', 'building') LOOP
        PERFORM readmodel_accounts_drop_user_roles_fk(s);
    END LOOP;
END
$$;
