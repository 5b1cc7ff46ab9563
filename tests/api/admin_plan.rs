//! `teamgate plan --config NEW` run as the real binary against a live app's database: a table
//! of config changes, each with its expected difference and exit status (0 no change, 2
//! changes, 1 error), and proof that planning changes nothing in the database.

use serde_json::Value;

use crate::admin_support::{
    demo_config, dump, edit, sign_in_all, stderr, stdout, teamgate, write_config,
};
use crate::helpers::spawn_app;

const DEMO_USERS: [&str; 4] = [
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
];

const CAROL_GROUP: &str = "00000000-0000-0000-0000-0000000ffff0";
const BOB_GROUP: &str = "00000000-0000-0000-0000-00000000c003";

struct Case {
    name: &'static str,
    change: fn(&str) -> String,
    /// Lines the text plan must contain.
    expect: &'static [&'static str],
    /// (JSON pointer, value) pairs the `--json` plan must hold.
    json: &'static [(&'static str, &'static str)],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "add mapping",
            change: |c| {
                edit(
                    c,
                    r#"groups = [{ provider = "demo", id = "00000000-0000-0000-0000-00000000b002" }]"#,
                    r#"groups = [{ provider = "demo", id = "00000000-0000-0000-0000-00000000b002" },
          { provider = "demo", id = "00000000-0000-0000-0000-0000000ffff0" }]"#,
                )
            },
            expect: &[
                "+ mapping demo group 00000000-0000-0000-0000-0000000ffff0 -> team security-viewers",
                "  carol@example.com",
                "+ team security-viewers (claims group 00000000-0000-0000-0000-0000000ffff0): mapping added",
                "+ role viewer on org/acme",
            ],
            json: &[
                ("/plan/config/mappings_added/0/group", CAROL_GROUP),
                ("/plan/users/0/user", "carol@example.com"),
                ("/plan/users/0/add/0/reason/kind", "mapping_added"),
            ],
        },
        Case {
            name: "remove mapping",
            change: |c| {
                edit(
                    c,
                    r#"groups = [{ provider = "demo", id = "00000000-0000-0000-0000-00000000c003" }]"#,
                    "groups = []",
                )
            },
            expect: &[
                "- mapping demo group 00000000-0000-0000-0000-00000000c003 -> team infra-editors",
                "  bob@example.com",
                "- team infra-editors (claims group 00000000-0000-0000-0000-00000000c003): mapping removed",
                "+ team everyone (default): none of the user's groups maps to a team: default team",
            ],
            json: &[
                ("/plan/users/0/user", "bob@example.com"),
                ("/plan/users/0/remove/0/reason/kind", "mapping_removed"),
                ("/plan/users/0/remove/0/via", BOB_GROUP),
                ("/plan/users/0/add/0/team", "everyone"),
            ],
        },
        Case {
            name: "rename team",
            change: |c| {
                edit(
                    c,
                    r#"name = "Security Viewers""#,
                    r#"name = "Security Readers""#,
                )
            },
            expect: &[
                r#"~ team security-viewers renamed "Security Viewers" -> "Security Readers""#,
            ],
            json: &[
                ("/plan/config/teams_renamed/0/to", "Security Readers"),
                ("/changes", "true"),
            ],
        },
        Case {
            name: "change role",
            change: |c| {
                edit(
                    c,
                    r#"roles = [{ scope = "org/acme", role = "viewer" }]

[defaults]"#,
                    r#"roles = [{ scope = "org/acme", role = "editor" }]

[defaults]"#,
                )
            },
            expect: &[
                "+ role editor on org/acme for team everyone",
                "- role viewer on org/acme for team everyone",
                "  dave@example.com",
                "    + role editor on org/acme",
            ],
            json: &[
                ("/plan/config/bindings_added/0/role", "editor"),
                ("/plan/users/0/user", "dave@example.com"),
                ("/plan/users/0/roles_added/0/role", "editor"),
            ],
        },
        Case {
            name: "remove team",
            change: |c| {
                edit(
                    c,
                    r#"[[team]]
id   = "platform-admins"
name = "Platform Admins"
roles  = [{ scope = "org/acme", role = "owner" }]
groups = [{ provider = "demo", id = "00000000-0000-0000-0000-00000000a001" }]
"#,
                    "",
                )
            },
            expect: &[
                r#"- team platform-admins "Platform Admins""#,
                "- role owner on org/acme for team platform-admins",
                "  alice@example.com",
                "- team platform-admins (claims group 00000000-0000-0000-0000-00000000a001): the team is removed from the config",
                "- role owner on org/acme",
            ],
            json: &[
                ("/plan/config/teams_removed/0/id", "platform-admins"),
                ("/plan/users/0/remove/0/reason/kind", "team_removed"),
            ],
        },
    ]
}

fn json_at(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => panic!("no {pointer} in {v:#}"),
    }
}

#[tokio::test]
async fn plan_shows_each_config_change_with_exit_status_2_and_changes_nothing_in_the_database() {
    let config = demo_config();
    let app = spawn_app(&config).await;
    sign_in_all(&app, &DEMO_USERS).await;
    let before = dump(&app).await;

    let same = write_config(&app, "same.toml", &config);
    let out = teamgate(&["plan", "--config", same.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "unchanged config: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));

    for case in cases() {
        let path = write_config(&app, "new.toml", &(case.change)(&config));
        let out = teamgate(&["plan", "--config", path.to_str().unwrap()]);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {text}{}",
            case.name,
            stderr(&out)
        );
        for line in case.expect {
            assert!(
                text.contains(line),
                "{}: expected {line:?} in:\n{text}",
                case.name
            );
        }
        let out = teamgate(&["plan", "--json", "--config", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{} --json", case.name);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        for (pointer, value) in case.json {
            assert_eq!(json_at(&json, pointer), *value, "{}: {pointer}", case.name);
        }
    }
    assert_eq!(
        dump(&app).await,
        before,
        "plan must not change the database"
    );
}

#[tokio::test]
async fn plan_of_an_invalid_file_exits_1_with_the_errors_and_no_plan() {
    let app = spawn_app(&demo_config()).await;
    let path = write_config(
        &app,
        "bad.toml",
        &edit(&demo_config(), r#"role = "owner""#, r#"role = "overlord""#),
    );
    let out = teamgate(&["plan", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"overlord\" is not a built-in role"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[tokio::test]
async fn plan_against_a_missing_database_lists_everything_as_new() {
    let app = spawn_app(&demo_config()).await;
    if !crate::helpers::sqlite_only(
        &app.state,
        "a missing SQLite file; a PostgreSQL database is made by its administrator",
    ) {
        return;
    }
    let text = edit(&demo_config(), "{DB}", "{DB}.absent");
    let path = write_config(&app, "fresh.toml", &text);
    let out = teamgate(&["plan", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(r#"+ team platform-admins "Platform Admins""#),
        "{}",
        stdout(&out)
    );
    assert!(
        !app.dir.path().join("teamgate.db.absent").exists(),
        "plan must not create a database"
    );
}
