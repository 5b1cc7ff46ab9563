//! The storage port: the typed operations the use cases call, grouped by area, each area a
//! pair of traits (reads, writes). A backend implements them on its transaction type; the use
//! cases see only `&dyn ReadTx` (a consistent snapshot) and `&dyn WriteTx` (one transaction
//! that commits, or rolls back, whole). No database type appears in a signature here.

use std::collections::BTreeMap;

use super::audit::{AuditFilter, AuditRow, Entry, Trigger};
use super::error::Result;
use super::grants::{ClientUsage, GrantRow, NewGrant, OAuthTokenRow, TokenKind};
use super::keys::{StoredKey, StoredRsaKey};
use super::memberships::{ConfigTables, StoredMembership, TeamMembers};
use super::refresh_grants::StoredRefreshGrant;
use super::scim::{
    GroupRow, GroupValues, Member, MemberRef, NewToken, Page, Realm, ScimCounts, TokenRow, UserRow,
    UserValues,
};
use super::sessions::{SessionDetails, StoredSession};
use super::users::{Linked, LoginProfile, NewIdentity, Profile, UserRecord};
use crate::config::GroupKey;
use crate::domain::reconcile::MembershipRow;
use crate::domain::scim::filter::Cond;

/// Login identities.
pub trait UserReads {
    fn user(&self, id: i64) -> Result<Option<UserRecord>>;
    fn user_by_subject(&self, provider: &str, subject: &str) -> Result<Option<UserRecord>>;
    /// Users whose email (any case), public id or `provider:subject` equals `key`.
    fn find_users(&self, key: &str) -> Result<Vec<UserRecord>>;
    /// Every user id, in id order.
    fn user_ids(&self) -> Result<Vec<i64>>;
    /// One page of users whose email, name or subject contains `search` (or whose public id
    /// is `search`), ordered by email; and how many match in all.
    fn users_page(
        &self,
        search: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<UserRecord>, i64)>;
}

