//! The SCIM 2.0 HTTP adapter (RFC 7644): `/scim/v2/{provider}/...` routes, bearer-token
//! authentication, the discovery documents, and errors turned into RFC 7644 §3.12 responses.
//! Each handler parses the request and calls one operation of [`crate::provisioning`].
//!
//! - [`auth`]: the bearer-token extractor (security cases G).
//! - [`discovery`]: `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`.
//! - [`response`]: `ScimError` as an `application/scim+json` response.
//! - [`routes`]: the router and its thin handlers.

pub mod auth;
pub mod discovery;
pub mod response;
pub mod routes;
