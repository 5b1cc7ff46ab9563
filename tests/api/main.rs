//! The one integration test binary: every test spawns the real teamgate on a free loopback
//! port with its own database (see `helpers`), and talks to it over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod admin_browser;
mod admin_explain;
mod admin_pages;
mod admin_plan;
mod admin_reload;
mod admin_support;
mod forward_auth;
mod forward_auth_e2e;
mod forward_auth_support;
mod helpers;
mod login;
mod browser_login;
mod support;
mod support_selftest;
mod test_idp;
mod test_idp_selftest;
mod oidc_claims;
mod oidc_common;
mod oidc_faults;
mod oidc_flow;
mod oidc_idp_quirks;
mod oidc_rp_cert;
mod scim_entra;
mod scim_support;
mod scim_okta;