pub trait UserWrites {
    /// Create or update the user a login describes; returns the stored user.
    fn upsert_login_user(&self, profile: &LoginProfile, now: &str) -> Result<UserRecord>;
    /// The login identity of a provisioned user, created when new (an existing identity keeps
    /// its email and name; only `active` follows: linking rewrites nothing a login set).
    /// Returns its id, and whether this call created it.
    fn link_identity(&self, identity: &NewIdentity<'_>, now: &str) -> Result<Linked>;
    /// Set the identity's `active` flag; true when it changed.
    fn set_user_active(&self, user_id: i64, active: bool, now: &str) -> Result<bool>;
    /// Give identity `user_id` another subject (a placeholder identity of a provisioned user
    /// becomes the login identity that matched it by email). `Conflict` when taken.
    fn rekey_user(&self, user_id: i64, subject: &str, now: &str) -> Result<()>;
    /// Set the identity's display name and email (with whether the email is verified).
    fn set_user_profile(&self, user_id: i64, profile: &Profile, now: &str) -> Result<()>;
}

/// Team memberships and the config tables.
pub trait MembershipReads {
    /// A user's memberships, ordered by team, source, group.
    fn memberships(&self, user_id: i64) -> Result<Vec<StoredMembership>>;
    /// Per team: distinct members and the first `limit` memberships.
    fn team_members(&self, limit: usize) -> Result<TeamMembers>;
    /// The stored teams, id -> name.
    fn team_names(&self) -> Result<BTreeMap<String, String>>;
    /// The stored role bindings (team, scope, role) and mappings (provider, group, team).
    fn config_tables(&self) -> Result<ConfigTables>;
}

pub trait MembershipWrites {
    fn add_membership(&self, user_id: i64, row: &MembershipRow, now: &str) -> Result<()>;
    fn remove_membership(&self, user_id: i64, row: &MembershipRow) -> Result<()>;
    /// Mark memberships re-asserted by their source just now.
    fn confirm_membership(&self, user_id: i64, row: &MembershipRow, now: &str) -> Result<()>;
    /// Create a team or rename it.
    fn upsert_team(&self, id: &str, name: &str, now: &str) -> Result<()>;
    /// Delete a team (its memberships, bindings and mappings go with it).
    fn delete_team(&self, id: &str) -> Result<()>;
    /// Replace every role binding and mapping with `tables`.
    fn replace_config_tables(&self, tables: &ConfigTables) -> Result<()>;
}

/// Browser sessions (tower-sessions records, stored by the SHA-256 of their id).
pub trait SessionReads {
    /// (data, expiry in unix seconds) of the session with this hashed id.
    fn session(&self, id_hash: &str) -> Result<Option<(String, i64)>>;
    fn session_count(&self, user_id: i64) -> Result<i64>;
    /// How many sessions have no signed-in user (logins in flight).
    fn pending_session_count(&self) -> Result<i64>;
    /// The live (unexpired at `now`) sessions of a user, the most recently used first.
    fn user_sessions(&self, user_id: i64, now: i64) -> Result<Vec<StoredSession>>;
}

pub trait SessionWrites {
    /// Insert a new session; false when the id is taken.
    fn insert_session(
        &self,
        id_hash: &str,
        user_id: Option<i64>,
        data: &str,
        expires_at: i64,
        details: &SessionDetails,
    ) -> Result<bool>;
    /// Write a session's data and expiry, only when its row still exists: a session deleted
    /// meanwhile (signed out, revoked, expired) stays deleted. False when there was no row.
    fn save_session(
        &self,
        id_hash: &str,
        user_id: Option<i64>,
        data: &str,
        expires_at: i64,
        details: &SessionDetails,
    ) -> Result<bool>;
    fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// Delete the sessions without a signed-in user (logins in flight) beyond the `cap`
    /// newest, oldest first; returns how many.
    fn cap_pending_sessions(&self, cap: usize) -> Result<usize>;
    /// Delete sessions expired at `now`; returns how many.
    fn delete_expired_sessions(&self, now: i64) -> Result<usize>;
    /// End every session of a user: bump the session generation (so a session minted before
    /// stops working even if its row survived) and delete the rows.
    fn revoke_user_sessions(&self, user_id: i64) -> Result<()>;
}

/// The audit log.
pub trait AuditReads {
    /// The rows about one user, oldest first.
    fn audit_of_user(&self, user_id: i64) -> Result<Vec<AuditRow>>;
    /// Rows matching `filter`, newest first.
    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>>;
}

pub trait AuditWrites {
    fn record_audit(&self, at: &str, trigger: &Trigger, entry: &Entry<'_>) -> Result<()>;
}

/// Small key-value facts about the installation.
pub trait SettingReads {
    fn setting(&self, key: &str) -> Result<Option<String>>;
}

pub trait SettingWrites {
    /// Insert or replace.
    fn set_setting(&self, key: &str, value: &str) -> Result<()>;
    /// Insert unless present (a racing writer that came first wins).
    fn insert_setting_if_absent(&self, key: &str, value: &str) -> Result<()>;
}

/// teamgate's own signing keys.
pub trait KeyReads {
    /// Every key to publish at `now`: the signing key first, then retired keys still within
    /// their publication window, newest first.
    fn published_keys(&self, now: i64) -> Result<Vec<StoredKey>>;
    /// The same for the RS256 keys.
    fn published_rsa_keys(&self, now: i64) -> Result<Vec<StoredRsaKey>>;
}

pub trait KeyWrites {
    /// Store `key` as the signing key unless one exists; whether it was stored.
    fn insert_key_if_none(&self, key: &StoredKey) -> Result<bool>;
    /// Make `key` the signing key; the previous one is retired at `now` and published until
    /// `previous_until`; keys past their window are deleted. The retired kid, if any.
    fn rotate_key(&self, key: &StoredKey, now: i64, previous_until: i64) -> Result<Option<String>>;
    /// The same two for the RS256 keys.
    fn insert_rsa_key_if_none(&self, key: &StoredRsaKey) -> Result<bool>;
    fn rotate_rsa_key(
        &self,
        key: &StoredRsaKey,
        now: i64,
        previous_until: i64,
    ) -> Result<Option<String>>;
}

/// teamgate's OpenID provider: grants (codes) and the tokens issued under them, by hash.
pub trait GrantReads {
    /// The grant whose code hashes to `code_hash`.
    fn grant_by_code(&self, code_hash: &[u8; 32]) -> Result<Option<GrantRow>>;
    fn grant(&self, id: i64) -> Result<Option<GrantRow>>;
    /// The token with this hash and its grant.
    fn oauth_token(&self, hash: &[u8; 32]) -> Result<Option<(OAuthTokenRow, GrantRow)>>;
    /// Per client with any grant: last use, live refresh tokens and users at `now`.
    fn client_usage(&self, now: i64) -> Result<Vec<ClientUsage>>;
}

pub trait GrantWrites {
    /// Store a new grant; returns its id.
    fn insert_grant(&self, grant: &NewGrant) -> Result<i64>;
    /// Mark the grant's code as redeemed at `now`.
    fn mark_code_used(&self, grant_id: i64, now: i64) -> Result<()>;
    /// Record a use of the grant (a code or token issued).
    fn touch_grant(&self, grant_id: i64, now: i64) -> Result<()>;
    /// Delete a grant and every token issued under it.
    fn delete_grant(&self, grant_id: i64) -> Result<()>;
    fn insert_oauth_token(
        &self,
        hash: &[u8; 32],
        grant_id: i64,
        kind: TokenKind,
        expires_at: i64,
    ) -> Result<()>;
    /// Mark a refresh token used; false when it already was (a replay).
    fn mark_token_used(&self, hash: &[u8; 32], now: i64) -> Result<bool>;
    /// Delete every grant (and token) of `client_id`; how many.
    fn delete_client_grants(&self, client_id: &str) -> Result<usize>;
    /// Delete grants past their lifetime, and expired tokens; how many grants.
    fn delete_expired_grants(&self, now: i64) -> Result<usize>;
}

/// Refresh grants of teamgate's own sign-ins at the IdPs, shared by replicas (see
/// [`super::refresh_grants`]; not the provider's grants above).
pub trait RefreshGrantReads {
    fn refresh_grant_count(&self) -> Result<i64>;
}

pub trait RefreshGrantWrites {
    /// Store `grant` for its user, replacing any earlier one (unclaimed).
    fn put_refresh_grant(&self, grant: &StoredRefreshGrant) -> Result<()>;
    /// Delete grants past their end at `now`, then claim up to `limit` grants due at `now`
    /// that no other process holds a claim on, until `claim_until`; returns them.
    fn claim_refresh_grants(
        &self,
        now: i64,
        claim_until: i64,
        limit: usize,
    ) -> Result<Vec<StoredRefreshGrant>>;
    /// Put a used grant back, due again at `next_at` (with the IdP's new refresh token, when
    /// it rotated it), unless a newer login replaced it meanwhile.
    fn release_refresh_grant(
        &self,
        user_id: i64,
        login_id: &str,
        token: Option<&[u8]>,
        next_at: i64,
    ) -> Result<()>;
    /// Forget the grant of `login_id` (given up), unless a newer login replaced it.
    fn drop_refresh_grant(&self, user_id: i64, login_id: &str) -> Result<()>;
}

/// SCIM users, groups, members and tokens. Every lookup is scoped to one provider: another
/// provider's resource is not found.
pub trait ScimReads {
    fn scim_user(&self, realm: &Realm, scim_id: &str) -> Result<Option<UserRow>>;
    /// The user whose userName equals `user_name` case-insensitively.
    fn scim_user_by_name(&self, realm: &Realm, user_name: &str) -> Result<Option<UserRow>>;
    /// Users of `realm` without an externalId whose userName, or one of whose emails, equals
    /// `email` case-insensitively: who a login may be matched with by email (`match_by_email`).
    fn scim_users_by_email(&self, realm: &Realm, email: &str) -> Result<Vec<UserRow>>;
    /// The SCIM user linked to login identity `user_id`.
    fn scim_user_of_identity(&self, user_id: i64) -> Result<Option<UserRow>>;
    /// Login identities of SCIM users (of any provider) whose folded userName is `folded`.
    fn identities_by_scim_user_name(&self, folded: &str) -> Result<Vec<i64>>;
    /// A page of `provider`'s resources of type `rt` matching `filter`, in stable order.
    /// `limit == 0` counts without reading rows. A filter the backend cannot run is
    /// [`super::StoreError::Unsupported`].
    fn scim_users_page(
        &self,
        realm: &Realm,
        filter: Option<&Cond>,
        offset: usize,
        limit: usize,
    ) -> Result<Page<UserRow>>;
    /// The groups a user is a direct member of: (SCIM id, displayName).
    fn scim_groups_of_member(&self, member: i64) -> Result<Vec<(String, String)>>;
    /// The member row and login identity of user `scim_id`.
    fn scim_member(&self, realm: &Realm, scim_id: &str) -> Result<Option<MemberRef>>;
    /// The group keys (externalId or SCIM id under [`GroupKey::Id`], displayName under
    /// [`GroupKey::Name`]) of the groups login identity `user_id` is a member of, each
    /// qualified by its group's tenant (`crate::domain::tenant::qualify`); `None` when the user
    /// was never provisioned over SCIM.
    fn scim_group_keys_of_user(&self, user_id: i64, key: GroupKey) -> Result<Option<Vec<String>>>;

