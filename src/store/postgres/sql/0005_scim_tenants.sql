-- The PostgreSQL twin of the SQLite migration 0005: SCIM tokens bound to one tenant of a
-- multi-tenant Entra provider, and the tenant of every SCIM user and group; uniqueness and
-- paging per (provider, tenant). '' is "no tenant".
ALTER TABLE scim_tokens ADD COLUMN tenant TEXT;
ALTER TABLE scim_users ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE scim_groups ADD COLUMN tenant TEXT NOT NULL DEFAULT '';

DROP INDEX scim_users_user_name;
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (provider, tenant, user_name_key);
DROP INDEX scim_users_provider;
CREATE INDEX scim_users_provider ON scim_users (provider, tenant, id);

DROP INDEX scim_groups_display_name;
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (provider, tenant, display_name_key);
DROP INDEX scim_groups_external_id;
CREATE INDEX scim_groups_external_id ON scim_groups (provider, tenant, external_id);
DROP INDEX scim_groups_provider;
CREATE INDEX scim_groups_provider ON scim_groups (provider, tenant, id);
