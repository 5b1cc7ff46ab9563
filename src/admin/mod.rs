//! Administration: the tools that let an administrator change the config with confidence.
//!
//! - [`cli`]: `teamgate plan`, `explain`, `audit` and `reload` (read-only on the database,
//!   except that `reload` signals the running server).
//! - [`reload`]: live reload on SIGHUP: validate the file, apply it in one transaction, swap
//!   the config; an invalid file is refused and the old config stays.
//! - [`pidfile`]: the pid file `serve` writes beside the database, which `reload` signals.
//! - [`guard`]: who may open `/admin` (the configured admin role) and the CSRF checks on
//!   every state-changing form (security case 54).
//! - [`pages`]: the `/admin` HTML pages (users, teams, mappings, SCIM, audit, plan).
//! - [`ops`]: `/readyz` and `/metrics`.
//! - [`scim_tokens`]: `teamgate scim-token create|list|revoke`.
//! - [`views`]: what the admin pages render, typed.

pub mod cli;
pub mod guard;
pub mod ops;
pub mod pages;
pub mod pidfile;
pub mod reload;
pub mod scim_tokens;
pub mod sessions;
pub mod views;

use axum::Router;

use crate::state::AppState;

/// The admin pages and `/readyz` (`/metrics`: [`ops::metrics_routes`]).
pub fn routes() -> Router<AppState> {
    Router::new().merge(pages::routes()).merge(ops::routes())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const CONFIG: &str = r#"
[server]
public_url = "http://127.0.0.1:8080"
listen = "127.0.0.1:8080"
database = "data/x.db"
demo = true

[[provider]]
id = "okta"
kind = "demo"
group_key = "name"

[[demo_user]]
email = "carol@example.com"
name = "Carol"
groups = ["Security Team"]

[[team]]
id = "security"
name = "Security"
roles = [{ scope = "org/acme", role = "viewer" }]
groups = [{ provider = "okta", name = "Security Team" }]
members = ["Carol@Example.com"]

[[team]]
id = "everyone"
roles = [{ scope = "org/acme", role = "viewer" }]

[defaults]
teams_without_groups = ["everyone"]
"#;

    #[test]
    fn the_view_of_a_config_gives_the_same_policy_as_the_config() {
        let config = Config::parse(CONFIG, std::path::Path::new("t.toml")).unwrap();
        let view = config.view();
        let (a, b) = (view.policy(), config.policy());
        assert_eq!(a.mappings, b.mappings);
        assert_eq!(a.known_teams, b.known_teams);
        assert_eq!(a.teams_without_groups, b.teams_without_groups);
        let security = &view.teams[&crate::domain::TeamId::parse("security").unwrap()];
        assert!(security.members.contains("carol@example.com"));
    }
}
