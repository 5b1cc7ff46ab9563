-- pgbench script: the statements of one SCIM user creation on PostgreSQL as teamgate sends
-- them (benches/scim.rs phase 1 with `--backend postgres`), on teamgate's own schema, for the
-- machine's ceiling for that shape. See README "Several replicas (PostgreSQL)":
--   pgbench -n -M prepared -c 16 -j 2 -T 20 -f benches/pgbench/scim_create.sql DBNAME
-- on a database teamgate has migrated. The SCIM token check is a read-only transaction of
-- its own; the write transaction takes the shared write lock and reads the applied config
-- version, looks the userName up (locking it), creates the login identity and the SCIM user,
-- and writes the default team's membership, its audit row and the creation's audit row.
-- (pgbench reads `:word` as a variable, so the JSON document's colons are chr(58).)
\set n random(1, 2000000000)
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT public_id, provider, created_at, expires_at, revoked_at, note, tenant, hash FROM scim_tokens WHERE hash = '\x00'::bytea;
COMMIT;
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT pg_advisory_xact_lock_shared(8386093285548536933), (SELECT value FROM settings WHERE key = 'config.version');
SELECT id FROM scim_users WHERE provider = 'entra' AND tenant = '' AND user_name_key = 'user' || :n || '@example.com' FOR UPDATE;
INSERT INTO users (public_id, provider, subject, email, email_verified, name, active, created_at, updated_at) VALUES ('p' || :n || '-' || :client_id, 'entra', 's' || :n || '-' || :client_id, 'user' || :n || '@example.com', false, 'User', true, '2026-12-07T00:00:00.000Z', '2026-12-07T00:00:00.000Z') ON CONFLICT (provider, subject) DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at RETURNING id, (xmax = 0);
INSERT INTO scim_users (scim_id, provider, user_id, user_name, user_name_key, external_id, active, doc, version, created_at, updated_at, tenant) VALUES ('sc' || :n || '-' || :client_id, 'entra', currval(pg_get_serial_sequence('users', 'id')), 'user' || :n || '@example.com', 'user' || :n || '-' || :client_id || '@example.com', null, true, jsonb_build_object('schemas', jsonb_build_array('urn' || chr(58) || 'ietf' || chr(58) || 'params' || chr(58) || 'scim' || chr(58) || 'schemas' || chr(58) || 'core' || chr(58) || '2.0' || chr(58) || 'User'), 'userName', 'user@example.com', 'active', true, 'displayName', 'User', 'emails', jsonb_build_array(jsonb_build_object('value', 'user@example.com', 'type', 'work', 'primary', true))), 1, '2026-12-07T00:00:00.000Z', '2026-12-07T00:00:00.000Z', '') RETURNING id;
INSERT INTO memberships (user_id, team_id, source, via, since, confirmed_at) VALUES (currval(pg_get_serial_sequence('users', 'id')), 'everyone', 'default', '', '2026-12-07T00:00:00.000Z', '2026-12-07T00:00:00.000Z');
INSERT INTO audit (at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail) VALUES ('2026-12-07T00:00:00.000Z', 'scim', 'req', currval(pg_get_serial_sequence('users', 'id')), 'user@example.com', 'membership.add', 'everyone', 'default', '', 'SCIM');
INSERT INTO audit (at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail) VALUES ('2026-12-07T00:00:00.000Z', 'scim', 'req', currval(pg_get_serial_sequence('users', 'id')), 'user@example.com', 'scim.user.create', null, null, null, 'SCIM (id x, linked to login subject s)');
COMMIT;
