//! teamgate: a self-hosted login broker. Identity providers come in through OpenID Connect
//! logins and SCIM pushes; applications get back who the user is and which teams and roles
//! they hold. `ARCHITECTURE.md` is the map; the layers, from the bottom (each imports only
//! those below it):
//!
//! - [`domain`]: pure rules: ids, scopes, roles, reconcile, plan, explain, the SCIM model.
//! - [`config`]: the admin config file, parsed and validated as a whole.
//! - [`store`]: the storage port and its SQLite implementation; [`idp`]: the IdP client.
//! - use cases: [`membership`] (reconcile, config sync, plan, explain), [`signing`] (teamgate's
//!   own keys and JWKS), [`signin`] (complete a login, settle groups, refresh), [`provisioning`]
//!   (the SCIM operations and tokens), [`authorize`] (signing users in to applications).
//! - [`web`]: the toolkit the adapters share; [`state`]: the state they receive.
//! - adapters: [`oidc`] (sign-in routes), [`scim`] (SCIM HTTP), [`downstream`] (forward-auth,
//!   the assertion), [`home`] (the user's pages), [`admin`] (CLI tools, pages, reload),
//!   [`provider`] (teamgate as an OpenID provider, and the demo IdP built on the same code).
//! - [`app`]: start-up and the router; [`cli`]: the `teamgate` command line.
//! - [`metrics`]: the Prometheus registry, a leaf any layer may bump.

pub mod admin;
pub mod app;
pub mod authorize;
pub mod cli;
pub mod config;
pub mod domain;
pub mod downstream;
pub mod home;
pub mod idp;
pub mod membership;
pub mod metrics;
pub mod oidc;
pub mod provider;
pub mod provisioning;
pub mod scim;
pub mod signin;
pub mod signing;
pub mod state;
pub mod store;
pub mod web;
