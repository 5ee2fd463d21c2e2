-- Users' profiles (user.registered's profile members, user.profile_updated,
-- user.email_verified) in the users table of the accounts projection.
--
-- profile is the profile document {"email", "name", "locale",
-- "attributes"} with only the members the user has; email is its e-mail
-- address, kept beside it by the projector (a plain column, not a
-- generated one: a per-tenant rebuild copies rows with SELECT *) so that
-- a search by address is an index probe; email_verified says
-- whether the user proved the current address. Search compares whole
-- addresses case-insensitively (lower(email)): the stored address keeps
-- its local part as given, and the index serves the exact, case-folded
-- match GET /t/{tenant}/users?email= asks for.
--
-- New generations and per-tenant scratch schemas get the columns from the
-- redefined readmodel_accounts_create_tables; the generations that exist
-- get them here, and the views of the active one are published again so
-- that they show them. Profile events an earlier projector passed without
-- effect (none was ever released) reach the columns only through a
-- rebuild.

CREATE FUNCTION readmodel_accounts_create_profile_columns(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($q$ALTER TABLE %I.users
        ADD COLUMN IF NOT EXISTS profile jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN IF NOT EXISTS email text,
        ADD COLUMN IF NOT EXISTS email_verified boolean NOT NULL DEFAULT false$q$, s);
    EXECUTE format($q$CREATE INDEX IF NOT EXISTS users_email ON %I.users (tenant_id, lower(email))
        WHERE email IS NOT NULL$q$, s);
END
$fn$;

-- readmodel_accounts_create_tables as in 0007, with the profile columns.
CREATE OR REPLACE FUNCTION readmodel_accounts_create_tables(s text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM readmodel_accounts_create_account_tables(s);
    PERFORM readmodel_accounts_create_profile_columns(s);
    PERFORM readmodel_accounts_create_client_tables(s);
    PERFORM readmodel_accounts_create_audit_tables(s);
    PERFORM readmodel_accounts_create_webhook_tables(s);
END
$fn$;

DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT schema_name FROM projection_generations
              WHERE projection = 'accounts' AND state IN ('active', 'building') LOOP
        PERFORM readmodel_accounts_create_profile_columns(s);
    END LOOP;
    SELECT schema_name INTO s FROM projection_generations WHERE projection = 'accounts' AND state = 'active';
    IF s IS NOT NULL THEN
        PERFORM readmodel_accounts_publish(s);
    END IF;
END
$$;
