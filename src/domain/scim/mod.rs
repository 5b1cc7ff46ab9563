//! The SCIM 2.0 resource model (RFC 7643, RFC 7644), pure: the schema teamgate supports, the
//! filter language and PATCH paths, PATCH applied to an in-memory document, request bodies
//! normalised for storage and rows rendered back as resources, and the errors by meaning.
//! It does no I/O; the store translates its filters, `crate::provisioning` applies the rest.
//!
//! - [`error`]: `ScimError`, classified by RFC 7644 §3.12 meaning.
//! - [`schema`]: the attributes teamgate supports, one table feeding validation, filters and
//!   the `/Schemas` document.
//! - [`filter`]: the RFC 7644 §3.4.2.2 filter grammar and PATCH paths, parsed and resolved.
//! - [`patch`]: RFC 7644 §3.5.2 PATCH applied atomically to an in-memory copy.
//! - [`resource`]: bodies normalised for storage; stored rows rendered as resources;
//!   `attributes` / `excludedAttributes` projection.

pub mod error;
pub mod filter;
pub mod patch;
pub mod resource;
pub mod schema;

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
