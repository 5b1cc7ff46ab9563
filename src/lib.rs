//! teamgate: a self-hosted login broker. Identity providers come in through OpenID Connect
//! logins and SCIM pushes; applications get back who the user is and which teams and roles
//! they hold.
//!
//! The map of the crate (dependencies run one way: front ends -> `domain` and `store`):
//! - [`config`]: the admin config file, parsed and validated as a whole.
//! - [`domain`]: pure rules: ids, scopes, roles, the mapping table and reconcile.
//! - [`store`]: SQLite: migrations, the single writer, queries grouped by table, sessions.
//! - [`oidc`]: providers: discovery and JWKS cache, login, callback, group resolution.
//! - [`scim`]: SCIM 2.0 provisioning: filters, PATCH, resources, routes, bearer tokens.
//! - [`demo_idp`]: a real OpenID provider served by teamgate itself for demos.
//! - [`downstream`]: forward-auth (`/auth`), the signed assertion and its JWKS.
//! - [`http`]: router assembly, middleware, HTML and JSON error surfaces, pages.
//! - [`app`]: `Application::build(Config)`: the running server and its shared state.
//! - [`cli`]: the `teamgate` command line.
//! - [`admin`]: plan, explain, audit, live reload, the `/admin` pages, `/readyz`, `/metrics`.
//! - [`metrics`]: the Prometheus registry and the counters other modules bump.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo_idp;
pub mod domain;
pub mod downstream;
pub mod http;
pub mod identity;
pub mod login_flow;
pub mod metrics;
pub mod oidc;
pub mod scim;
pub mod secret;
pub mod session;
pub mod store;
