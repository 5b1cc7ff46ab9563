-- Multi-tenant Entra providers and SCIM (security case J1): a SCIM token may be bound to one
-- tenant, and every SCIM user and group remembers the tenant whose token created it. A
-- tenant-bound token sees and changes only its tenant's resources, so uniqueness (userName,
-- group displayName) and paging are per (provider, tenant): one tenant cannot squat another's
-- names or learn that they exist. '' is "no tenant" (single-tenant providers); a tenant is a
-- lower-case GUID.
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
