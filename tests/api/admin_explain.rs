//! `teamgate explain` and `teamgate audit`, run as the real binary, for a demo user holding
//! memberships from three sources at once (config, then SCIM, then claims after a reload maps
//! her group) and one holding the default team.

use serde_json::{Value, json};

use crate::admin_support::{
    config_path, demo_config, edit, sign_in_all, stderr, stdout, teamgate, write_config,
};
use crate::helpers::spawn_app;

const CAROL_GROUP: &str = "00000000-0000-0000-0000-0000000ffff0";
/// The group platform-admins maps; pushed over SCIM here.
const ADMINS_GROUP: &str = "00000000-0000-0000-0000-00000000a001";

/// The demo config with SCIM enabled on the demo provider.
fn scim_config(config: &str) -> String {
    edit(
        config,
        "kind = \"demo\"\n",
        "kind = \"demo\"\nscim = { enabled = true }\n",
    )
}

/// Provision `email` over SCIM, linked to their login by externalId = login subject, as the
/// only member of a group whose externalId is `group`.
async fn scim_push(app: &crate::helpers::TestApp, email: &'static str, group: &str) {
    let config = app.state.config.get();
    let token = teamgate::provisioning::tokens::create(
        &app.state.store,
        &app.state.clock,
        &config,
        "demo",
        None,
        30,
        None,
    )
    .await
    .unwrap();
    let token = token.token.expose().to_owned();
    let subject = app
        .state
        .store
        .read(move |c| Ok::<_, teamgate::store::StoreError>(c.find_users(email)?.remove(0).subject))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(app.url(&format!("/scim/v2/demo{path}")))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let user = post(
        "/Users",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": email, "externalId": subject, "active": true,
        }),
    )
    .await
    .unwrap();
    assert_eq!(user.status(), 201);
    let user: Value = user.json().await.unwrap();
    let created = post(
        "/Groups",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Admins", "externalId": group, "members": [{ "value": user["id"] }],
        }),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
}

/// The demo config with Carol's group mapped to Security Viewers.
fn mapped_config() -> String {
    edit(
        &demo_config(),
        r#"groups = [{ provider = "demo", id = "00000000-0000-0000-0000-00000000b002" }]"#,
        r#"groups = [{ provider = "demo", id = "00000000-0000-0000-0000-00000000b002" },
          { provider = "demo", id = "00000000-0000-0000-0000-0000000ffff0" }]"#,
    )
}

