//! Roles that imply others (security case J6) and teams that belong to a scope (J7), through
//! every place a role is checked or shown: `/auth` rules and headers, the assertion's `roles`,
//! `/admin` access, `teamgate explain` (text and JSON) and the admin user page; and a team
//! binding a role outside its scope refused by `teamgate check-config` with the line and the fix.

use serde_json::Value;

use crate::admin_support::{
    config_path, demo_config, demo_sign_in, edit, fill, stderr, stdout, teamgate, write_config,
};
use crate::forward_auth_support::{PROVIDER, claims_of, signed_in, spawn, user};
use crate::helpers::{new_browser, spawn_app};

/// A custom role including others, held by a team of its own.
fn auditors(provider: &str) -> String {
    format!(
        r#"
[[role]]
name = "auditor"
includes = ["viewer", "exception-reviewer"]

[[role]]
name = "lead-auditor"
includes = ["auditor"]

[[team]]
id = "auditors"
scope = "org/acme/space/finance"
roles = [{{ scope = "org/acme/space/finance", role = "lead-auditor" }}]
groups = [{{ provider = "{provider}", id = "g-aud" }}]
"#
    )
}

#[tokio::test]
async fn case_j6_auth_and_the_assertion_hold_the_roles_a_role_includes_and_no_more() {
    let gate = spawn("", &auditors(PROVIDER)).await;
    let agent = signed_in(
        &gate,
        user("sub-una", "una@example.com", &["g-aud", "g-ops"]),
    )
    .await;
    let auth = |query: &'static str| {
        let (agent, url) = (agent.clone(), gate.url(&format!("/auth{query}")));
        async move { agent.get(&url).await.status().as_u16() }
    };
    let finance = "org/acme/space/finance/workspace/ledger";
    for (query, status) in [
        // lead-auditor includes auditor, which includes viewer and exception-reviewer.
        ("?role=lead-auditor&scope=org/acme/space/finance", 200),
        (
            "?role=auditor&scope=org/acme/space/finance/workspace/ledger",
            200,
        ),
        (
            "?role=exception-reviewer&scope=org/acme/space/finance/workspace/ledger",
            200,
        ),
        ("?role=exception-reviewer&scope=org/acme/space/infra", 403),
        // owner on org/acme (operators) includes editor and viewer everywhere beneath it...
        ("?role=editor&scope=org/acme/space/infra", 200),
        ("?role=viewer", 200),
        // ...but no specialised role, and auditor is not included by owner.
        ("?role=platform-admin", 403),
        ("?role=auditor&scope=org/acme", 403),
    ] {
        assert_eq!(auth(query).await, status, "{query} ({finance})");
    }
    let r = agent.get(&gate.url("/auth")).await;
    let roles = r.headers()["x-teamgate-roles"].to_str().unwrap().to_owned();
    assert_eq!(
        roles,
        "org/acme=editor,org/acme=owner,org/acme=viewer,\
         org/acme/space/finance=auditor,org/acme/space/finance=exception-reviewer,\
         org/acme/space/finance=lead-auditor,org/acme/space/finance=viewer"
    );
    let claims = claims_of(r.headers()["x-teamgate-assertion"].to_str().unwrap());
    assert_eq!(claims["roles"].as_array().unwrap().len(), 7);
    assert!(
        claims["roles"]
            .as_array()
            .unwrap()
            .contains(&Value::from("org/acme/space/finance=exception-reviewer"))
    );
    // The home page shows where an implied role comes from.
    let home = agent.get(&gate.url("/")).await.text().await.unwrap();
    assert!(home.contains("auditors (as lead-auditor)"), "{home}");
    assert!(home.contains("operators (as owner)"), "{home}");
}

/// The demo config with the auditors team mapped to Alice's second group, and `[admin]`
/// opened to editors of org/acme.
fn demo_with_roles() -> String {
    edit(
        &demo_config(),
        "[defaults]",
        &format!(
            "{}\n[admin]\nrole = \"editor\"\nscope = \"org/acme\"\n\n[defaults]",
            auditors("demo").replace("g-aud", "00000000-0000-0000-0000-00000000b002")
        ),
    )
}