    fn scim_group(&self, realm: &Realm, scim_id: &str) -> Result<Option<GroupRow>>;
    /// The group whose displayName equals `name` case-insensitively.
    fn scim_group_by_name(&self, realm: &Realm, name: &str) -> Result<Option<GroupRow>>;
    fn scim_groups_page(
        &self,
        realm: &Realm,
        filter: Option<&Cond>,
        offset: usize,
        limit: usize,
    ) -> Result<Page<GroupRow>>;
    /// Every member of a group, for rendering it.
    fn scim_members(&self, group: i64) -> Result<Vec<Member>>;
    /// Member row and login identity of every member of a group.
    fn scim_member_refs(&self, group: i64) -> Result<Vec<MemberRef>>;

    /// The token whose SHA-256 is `hash`, with the stored hash for a constant-time re-check.
    fn scim_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(TokenRow, Vec<u8>)>>;
    /// Every token of `provider`, oldest first.
    fn scim_tokens(&self, provider: &str) -> Result<Vec<TokenRow>>;
    /// Per provider: users, groups, members, live tokens at `now`.
    fn scim_counts(&self, now: i64) -> Result<BTreeMap<String, ScimCounts>>;
}

pub trait ScimWrites {
    fn insert_scim_user(
        &self,
        realm: &Realm,
        scim_id: &str,
        user_id: i64,
        values: &UserValues<'_>,
        now: &str,
    ) -> Result<i64>;
    /// Replace a user's values and bump its version.
    fn update_scim_user(&self, pk: i64, values: &UserValues<'_>, now: &str) -> Result<()>;
    /// Point a SCIM user at another login identity.
    fn relink_scim_user(&self, pk: i64, user_id: i64) -> Result<()>;
    /// Delete a SCIM user; its group memberships go with it.
    fn delete_scim_user(&self, pk: i64) -> Result<()>;

    fn insert_scim_group(
        &self,
        realm: &Realm,
        scim_id: &str,
        values: &GroupValues<'_>,
        now: &str,
    ) -> Result<i64>;
    /// Replace a group's values and bump its version.
    fn update_scim_group(&self, pk: i64, values: &GroupValues<'_>, now: &str) -> Result<()>;
    /// Bump a group's version after a member change.
    fn touch_scim_group(&self, pk: i64, now: &str) -> Result<()>;
    fn delete_scim_group(&self, pk: i64) -> Result<()>;
    /// Add one member; false when it already was one.
    fn add_scim_member(&self, group: i64, member: i64) -> Result<bool>;
    /// Remove one member; false when it was not one.
    fn remove_scim_member(&self, group: i64, member: i64) -> Result<bool>;
    fn remove_all_scim_members(&self, group: i64) -> Result<usize>;

    fn insert_scim_token(&self, token: &NewToken<'_>) -> Result<()>;
    /// Revoke a live token; false when there is no such live token.
    fn revoke_scim_token(&self, provider: &str, public_id: &str, now: &str) -> Result<bool>;
}

/// Everything a consistent read may ask.
pub trait ReadTx:
    UserReads
    + MembershipReads
    + SessionReads
    + AuditReads
    + SettingReads
    + KeyReads
    + ScimReads
    + GrantReads
    + RefreshGrantReads
{
}

impl<T> ReadTx for T where
    T: UserReads
        + MembershipReads
        + SessionReads
        + AuditReads
        + SettingReads
        + KeyReads
        + ScimReads
        + GrantReads
        + RefreshGrantReads
{
}

/// Everything a write transaction may do, reads included.
pub trait WriteTx:
    ReadTx
    + UserWrites
    + MembershipWrites
    + SessionWrites
    + AuditWrites
    + SettingWrites
    + KeyWrites
    + ScimWrites
    + GrantWrites
    + RefreshGrantWrites
{
}

impl<T> WriteTx for T where
    T: ReadTx
        + UserWrites
        + MembershipWrites
        + SessionWrites
        + AuditWrites
        + SettingWrites
        + KeyWrites
        + ScimWrites
        + GrantWrites
        + RefreshGrantWrites
{
}
