//! Records of SCIM provisioning: provisioned users and groups (their documents as the IdP
//! sent them), group members, bearer tokens, and per-provider counts for the admin pages.

use serde::Serialize;
use serde_json::{Map, Value};

/// Where a SCIM caller's resources live: its provider and, for a token bound to one tenant of
/// a multi-tenant Entra provider, that tenant. Every SCIM lookup is scoped to one realm:
/// another provider's or another tenant's resource is not found (security cases 78, J1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    pub provider: String,
    /// A lower-case tenant GUID; `None` for a provider that is not multi-tenant.
    pub tenant: Option<String>,
}

impl Realm {
    pub fn new(provider: &str, tenant: Option<&str>) -> Self {
        Self {
            provider: provider.to_owned(),
            tenant: tenant.map(str::to_owned),
        }
    }

    /// The login subject of a user of this realm whose externalId is `external_id`.
    pub fn subject(&self, external_id: &str) -> String {
        crate::domain::tenant::qualify(self.tenant.as_deref(), external_id)
    }
}

/// A stored SCIM user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    /// Internal row id; also the paging order.
    pub pk: i64,
    pub scim_id: String,
    pub provider: String,
    /// The tenant of the token that created it (multi-tenant providers only).
    pub tenant: Option<String>,
    /// The `users` row of the same person.
    pub user_id: i64,
    pub external_id: Option<String>,
    pub active: bool,
    pub doc: Map<String, Value>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// What is written for a user; borrowed from the service's validated document.
#[derive(Debug, Clone, Copy)]
pub struct UserValues<'a> {
    pub user_name: &'a str,
    pub external_id: Option<&'a str>,
    pub active: bool,
    pub doc: &'a Map<String, Value>,
}

/// A stored SCIM group (without its members).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub pk: i64,
    pub scim_id: String,
    pub provider: String,
    /// The tenant of the token that created it (multi-tenant providers only).
    pub tenant: Option<String>,
    pub display_name: String,
    pub external_id: Option<String>,
    pub doc: Map<String, Value>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy)]
pub struct GroupValues<'a> {
    pub display_name: &'a str,
    pub external_id: Option<&'a str>,
    pub doc: &'a Map<String, Value>,
}

/// One member as rendered in a group's `members`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub scim_id: String,
    pub display: Option<String>,
}

/// A group member: its SCIM user row id and the login identity it is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemberRef {
    pub member: i64,
    pub user_id: i64,
}

/// A page of resources and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub total: usize,
    pub items: Vec<T>,
}

/// A stored token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// The short id `scim-token list` shows and `scim-token revoke` takes.
    pub public_id: String,
    pub provider: String,
    /// The one tenant of a multi-tenant provider this token speaks for.
    pub tenant: Option<String>,
    pub created_at: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub revoked_at: Option<String>,
    pub note: Option<String>,
}

/// A token to store: only the SHA-256 of its value.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub public_id: &'a str,
    pub provider: &'a str,
    pub tenant: Option<&'a str>,
    pub hash: [u8; 32],
    pub created_at: &'a str,
    /// Unix seconds.
    pub expires_at: i64,
    pub note: Option<&'a str>,
}

/// What the database says about one provider's SCIM provisioning.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScimCounts {
    pub users: i64,
    pub active_users: i64,
    pub groups: i64,
    /// (group, member) rows.
    pub memberships: i64,
    /// Tokens neither revoked nor expired.
    pub live_tokens: i64,
    /// The latest `updated_at` of the provider's SCIM users and groups.
    pub last_change_at: Option<String>,
}

/// Case folding of unique names (userName, group displayName): full Unicode lower case, done
/// in Rust rather than with a database's ASCII-only case folding.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}
