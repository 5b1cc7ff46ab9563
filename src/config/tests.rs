//! The config validator through its one entry point, [`Config::parse`]: the shipped files
//! validate, and each kind of mistake is reported once, on the line that holds it, with the fix.
//! A case marks the line it expects in its own text (`# <- here`), so the asserted line number
//! is exact and stays right when the surrounding text changes.

use std::path::{Path, PathBuf};

use super::*;

/// The marker a case puts at the end of each line an error must name.
const HERE: &str = "# <- here";

/// Cases parse as if they were a file in `config/`, so `client_secret_file` resolves beside the
/// example's dummy secrets.
fn case_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/case.toml")
}

const URL: &str = r#"public_url = "https://login.example.com""#;

/// Two valid providers, one keyed by group id and one by group name, and one team.
const PROVIDERS_AND_TEAM: &str = r#"
[[provider]]
id = "entra"
kind = "entra"
issuer = "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0"
client_id = "entra-client"
client_secret_file = "example-secrets/entra-client-secret"

[[provider]]
id = "okta"
kind = "okta"
issuer = "https://example.okta.com/oauth2/default"
client_id = "okta-client"
client_secret_file = "example-secrets/okta-client-secret"

[[team]]
id = "everyone"
roles = [{ scope = "org/acme", role = "viewer" }]
"#;

/// A multi-tenant Entra provider.
const MULTI: &str = r#"
[[provider]]
id = "partners"
kind = "entra"
tenant = "organizations"
issuer = "https://login.microsoftonline.com/organizations/v2.0"
allowed_tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
client_id = "entra-client"
client_secret_file = "example-secrets/entra-client-secret"
"#;

/// A config file: top-level keys, the body of `[server]`, the valid providers and team, `rest`.
fn file(top: &str, server: &str, rest: &str) -> String {
    format!("{top}\n[server]\n{server}\n{PROVIDERS_AND_TEAM}\n{rest}\n")
}

/// A config file that differs from a valid one only by `rest`.
fn with(rest: &str) -> String {
    file("", URL, rest)
}

/// The 1-based numbers of the lines marked with [`HERE`].
fn marked_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(HERE))
        .map(|(i, _)| i + 1)
        .collect()
}

fn errors_of(text: &str) -> Vec<ConfigError> {
    match Config::parse(text, &case_path()) {
        Ok(_) => Vec::new(),
        Err(ConfigErrors(errors)) => errors,
    }
}

struct Case {
    name: &'static str,
    toml: String,
    /// Fragments the message must contain: what is wrong and how to fix it.
    says: &'static [&'static str],
}