fn explain(config: &std::path::Path, user: &str) -> (String, Value) {
    let out = teamgate(&["explain", user, "--config", config.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "explain {user}: {}",
        stderr(&out)
    );
    let json = teamgate(&[
        "explain",
        user,
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(
        json.status.code(),
        Some(0),
        "explain --json {user}: {}",
        stderr(&json)
    );
    (stdout(&out), serde_json::from_slice(&json.stdout).unwrap())
}

fn grants(json: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for team in json["explanation"]["teams"].as_array().unwrap() {
        for g in team["grants"].as_array().unwrap() {
            out.push((
                team["id"].as_str().unwrap().to_owned(),
                g["source"].as_str().unwrap().to_owned(),
                g["group"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    out
}

fn audit(config: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["audit", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = teamgate(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "audit {args:?}: {}",
        stderr(&out)
    );
    stdout(&out)
}

#[tokio::test]
async fn explain_and_audit_show_claims_scim_config_and_default_memberships_with_their_reasons() {
    let app = spawn_app(&scim_config(&demo_config())).await;
    let config = write_config(&app, "teamgate.toml", &scim_config(&demo_config()));
    assert_eq!(config, config_path(&app));
    sign_in_all(&app, &["carol@example.com", "dave@example.com"]).await;

    // Carol: a config member of infra-editors; her only group maps to nothing.
    let (text, json) = explain(&config, "carol@example.com");
    assert_eq!(
        grants(&json),
        [("infra-editors".into(), "config".into(), "".into())]
    );
    assert!(
        text.contains("config   the user is named in this team's members in the config file"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Groups that map to nothing:\n  claims   {CAROL_GROUP}"
        )),
        "{text}"
    );
    assert_eq!(
        json["explanation"]["unmapped_groups"][0]["group"],
        CAROL_GROUP
    );
    assert!(
        text.contains("exception-reviewer"),
        "roles of infra-editors: {text}"
    );

    // Dave: no groups at all, so the default team.
    let (text, json) = explain(&config, "dave@example.com");
    assert_eq!(
        grants(&json),
        [("everyone".into(), "default".into(), "".into())]
    );
    assert!(
        text.contains("defaults.teams_without_groups applies"),
        "{text}"
    );
    assert!(text.contains("viewer               on org/acme"), "{text}");

    // The IdP provisions Carol over SCIM into the group platform-admins maps.
    scim_push(&app, "carol@example.com", ADMINS_GROUP).await;
    assert!(teamgate::metrics::scim_activity()["demo"].requests >= 2);

    // Map Carol's login group and apply it: she now holds a claims membership too.
    std::fs::write(
        &config,
        crate::admin_support::fill(&app, &scim_config(&mapped_config())),
    )
    .unwrap();
    teamgate::admin::reload::reload(&app.state, "test")
        .await
        .unwrap();
    let (text, json) = explain(&config, "carol@example.com");
    assert_eq!(
        grants(&json),
        [
            ("infra-editors".into(), "config".into(), "".into()),
            ("platform-admins".into(), "scim".into(), ADMINS_GROUP.into()),
            (
                "security-viewers".into(),
                "claims".into(),
                CAROL_GROUP.into()
            ),
        ]
    );
    assert!(
        text.contains(&format!(
            "claims   group {CAROL_GROUP} from the user's last sign-in maps to this team"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "mapping: demo group {CAROL_GROUP} -> team security-viewers"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "scim     SCIM group {ADMINS_GROUP} maps to this team"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("SCIM groups: {ADMINS_GROUP}")),
        "{text}"
    );
    assert!(text.contains("owner                on org/acme"), "{text}");
    assert!(text.contains("last confirmed"), "{text}");
    assert!(
        text.contains("through infra-editors, security-viewers"),
        "editor on infra from both: {text}"
    );
    assert!(
        text.contains("Groups that map to nothing:\n  (none)"),
        "{text}"
    );
    assert_eq!(json["explanation"]["pending"]["add"], Value::Array(vec![]));

    // The same user by public id and by numeric id.
    let public_id = json["explanation"]["user"]["public_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (by_id, _) = explain(&config, &public_id);
    assert_eq!(by_id, text);
    // Carol signed in first, so she is user 1.
    let (by_number, _) = explain(&config, "1");
    assert_eq!(by_number, text);

    // The audit log, by user, source, team, trigger and time.
    let carol = audit(&config, &["--user", "carol@example.com"]);
    assert!(
        carol.contains("membership.add")
            && carol.contains("infra-editors")
            && carol.contains("security-viewers"),
        "{carol}"
    );
    assert!(!carol.contains("dave@example.com"), "{carol}");
    let scim = audit(&config, &["--source", "scim", "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&scim).unwrap();
    assert_eq!(rows.len(), 1, "{scim}");
    assert_eq!(rows[0]["team"], "platform-admins");
    assert_eq!(rows[0]["trigger"], "scim");
    let claims = audit(&config, &["--source", "claims"]);
    assert!(
        claims.contains(CAROL_GROUP) && !claims.contains("infra-editors"),
        "{claims}"
    );
    let default = audit(&config, &["--source", "default", "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&default).unwrap();
    assert_eq!(rows.len(), 1, "{default}");
    assert_eq!(rows[0]["user_label"], "dave@example.com");
    assert_eq!(rows[0]["team"], "everyone");
    assert_eq!(rows[0]["trigger"], "login");
    let by_reload = audit(
        &config,
        &[
            "--trigger",
            "config",
            "--team",
            "security-viewers",
            "--json",
        ],
    );
    let rows: Vec<Value> = serde_json::from_str(&by_reload).unwrap();
    // The team's creation at start, then Carol's membership from the reload.
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["team.add", "membership.add"], "{by_reload}");
    assert_eq!(rows[1]["user_label"], "carol@example.com");
    assert!(
        rows[1]["detail"]
            .as_str()
            .unwrap()
            .contains("teamgate.toml"),
        "names the config: {by_reload}"
    );
    assert!(audit(&config, &["--since", "1h", "--user", "dave@example.com"]).contains("everyone"));
    assert!(audit(&config, &["--until", "2000-01-01"]).contains("(no audit rows match)"));
}

#[tokio::test]
async fn explain_of_an_unknown_user_or_a_bad_audit_filter_exits_1() {
    let app = spawn_app(&demo_config()).await;
    let config = write_config(&app, "teamgate.toml", &demo_config());
    let out = teamgate(&[
        "explain",
        "nobody@example.com",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no user matches \"nobody@example.com\""),
        "{}",
        stderr(&out)
    );
    let out = teamgate(&[
        "audit",
        "--since",
        "last tuesday",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not a time"), "{}", stderr(&out));
    let out = teamgate(&[
        "audit",
        "--source",
        "ldap",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}
