//! SCIM 2.0 provisioning (RFC 7643, RFC 7644): the protocol adapter that turns Entra's and
//! Okta's pushes into stored users, groups and memberships, and runs the reconcile on every
//! change. Pure parts (errors, schema, filters, PATCH, resource shapes) do no I/O; the
//! [`service`] functions run them inside one store write; [`routes`] are thin handlers.
//!
//! - [`error`]: `ScimError` and its RFC 7644 §3.12 JSON body.
//! - [`schema`]: the attributes teamgate supports, one table feeding validation, filters and
//!   the `/Schemas` document.
//! - [`filter`]: the RFC 7644 §3.4.2.2 filter grammar and PATCH paths, parsed and resolved.
//! - [`patch`]: RFC 7644 §3.5.2 PATCH applied atomically to an in-memory copy.
//! - [`resource`]: request bodies normalised for storage; stored rows rendered as resources;
//!   `attributes` / `excludedAttributes` projection.
//! - [`discovery`]: `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`.
//! - [`service`]: one function per SCIM operation: validation, the write, the reconcile.
//! - [`auth`]: the bearer-token extractor (SECURITY.md G).
//! - [`tokens`]: `teamgate scim-token create|list|revoke`.
//! - [`routes`]: the `/scim/v2/{provider}/...` router.

pub mod auth;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod patch;
pub mod resource;
pub mod routes;
pub mod schema;
pub mod service;
pub mod tokens;

pub use error::ScimError;

/// The URN of the core User schema (RFC 7643 §4.1).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The URN of the core Group schema (RFC 7643 §4.2).
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The URN of the Enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Message schemas (RFC 7644 §3.4.2, §3.4.3, §3.5.2, §3.12).
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Largest request body accepted (RFC 7644 §3.12 Table 8: 413 above it). A PUT of a group
/// with 100,000 members is about 3.5 MB, so 8 MiB leaves room without inviting abuse.
pub const MAX_PAYLOAD: usize = 8 * 1024 * 1024;
/// Most operations in one PATCH request.
pub const MAX_PATCH_OPERATIONS: usize = 1000;
/// `filter.maxResults`: the largest page returned (RFC 7644 §3.4.2.4 clamps `count` to it).
pub const MAX_RESULTS: usize = 1000;
/// The page size when the client gives no `count`.
pub const DEFAULT_COUNT: usize = 100;

/// The two resource types teamgate serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    User,
    Group,
}

impl ResourceType {
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::User => "User",
            ResourceType::Group => "Group",
        }
    }

    /// The URL segment: `Users` or `Groups`.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceType::User => "Users",
            ResourceType::Group => "Groups",
        }
    }

    pub fn core_schema(self) -> &'static str {
        match self {
            ResourceType::User => USER_SCHEMA,
            ResourceType::Group => GROUP_SCHEMA,
        }
    }
}

/// The form of every SCIM timestamp teamgate stores and sends: UTC, always three fractional
/// digits, so stored values order correctly as strings (filters on `meta.lastModified`).
const STAMP: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// `t` in the stored form.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(STAMP)
        .unwrap_or_default()
}

/// Now, in the stored form.
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// An RFC 3339 date-time in the stored form; `None` when `s` is not one.
pub fn parse_timestamp(s: &str) -> Option<String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(timestamp)
}