fn case(name: &'static str, toml: String, says: &'static [&'static str]) -> Case {
    Case { name, toml, says }
}

fn mistakes() -> Vec<Case> {
    vec![
        case(
            "cookie_domain that is not a parent of public_url's host",
            file(
                "",
                &format!("{URL}\ncookie_domain = \"example.org\" {HERE}"),
                "",
            ),
            &[
                "server.cookie_domain",
                "not server.public_url's host (login.example.com) or a parent of it",
            ],
        ),
        case(
            "cookie_domain of one label",
            file("", &format!("{URL}\ncookie_domain = \"com\" {HERE}"), ""),
            &["server.cookie_domain", "at least two labels", "example.com"],
        ),
        case(
            "unknown logout mode",
            with(&format!(
                "[[provider]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://sso.example.com\"\nclient_id = \"c\"\nclient_secret_file = \"example-secrets/okta-client-secret\"\nlogout = \"global\" {HERE}\n"
            )),
            &["logout \"global\" is unknown", "\"local\"", "\"idp\""],
        ),
        case(
            "public_url with a path that is not plain segments",
            file(
                "",
                &format!("public_url = \"https://app.example.com/a b\" {HERE}"),
                "",
            ),
            &["server.public_url", "plain segments"],
        ),
        case(
            "unknown top-level key",
            file(&format!("colour = \"blue\" {HERE}"), URL, ""),
            &["unknown field `colour`", "remove it or check its spelling"],
        ),
        case(
            "unknown key in [[provider]]",
            with(&format!(
                "[[provider]]\nid = \"corp\"\nkind = \"oidc\"\nclient_secrte_env = \"X\" {HERE}\n"
            )),
            &["unknown field `client_secrte_env`", "check its spelling"],
        ),
        case(
            "unknown key in [[team]]",
            with(&format!("[[team]]\nid = \"admins\"\nrolez = [] {HERE}\n")),
            &["unknown field `rolez`", "check its spelling"],
        ),
        case(
            "wrong type",
            file(
                "",
                &format!("{URL}\nsession_idle_minutes = \"eight hours\" {HERE}"),
                "",
            ),
            &[
                "session_idle_minutes: invalid type: string \"eight hours\"",
                "expected a whole number",
            ],
        ),
        case(
            "metrics_listen not an address",
            file("", &format!("{URL}\nmetrics_listen = \"9100\" {HERE}"), ""),
            &["\"9100\" is not an address:port", "127.0.0.1:9100"],
        ),
        case(
            "metrics_listen on the main listener's address",
            file(
                "",
                &format!(
                    "{URL}\nlisten = \"127.0.0.1:8080\"\nmetrics_listen = \"127.0.0.1:8080\" {HERE}"
                ),
                "",
            ),
            &[
                "the same address as server.listen",
                "give /metrics its own port",
            ],
        ),
        case(
            "an IdP timeout out of range",
            file("", &format!("{URL}\nidp_timeout_seconds = 0 {HERE}"), ""),
            &["server.idp_timeout_seconds must be 1 to 120"],
        ),
        case(
            "an IdP connect timeout longer than the whole call",
            file(
                "",
                &format!("{URL}\nidp_connect_timeout_seconds = 30 {HERE}\nidp_timeout_seconds = 5"),
                "",
            ),
            &[
                "idp_connect_timeout_seconds (30) is longer than server.idp_timeout_seconds (5)",
                "the connection is part of the whole call",
            ],
        ),
        case(
            "wrong type inside an inline table",
            with(&format!(
                "[[team]]\nid = \"admins\"\nroles = [{{ scope = \"org/acme\", role = 3 }}] {HERE}\n"
            )),
            &["role: invalid type: integer `3`", "expected a string"],
        ),
        case(
            "wrong type for a switch",
            file("", &format!("{URL}\ndemo = \"yes\" {HERE}"), ""),
            &["demo: invalid type: string \"yes\"", "expected a boolean"],
        ),
        case(
            "duplicate team id",
            with(&format!("[[team]]\nid = \"everyone\" {HERE}\n")),
            &[
                "\"everyone\" is declared twice",
                "merge the two [[team]] blocks or rename one",
            ],
        ),
        case(
            "duplicate provider id",
            with(&format!(
                "[[provider]]\nid = \"okta\" {HERE}\nkind = \"okta\"\nissuer = \"https://other.okta.com\"\nclient_id = \"c\"\nclient_secret_file = \"example-secrets/okta-client-secret\"\n"
            )),
            &[
                "\"okta\" is used twice",
                "give each [[provider]] its own id",
            ],
        ),
        case(
            "team id too short",
            with(&format!("[[team]]\nid = \"ops\" {HERE}\n")),
            &["team.id", "\"ops\" has 3 characters", "use 4 to 64"],
        ),
        case(
            "team id too long",
            with(&format!("[[team]]\nid = \"{}\" {HERE}\n", "a".repeat(65))),
            &["has 65 characters", "use 4 to 64"],
        ),
        case(
            "team id in uppercase",
            with(&format!("[[team]]\nid = \"Security\" {HERE}\n")),
            &[
                "contains 'S'",
                "use only lowercase letters, digits, '-' and '_'",
            ],
        ),
        case(
            "team id with a leading dash",
            with(&format!("[[team]]\nid = \"-security\" {HERE}\n")),
            &["starts with a dash", "start it with a letter, digit or '_'"],
        ),
        case(
            "team id with a character outside [a-z0-9_-]",
            with(&format!("[[team]]\nid = \"sec.ops\" {HERE}\n")),
            &["contains '.'", "use only lowercase letters"],
        ),
        case(
            "unknown role",
            with(&format!(
                "[[team]]\nid = \"admins\"\nroles = [{{ scope = \"org/acme\", role = \"veiwer\" }}] {HERE}\n"
            )),
            &[
                "role \"veiwer\" is not a built-in role",
                "declare it in custom_roles",
            ],
        ),
        case(
            "bad scope",
            with(&format!(
                "[[team]]\nid = \"admins\"\nroles = [\n  {{ scope = \"org/acme/workspace/prod\", role = \"viewer\" }}, {HERE}\n]\n"
            )),
            &["team.roles.scope", "write org/<id>, org/<id>/space/<id>"],
        ),
        case(
            "a role binding outside the team's scope",
            with(&format!(
                "[[team]]\nid = \"infra\"\nscope = \"org/acme/space/infra\"\nroles = [\n  {{ scope = \"org/acme/space/infra/workspace/prod\", role = \"editor\" }},\n  {{ scope = \"org/acme\", role = \"viewer\" }}, {HERE}\n]\n"
            )),
            &[
                "team \"infra\" belongs to scope org/acme/space/infra, but binds a role on org/acme, outside it",
                "bind the role on org/acme/space/infra or beneath it",
            ],
        ),
        case(
            "a [[role]] including an unknown role",
            with(&format!(
                "[[role]]\nname = \"auditor\"\nincludes = [\"viewer\", \"veiwer\"] {HERE}\n"
            )),
            &[
                "role \"auditor\" includes \"veiwer\", which is not a known role",
                "fix the spelling",
            ],
        ),
        case(
            "roles including each other in a cycle",
            with(&format!(
                "[[role]] {HERE}\nname = \"lead\"\nincludes = [\"auditor\"]\n[[role]]\nname = \"auditor\"\nincludes = [\"lead\"]\n"
            )),
            &[
                "roles include each other in a cycle: lead -> auditor -> lead",
                "remove one of the includes",
            ],
        ),
        case(
            "a [[role]] redeclaring a built-in role",
            with(&format!(
                "[[role]]\nname = \"viewer\" {HERE}\nincludes = [\"owner\"]\n"
            )),
            &[
                "\"viewer\" is a built-in role",
                "declare a role of your own",
            ],
        ),
        case(
            "a [[role]] also in custom_roles",
            file(
                "custom_roles = [\"auditor\"]",
                URL,
                &format!("[[role]]\nname = \"auditor\" {HERE}\n"),
            ),
            &["role \"auditor\" is declared twice", "declare it once"],
        ),
        case(
            "a tenant on a mapping of a single-tenant provider",
            with(&format!(
                "[[team]]\nid = \"admins\"\ngroups = [{{ provider = \"entra\", tenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\", id = \"g\" }}] {HERE}\n"
            )),
            &["provider \"entra\" is not multi-tenant", "remove tenant"],
        ),
        case(
            "a mapping of a multi-tenant provider without its tenant",
            with(&format!(
                "{MULTI}[[team]]\nid = \"admins\"\ngroups = [{{ provider = \"partners\", id = \"g\" }}] {HERE}\n"
            )),
            &[
                "provider \"partners\" is multi-tenant",
                "tenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"",
            ],
        ),
        case(
            "a mapping naming a tenant the provider does not admit",
            with(&format!(
                "{MULTI}[[team]]\nid = \"admins\"\ngroups = [{{ provider = \"partners\", tenant = \"00000000-0000-0000-0000-000000000000\", id = \"g\" }}] {HERE}\n"
            )),
            &[
                "tenant \"00000000-0000-0000-0000-000000000000\" is not in provider \"partners\"'s allowed_tenants",
                "use one of them",
            ],
        ),
        case(
            "mapping to a missing provider",
            with(&format!(
                "[[team]]\nid = \"admins\"\ngroups = [{{ provider = \"github\", name = \"admins\" }}] {HERE}\n"
            )),
            &[
                "provider \"github\" is not configured",
                "add a [[provider]] with that id",
            ],
        ),
        case(
            "group given by name for an id-keyed provider",
            with(&format!(
                "[[team]]\nid = \"admins\"\ngroups = [{{ provider = \"entra\", name = \"Admins\" }}] {HERE}\n"
            )),
            &["\"entra\" matches groups by id", "id = \"...\""],
        ),
        case(
            "unknown provider kind",
            with(&format!(
                "[[provider]]\nid = \"gh\"\nkind = \"github\" {HERE}\n"
            )),
            &[
                "kind \"github\" is unknown",
                "use entra, okta, oidc or demo",
            ],
        ),
        case(
            "demo provider without server.demo = true",
            with(&format!(
                "[[provider]] {HERE}\nid = \"demo\"\nkind = \"demo\"\n\n[[demo_user]]\nemail = \"a@example.com\"\nname = \"A\"\n"
            )),
            &["signs in anyone", "set demo = true under [server]"],
        ),
        case(
            "metrics_listen on a public address without a token",
            file(
                "",
                &format!("{URL}\nmetrics_listen = \"0.0.0.0:9100\" {HERE}"),
                "",
            ),
            &[
                "is not a loopback address",
                "set metrics_token_env or metrics_token_file",
                "or listen on 127.0.0.1",
            ],
        ),
        case(
            "a metrics token without metrics_listen",
            file(
                "",
                &format!("{URL}\nmetrics_token_file = \"example-secrets/okta-api-token\" {HERE}"),
                "",
            ),
            &[
                "served only on server.metrics_listen",
                "set metrics_listen too",
            ],
        ),
        case(
            "an unreadable metrics token file",
            file(
                "",
                &format!(
                    "{URL}\nmetrics_listen = \"0.0.0.0:9100\"\nmetrics_token_file = \"no-such-file\" {HERE}"
                ),
                "",
            ),
            &["server.metrics_token_file: cannot read"],
        ),
        case(
            "a login rate burst of zero",
            file("", &format!("{URL}\nlogin_rate_burst = 0 {HERE}"), ""),
            &["server.login_rate_burst must be 1 to 100000"],
        ),
        case(
            "demo = true on a public address",
            file("", &format!("{URL}\ndemo = true {HERE}"), ""),
            &[
                "server.demo = true needs a loopback server.public_url",
                "signs in anyone",
                "Remove demo = true",
            ],
        ),
        case(
            "missing client secret",
            with(&format!(
                "[[provider]] {HERE}\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://sso.example.com\"\nclient_id = \"c\"\n"
            )),
            &[
                "no client secret",
                "set client_secret_env = \"VAR\" or client_secret_file",
            ],
        ),
        case(
            "client secret env var not set",
            with(&format!(
                "[[provider]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://sso.example.com\"\nclient_id = \"c\"\nclient_secret_env = \"TEAMGATE_TEST_NEVER_SET_7F3C9A\" {HERE}\n"
            )),
            &[
                "TEAMGATE_TEST_NEVER_SET_7F3C9A is not set",
                "export the client secret in it",
            ],
        ),
        case(
            "client secret from both env and file",
            with(&format!(
                "[[provider]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://sso.example.com\"\nclient_id = \"c\"\nclient_secret_env = \"PATH\"\nclient_secret_file = \"example-secrets/okta-client-secret\" {HERE}\n"
            )),
            &["set client_secret_env or client_secret_file, not both"],
        ),
        case(
            "secret file that does not exist",
            with(&format!(
                "[[provider]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://sso.example.com\"\nclient_id = \"c\"\nclient_secret_file = \"example-secrets/no-such-file\" {HERE}\n"
            )),
            &["cannot read the secret file", "no-such-file"],
        ),
        case(
            "public_url that is not a URL",
            file(
                "",
                &format!("public_url = \"login.example.com\" {HERE}"),
                "",
            ),
            &[
                "server.public_url",
                "is not a URL",
                "write e.g. https://login.example.com",
            ],
        ),
        case(
            "public_url with plain http on a non-loopback host",
            file(
                "",
                &format!("public_url = \"http://login.example.com\" {HERE}"),
                "",
            ),
            &["plain http on a non-loopback host", "use https"],
        ),
        case(
            "listen address without a host",
            file("", &format!("{URL}\nlisten = \"8080\" {HERE}"), ""),
            &[
                "server.listen",
                "\"8080\" is not an address:port",
                "write e.g. 127.0.0.1:8080",
            ],
        ),
        case(
            "allowed_redirect_origins entry with a path",
            file(
                "",
                &format!(
                    "{URL}\nallowed_redirect_origins = [\n  \"https://app.example.com\",\n  \"https://app.example.com/home\", {HERE}\n]"
                ),
                "",
            ),
            &[
                "server.allowed_redirect_origins",
                "must be an origin only",
                "without path",
            ],
        ),
        case(
            "two providers with the same issuer",
            with(&format!(
                "[[provider]] {HERE}\nid = \"okta2\"\nkind = \"okta\"\nissuer = \"https://example.okta.com/oauth2/default\"\nclient_id = \"c\"\nclient_secret_file = \"example-secrets/okta-client-secret\"\n"
            )),
            &[
                "\"okta\" and \"okta2\" have the same issuer",
                "each provider needs its own issuer",
            ],
        ),
        case(
            "a client with a wildcard redirect URI",
            with(&format!(
                "[[client]]\nid = \"grafana\"\nsecret_file = \"example-secrets/grafana-client-secret\"\nredirect_uris = [\"https://*.example.com/cb\"] {HERE}\n"
            )),
            &["client.redirect_uris", "contains '*'", "list each one"],
        ),
        case(
            "a client redirect URI over plain http to another host",
            with(&format!(
                "[[client]]\nid = \"grafana\"\nsecret_file = \"example-secrets/grafana-client-secret\"\nredirect_uris = [\"http://grafana.example.com/cb\"] {HERE}\n"
            )),
            &["must be https", "only on localhost"],
        ),
        case(
            "a client without any secret that is not public",
            with(&format!(
                "[[client]] {HERE}\nid = \"grafana\"\nredirect_uris = [\"https://g.example.com/cb\"]\n"
            )),
            &[
                "client \"grafana\": no secret",
                "secret_env",
                "public = true",
            ],
        ),
        case(
            "a public client with a secret",
            with(&format!(
                "[[client]]\nid = \"spa\"\npublic = true\nsecret_file = \"example-secrets/grafana-client-secret\" {HERE}\nredirect_uris = [\"https://spa.example.com/cb\"]\n"
            )),
            &[
                "a public client has no secret",
                "remove secret_env/secret_file",
            ],
        ),
        case(
            "a client allowed to a team that is not declared",
            with(&format!(
                "[[client]]\nid = \"grafana\"\nsecret_file = \"example-secrets/grafana-client-secret\"\nredirect_uris = [\"https://g.example.com/cb\"]\nallowed_teams = [\"operators\"] {HERE}\n"
            )),
            &[
                "allowed team \"operators\" is not a declared [[team]]",
                "declare the team",
            ],
        ),
        case(
            "a client claim that does not exist",
            with(&format!(
                "[[client]]\nid = \"grafana\"\nsecret_file = \"example-secrets/grafana-client-secret\"\nredirect_uris = [\"https://g.example.com/cb\"]\nclaims = [\"teams\", \"department\"] {HERE}\n"
            )),
            &[
                "claim \"department\" is unknown",
                "email, name, teams, roles or groups",
            ],
        ),
        case(
            "two clients with one id",
            with(&format!(
                "[[client]]\nid = \"grafana\"\npublic = true\nredirect_uris = [\"https://g.example.com/cb\"]\n\n[[client]]\nid = \"grafana\" {HERE}\npublic = true\nredirect_uris = [\"https://g2.example.com/cb\"]\n"
            )),
            &["client id \"grafana\" is used twice", "its own id"],
        ),
        case(
            "an ID-token algorithm teamgate does not sign with",
            with(&format!(
                "[[client]]\nid = \"grafana\"\npublic = true\nredirect_uris = [\"https://g.example.com/cb\"]\nid_token_alg = \"HS256\" {HERE}\n"
            )),
            &["id_token_alg \"HS256\" is not supported", "use RS256"],
        ),
        case(
            "teams_without_groups naming an undeclared team",
            with(&format!(
                "[defaults]\nteams_without_groups = [\"everyone\", \"newcomers\"] {HERE}\n"
            )),
            &[
                "team \"newcomers\", which is not declared",
                "add a [[team]] with that id",
            ],
        ),
    ]
}

#[test]
fn cookie_domain_and_logout_are_read_and_the_database_resolves_beside_the_file() {
    let text = file(
        "",
        &format!("{URL}\ncookie_domain = \".Example.com\"\ndatabase = \"../state/t.db\""),
        "",
    )
    .replace(
        "client_secret_file = \"example-secrets/okta-client-secret\"",
        "client_secret_file = \"example-secrets/okta-client-secret\"\nlogout = \"idp\"",
    );
    let config = Config::parse(&text, &case_path()).expect("valid");
    assert_eq!(config.server.cookie_domain.as_deref(), Some("example.com"));
    assert_eq!(
        config.server.database.sqlite_path(),
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("state/t.db")
                .as_path()
        )
    );
    assert_eq!(config.provider("okta").unwrap().logout, LogoutMode::Idp);
    assert_eq!(config.provider("entra").unwrap().logout, LogoutMode::Local);
    assert_eq!(config.server.base_path(), "");
    let under = file("", "public_url = \"https://app.example.com/teamgate/\"", "");
    let config = Config::parse(&under, &case_path()).expect("valid");
    assert_eq!(config.server.base_path(), "/teamgate");
    assert_eq!(config.server.path("/login"), "/teamgate/login");
    assert_eq!(
        config.server.url("/callback/entra"),
        "https://app.example.com/teamgate/callback/entra"
    );
}