#[tokio::test]
async fn case_j6_explain_and_the_admin_user_page_show_implied_roles_and_their_origin() {
    let app = spawn_app(&demo_with_roles()).await;
    let config = write_config(&app, "teamgate.toml", &demo_with_roles());
    assert_eq!(config, config_path(&app));
    let alice = new_browser();
    demo_sign_in(&app, &alice, "alice@example.com").await;

    let out = teamgate(&[
        "explain",
        "alice@example.com",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "owner                on org/acme                                 through platform-admins",
        "editor               on org/acme                                 through platform-admins (as owner)",
        "viewer               on org/acme                                 through platform-admins (as owner), security-viewers",
        "auditor              on org/acme/space/finance                   through auditors (as lead-auditor)",
        "exception-reviewer   on org/acme/space/finance                   through auditors (as lead-auditor)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let json = teamgate(&[
        "explain",
        "alice@example.com",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let roles = json["explanation"]["roles"].as_array().unwrap();
    let viewer = roles
        .iter()
        .find(|r| r["scope"] == "org/acme" && r["role"] == "viewer")
        .unwrap();
    assert_eq!(viewer["implied"], false, "security-viewers binds it itself");
    assert_eq!(
        viewer["origins"],
        serde_json::json!([
            {"team": "platform-admins", "through": "owner"},
            {"team": "security-viewers", "through": null}
        ])
    );
    let auditor = roles.iter().find(|r| r["role"] == "auditor").unwrap();
    assert_eq!(auditor["implied"], true);

    // `[admin] role = "editor"` on org/acme: Alice holds it only through owner, and that counts.
    let public_id = app
        .state
        .store
        .read(|c| {
            Ok::<_, teamgate::store::StoreError>(
                c.find_users("alice@example.com")?.remove(0).public_id,
            )
        })
        .await
        .unwrap();
    let page = alice
        .get(app.url(&format!("/admin/users/{public_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("(implied: platform-admins holds owner, which includes editor)"),
        "{html}"
    );
    assert!(
        html.contains("(implied: auditors holds lead-auditor, which includes exception-reviewer)"),
        "{html}"
    );
    // Bob holds editor only beneath org/acme: not on org/acme, so no admin pages.
    let bob = new_browser();
    demo_sign_in(&app, &bob, "bob@example.com").await;
    assert_eq!(
        bob.get(app.url("/admin")).send().await.unwrap().status(),
        403
    );
    // The teams page shows the team's scope.
    let teams = alice
        .get(app.url("/admin/teams"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(teams.contains("org&#x2f;acme&#x2f;space&#x2f;finance</code> <span class=\"muted\">(its role bindings stay on it or beneath it)"), "{teams}");
}

#[tokio::test]
async fn case_j7_a_team_binding_a_role_outside_its_scope_is_refused_with_the_line_and_the_fix() {
    let app = spawn_app(&demo_config()).await;
    let bad = edit(
        &demo_with_roles(),
        r#"roles = [{ scope = "org/acme/space/finance", role = "lead-auditor" }]"#,
        r#"roles = [{ scope = "org/acme/space/finance", role = "lead-auditor" },
         { scope = "org/acme", role = "viewer" }]"#,
    );
    let path = app.dir.path().join("bad.toml");
    let filled = fill(&app, &bad);
    std::fs::write(&path, &filled).unwrap();
    let line = filled
        .lines()
        .position(|l| l.trim_start() == r#"{ scope = "org/acme", role = "viewer" }]"#)
        .unwrap()
        + 1;
    let out = teamgate(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let errors = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        errors.contains(&format!(":{line}")),
        "names line {line}: {errors}"
    );
    assert!(
        errors.contains("team \"auditors\" belongs to scope org/acme/space/finance, but binds a role on org/acme, outside it"),
        "{errors}"
    );
    assert!(
        errors.contains("bind the role on org/acme/space/finance or beneath it"),
        "{errors}"
    );
    // A reload of the running server refuses it the same way and keeps the config it has.
    std::fs::write(config_path(&app), fill(&app, &bad)).unwrap();
    assert!(
        teamgate::admin::reload::reload(&app.state, "test")
            .await
            .is_err()
    );
    assert!(
        app.state
            .config
            .get()
            .team(&teamgate::domain::TeamId::parse("auditors").unwrap())
            .is_none()
    );
}
