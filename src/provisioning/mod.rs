//! The provisioning use case: the SCIM operations (RFC 7644) on Users and Groups, and the
//! bearer tokens that guard them. Each write is one transaction of the store: validation, the
//! change, the reconcile of every affected user (source `scim`), session revocation when
//! access is lost, and the audit rows naming the request all commit together or not at all,
//! and the 2xx goes out only after that commit is durable. It speaks the SCIM resource model
//! of [`crate::domain::scim`]; the HTTP adapter ([`crate::scim`]) drives it.
//!
//! - [`context`]: who is calling, the list query and paging rules, `If-Match`.
//! - [`reads`], [`users`], [`groups`]: the operations; [`steps`]: what writes share.
//! - [`render`]: stored rows as resources.
//! - [`tokens`]: SCIM bearer tokens.

pub mod context;
pub mod groups;
pub mod reads;
pub mod render;
pub mod steps;
pub mod tokens;
pub mod users;

use std::sync::Arc;

pub use context::{Ctx, ListQuery, Resource, if_match_ok};

use crate::config::LiveConfig;
use crate::domain::Clock;
use crate::domain::scim::ScimError;
use crate::store::{Store, StoreError};

/// The SCIM operations and what they work with; cheap to clone.
#[derive(Clone)]
pub struct Provisioning {
    pub store: Store,
    pub config: Arc<LiveConfig>,
    pub clock: Clock,
}

impl Provisioning {
    /// The context of one request of `provider`'s IdP (of `tenant`, for a token bound to one).
    pub fn context(
        &self,
        provider: &str,
        tenant: Option<&str>,
        request_id: Option<String>,
        method: &str,
        path: &str,
    ) -> Ctx {
        Ctx::new(
            provider,
            tenant,
            &self.config,
            &self.clock,
            request_id,
            method,
            path,
        )
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            // A database that is down (PostgreSQL restarting) is temporary: 503 with
            // Retry-After, so the IdP retries, as for a lock held too long.
            StoreError::Busy | StoreError::Unavailable(_) => ScimError::Busy,
            StoreError::NotFound => ScimError::NotFound("no such resource".into()),
            StoreError::Conflict(what) => ScimError::Uniqueness(what),
            StoreError::Unsupported(what) => ScimError::InvalidFilter(what),
            StoreError::Unstorable(what) => ScimError::InvalidValue(what),
            StoreError::Corrupt(_)
            | StoreError::CommitFailed(_)
            | StoreError::Open { .. }
            | StoreError::WriterGone
            | StoreError::Database(_) => ScimError::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_by_meaning() {
        assert!(matches!(ScimError::from(StoreError::Busy), ScimError::Busy));
        assert!(matches!(
            ScimError::from(StoreError::Conflict("x".into())),
            ScimError::Uniqueness(_)
        ));
        assert!(matches!(
            ScimError::from(StoreError::Unsupported("x".into())),
            ScimError::InvalidFilter(_)
        ));
        assert!(matches!(
            ScimError::from(StoreError::WriterGone),
            ScimError::Internal(_)
        ));
        assert!(matches!(
            ScimError::from(StoreError::Unavailable("restarting".into())),
            ScimError::Busy
        ));
    }
}