#[test]
fn the_shipped_demo_and_example_configs_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in ["demo.toml", "example.toml"] {
        if let Err(e) = Config::load(&dir.join(name)) {
            panic!("config/{name} should validate:\n{e}");
        }
    }
}

#[test]
fn the_example_config_reads_what_it_documents() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let config = Config::load(&path).expect("example.toml validates");
    let kinds: Vec<_> = config
        .providers
        .iter()
        .map(|p| (p.id.as_str(), p.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("entra", ProviderKind::Entra),
            ("partners", ProviderKind::Entra),
            ("okta", ProviderKind::Okta),
            ("keycloak", ProviderKind::Oidc)
        ]
    );
    let partners = config.provider("partners").expect("partners");
    assert!(partners.is_multi_tenant() && partners.scim_enabled);
    let entra = config.provider("entra").expect("entra");
    assert_eq!(entra.group_key, GroupKey::Id);
    assert!(entra.scim_enabled);
    assert_eq!(
        entra.client_secret.as_ref().map(Secret::expose),
        Some("dummy-entra-client-secret-replace-me"),
        "the secret file is read and trimmed"
    );
    let okta = config.provider("okta").expect("okta");
    assert_eq!(okta.group_key, GroupKey::Name);
    assert!(okta.groups_from_userinfo);
    assert!(okta.okta_api_token.is_some(), "the API token file is read");
    let keycloak = config.provider("keycloak").expect("keycloak");
    assert_eq!(keycloak.groups_claim, "realm_access.roles");
    // Every team maps to at least one provider, and both big IdPs are mapped somewhere.
    let mapped: BTreeSet<&str> = config
        .teams
        .iter()
        .flat_map(|t| t.groups.iter().map(|(p, _)| p.as_str()))
        .collect();
    assert!(mapped.contains("entra") && mapped.contains("okta") && mapped.contains("keycloak"));
    let grafana = config.client("grafana").expect("the grafana client");
    assert_eq!(
        grafana.secret.as_ref().map(Secret::expose),
        Some("dummy-grafana-client-secret-replace-me")
    );
    assert_eq!(
        grafana.redirect_uris,
        ["https://grafana.example.com/login/generic_oauth"]
    );
    assert_eq!(grafana.allowed_teams.len(), 2);
    assert_eq!(grafana.id_token_alg, SigningAlg::Rs256);
    assert!(grafana.releases(ClientClaim::Roles) && !grafana.releases(ClientClaim::Groups));
    let spa = config.client("handbook").expect("the public client");
    assert!(spa.public && spa.secret.is_none());
    assert_eq!(spa.id_token_alg, SigningAlg::Es256);
    assert_eq!(
        spa.claims.len(),
        ClientClaim::ALL.len(),
        "all claims by default"
    );
    let auditors = TeamId::parse("auditors").expect("team id");
    assert!(
        config
            .team(&auditors)
            .is_some_and(|t| t.roles.iter().any(|b| b.role.as_str() == "auditor")),
        "the custom role declared at the top is held by a team"
    );
    // [[role]] auditor includes viewer and exception-reviewer; custom_roles still declares.
    let auditor = Role::parse("auditor").expect("role");
    assert_eq!(
        config
            .role_hierarchy
            .implied(&auditor)
            .iter()
            .map(Role::as_str)
            .collect::<Vec<_>>(),
        ["exception-reviewer", "viewer"]
    );
    assert!(
        config
            .known_roles
            .contains(&Role::parse("release-manager").expect("role"))
    );
    // A multi-tenant mapping carries its tenant in the key.
    assert!(config.teams.iter().any(|t| {
        t.groups.iter().any(|(p, g)| {
            p.as_str() == "partners"
                && g == "72f988bf-86f1-41af-91ab-2d7cd011db47/a1b2c3d4-0000-0000-0000-000000000009"
        })
    }));
    let platform = TeamId::parse("platform-admins").expect("team id");
    assert_eq!(
        config
            .team(&platform)
            .and_then(|t| t.scope.as_ref())
            .map(ToString::to_string),
        Some("org/acme".to_owned())
    );
}

/// Keys a `raw.rs` struct accepts, read from its source so the list cannot fall behind it:
/// `pub name:` fields, renamed where serde renames them.
fn accepted_keys() -> BTreeSet<String> {
    let source = include_str!("raw.rs");
    let mut keys = BTreeSet::new();
    let mut rename: Option<String> = None;
    for line in source.lines().map(str::trim) {
        if let Some(at) = line.find("rename = \"") {
            let rest = &line[at + "rename = \"".len()..];
            rename = rest.split('"').next().map(str::to_owned);
        } else if let Some(field) = line.strip_prefix("pub ").and_then(|l| l.split_once(':')) {
            let name = field.0.trim();
            if !name.contains(' ') && !name.contains('(') {
                keys.insert(rename.take().unwrap_or_else(|| name.to_owned()));
            }
        } else if !line.starts_with("///") && !line.starts_with("#[") {
            rename = None;
        }
    }
    keys
}

#[test]
fn the_example_config_documents_every_key_the_parser_accepts() {
    let keys = accepted_keys();
    assert!(
        keys.len() > 40 && keys.contains("provider") && keys.contains("groups_claim_field"),
        "the raw.rs reader found too few keys: {keys:?}"
    );
    let example = include_str!("../../config/example.toml");
    let documented = |key: &str| {
        example.lines().any(|line| {
            let line = line.trim_start_matches(['#', ' ']);
            line.starts_with(&format!("{key} "))
                || line.starts_with(&format!("{key}="))
                || line.starts_with(&format!("[{key}]"))
                || line.starts_with(&format!("[[{key}]]"))
                || line.contains(&format!("{{ {key} ="))
                || line.contains(&format!(", {key} ="))
                || line.contains(&format!(".{key}]"))
        })
    };
    let missing: Vec<&String> = keys.iter().filter(|k| !documented(k)).collect();
    assert!(
        missing.is_empty(),
        "config/example.toml does not show {missing:?}"
    );
}

#[test]
fn each_mistake_is_one_error_on_its_line_that_says_how_to_fix_it() {
    let mut failures = Vec::new();
    for Case { name, toml, says } in mistakes() {
        let lines = marked_lines(&toml);
        assert_eq!(lines.len(), 1, "case {name:?} must mark exactly one line");
        let errors = errors_of(&toml);
        let problem = match errors.as_slice() {
            [e] if e.line != lines[0] => {
                Some(format!("reported line {}, expected {}", e.line, lines[0]))
            }
            [e] => says
                .iter()
                .find(|s| !e.message.contains(*s))
                .map(|s| format!("message lacks {s:?}")),
            _ => Some("expected exactly one error".to_owned()),
        };
        if let Some(problem) = problem {
            failures.push(format!("{name}: {problem}; got {errors:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_custom_role_is_accepted_once_declared_in_custom_roles() {
    let team = format!(
        "[[team]]\nid = \"auditors\"\nroles = [{{ scope = \"org/acme\", role = \"auditor\" }}] {HERE}\n"
    );
    let undeclared = with(&team);
    let errors = errors_of(&undeclared);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, marked_lines(&undeclared)[0]);
    assert!(
        errors[0]
            .message
            .contains("\"auditor\" is not a built-in role")
    );

    let declared = file("custom_roles = [\"auditor\"]", URL, &team);
    let config = Config::parse(&declared, &case_path()).expect("declared custom role");
    let auditors = config
        .team(&TeamId::parse("auditors").expect("team id"))
        .expect("the team");
    assert_eq!(auditors.roles[0].role.as_str(), "auditor");
    assert!(config.known_roles.iter().any(|r| r.as_str() == "auditor"));
}

#[test]
fn every_problem_in_a_file_is_reported_at_once_sorted_by_line() {
    // Written in an order unlike the file's, so that sorting is visible.
    let toml = file(
        &format!("custom_roles = [\"Bad Role\"] {HERE}"),
        &format!("public_url = \"http://login.example.com\" {HERE}\nlisten = \"nowhere\" {HERE}"),
        &format!(
            "[[team]]\nid = \"ops\" {HERE}\n\n[[team]]\nid = \"admins\"\nroles = [{{ scope = \"org\", role = \"viewer\" }}] {HERE}\ngroups = [{{ provider = \"gitlab\", name = \"x\" }}] {HERE}\n\n[defaults]\nteams_without_groups = [\"nobody\"] {HERE}\n"
        ),
    );
    let errors = errors_of(&toml);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, marked_lines(&toml), "{errors:#?}");
    let file = case_path();
    assert!(errors.iter().all(|e| e.file == file));
}

#[test]
fn a_syntax_error_names_its_line() {
    let toml = with(&format!("[[team]]\nid = \"admins\nname = \"x\" {HERE}\n"));
    let errors = errors_of(&toml);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    // The unterminated string is found where the line ends.
    let opened = marked_lines(&toml)[0] - 1;
    assert_eq!(errors[0].line, opened, "{errors:#?}");
}

#[test]
fn errors_display_as_file_line_message() {
    let toml = with(&format!(
        "[[team]]\nid = \"ops\" {HERE}\n\n[[team]]\nid = \"-ops\" {HERE}\n"
    ));
    let err = Config::parse(&toml, &case_path()).expect_err("two bad team ids");
    let lines = marked_lines(&toml);
    let shown = err.to_string();
    assert!(shown.starts_with("2 problems in the config:\n"), "{shown}");
    for (e, line) in err.0.iter().zip(&lines) {
        let expected = format!("  {}:{line}: {}\n", case_path().display(), e.message);
        assert!(shown.contains(&expected), "{shown} lacks {expected}");
    }
    let one = ConfigError {
        file: PathBuf::from("config/teamgate.toml"),
        line: 0,
        message: "no [[provider]] is configured".into(),
    };
    assert_eq!(
        one.to_string(),
        "config/teamgate.toml: no [[provider]] is configured",
        "a problem with no single place shows no line"
    );
}

#[test]
fn a_file_whose_only_provider_is_invalid_is_not_also_told_to_add_one() {
    let toml = format!(
        "[server]\n{URL}\n\n[[provider]] {HERE}\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://sso.example.com\"\nclient_id = \"c\"\n"
    );
    let errors = errors_of(&toml);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, marked_lines(&toml)[0]);
    assert!(
        errors[0].message.contains("no client secret"),
        "{errors:#?}"
    );
}

#[test]
fn a_file_without_providers_is_told_to_add_one() {
    let errors = errors_of(&format!("[server]\n{URL}\n"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, 0, "the problem has no single line");
    assert!(
        errors[0]
            .message
            .contains("no [[provider]] is configured; add at least one")
    );
}

#[test]
fn idp_timeouts_default_to_2_s_to_connect_and_10_s_in_all() {
    let config = Config::parse(&with(""), &case_path()).expect("valid");
    assert_eq!(config.server.idp_connect_timeout, Duration::from_secs(2));
    assert_eq!(config.server.idp_timeout, Duration::from_secs(10));
    let text = file("", &format!("{URL}\nidp_timeout_seconds = 4"), "");
    let config = Config::parse(&text, &case_path()).expect("valid");
    assert_eq!(config.server.idp_timeout, Duration::from_secs(4));
}

#[test]
fn a_postgres_url_is_validated_and_never_holds_the_password() {
    let server = |database: &str, extra: &str| {
        file(
            "",
            &format!("{URL}\ndatabase = \"{database}\" {HERE}\n{extra}"),
            "",
        )
    };
    // A valid URL: host, port, database, user, sslmode; the password from a file.
    let text = server(
        "postgres://teamgate@db.example.com:6543/tg?sslmode=verify-full",
        "database_password_file = \"example-secrets/okta-client-secret\"",
    )
    .replace(&format!(" {HERE}"), "");
    let config = Config::parse(&text, &case_path()).unwrap();
    let Database::Postgres(pg) = &config.server.database else {
        panic!("not PostgreSQL: {:?}", config.server.database);
    };
    assert_eq!(
        (
            pg.host.as_str(),
            pg.port,
            pg.dbname.as_str(),
            pg.user.as_str()
        ),
        ("db.example.com", 6543, "tg", "teamgate")
    );
    assert_eq!(pg.sslmode, SslMode::VerifyFull);
    assert!(pg.password.is_some(), "the password file is read");
    let shown = config.server.database.describe();
    assert_eq!(
        shown,
        "postgres://teamgate@db.example.com:6543/tg?sslmode=verify-full"
    );
    // A file path is SQLite, as before, resolved beside the config file; a URL is not a path.
    let text = server("data/x.db", "").replace(&format!(" {HERE}"), "");
    let config = Config::parse(&text, &case_path()).unwrap();
    assert_eq!(
        config.server.database.sqlite_path(),
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/data/x.db")
                .as_path()
        )
    );
    // Each mistake: one error on the database line that says how to fix it.
    for (database, says) in [
        (
            "postgres://teamgate:hunter2@db.example.com/tg?sslmode=require",
            "database_password_env",
        ),
        (
            "postgres://db.example.com/tg?sslmode=require",
            "names no user",
        ),
        (
            "postgres://teamgate@db.example.com/?sslmode=require",
            "names no database",
        ),
        (
            "postgres://teamgate@db.example.com/tg",
            "add ?sslmode=verify-full",
        ),
        (
            "postgres://teamgate@db.example.com/tg?sslmode=prefer",
            "use disable, require or verify-full",
        ),
        (
            "postgres://teamgate@db.example.com/tg?sslmode=require&application_name=x",
            "only sslmode and sslrootcert",
        ),
        (
            "mysql://teamgate@db.example.com/tg",
            "a file path (SQLite) or a postgres:// URL",
        ),
        (
            "postgres://teamgate@db.example.com/tg?sslmode=verify-full&sslrootcert=no-such-ca.pem",
            "is not a readable file",
        ),
    ] {
        let text = server(database, "");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{database}: {errors:?}");
        assert_eq!(errors[0].line, marked_lines(&text)[0], "{database}");
        assert!(
            errors[0].message.contains(says),
            "{database}: {}",
            errors[0].message
        );
        assert!(
            !errors[0].message.contains("hunter2"),
            "the password is repeated in the error"
        );
    }
    // The loopback may go without sslmode (plain, as a local socket would).
    let text = server("postgres://postgres@127.0.0.1/test", "").replace(&format!(" {HERE}"), "");
    let config = Config::parse(&text, &case_path()).unwrap();
    assert!(config.server.database.is_postgres());
    // A password setting with a SQLite file is a mistake, said on its own line.
    let text = server(
        "data/x.db",
        &format!("database_password_env = \"PATH\" {HERE}"),
    )
    .replacen(&format!(" {HERE}"), "", 1);
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("has no password"),
        "{}",
        errors[0].message
    );
    // Refresh re-evaluation on PostgreSQL needs the secret key that seals the tokens.
    let text = file(
        "",
        &format!("{URL}\ndatabase = \"postgres://postgres@127.0.0.1/test\""),
        "",
    )
    .replacen(
        "client_id = \"entra-client\"",
        "client_id = \"entra-client\"\nrefresh_interval_seconds = 600",
        1,
    );
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("secret_key_file"),
        "{}",
        errors[0].message
    );
    // A short secret key is refused.
    let text = file(
        "",
        &format!("{URL}\nsecret_key_file = \"example-secrets/okta-client-secret\""),
        "",
    );
    let short = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example-secrets/okta-client-secret"),
    )
    .unwrap();
    if short.trim().len() < 32 {
        let errors = errors_of(&text);
        assert!(
            errors.iter().any(|e| e.message.contains("at least 32")),
            "{errors:?}"
        );
    }
}

#[test]
fn the_login_rate_limit_and_metrics_token_are_read_from_the_file() {
    let config = Config::parse(&file("", URL, ""), &case_path()).unwrap();
    assert_eq!(config.server.login_rate_per_minute, 60);
    assert_eq!(config.server.login_rate_burst, 30);
    assert!(config.server.metrics_token.is_none());
    let text = file(
        "",
        &format!(
            "{URL}\nlogin_rate_per_minute = 0\nlogin_rate_burst = 5\nmetrics_listen = \"10.0.0.1:9100\"\nmetrics_token_file = \"example-secrets/okta-api-token\""
        ),
        "",
    );
    let config = Config::parse(&text, &case_path()).unwrap();
    assert_eq!(config.server.login_rate_per_minute, 0);
    assert_eq!(config.server.login_rate_burst, 5);
    let token = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example-secrets/okta-api-token"),
    )
    .unwrap();
    assert_eq!(
        config.server.metrics_token.as_ref().map(|t| t.expose()),
        Some(token.trim())
    );
}
