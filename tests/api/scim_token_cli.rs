//! `teamgate scim-token create|list|revoke`: the real binary against the database of a running
//! teamgate; the printed token works on the SCIM endpoint until it is revoked.

use std::process::Command;

use crate::helpers::spawn_app;

fn teamgate(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn a_created_token_opens_scim_until_it_is_revoked_and_is_never_listed() {
    let template = crate::scim_support::config();
    let app = spawn_app(&template).await;
    let config_path = app.dir.path().join("teamgate.toml");
    std::fs::write(
        &config_path,
        template
            .replace("{PUBLIC_URL}", &app.address)
            .replace("{DB}", &app.db.setting),
    )
    .unwrap();

    let (ok, out) = teamgate(
        &config_path,
        &["scim-token", "create", "entra", "--note", "ci test"],
    );
    assert!(ok, "{out}");
    let token = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .map(|t| t.trim().to_owned())
        .expect("the token is printed once");
    let id = out
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_owned();
    let users = app.url("/scim/v2/entra/Users");
    let client = reqwest::Client::new();
    let status = |t: String| {
        let client = client.clone();
        let users = users.clone();
        async move {
            client
                .get(&users)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(token.clone()).await, 200);

    let (ok, listed) = teamgate(&config_path, &["scim-token", "list", "entra"]);
    assert!(
        ok && listed.contains(&id) && listed.contains("live") && listed.contains("(ci test)"),
        "{listed}"
    );
    assert!(!listed.contains(&token), "list never shows a token");

    let (ok, out) = teamgate(&config_path, &["scim-token", "revoke", "entra", &id]);
    assert!(ok, "{out}");
    assert_eq!(status(token).await, 401);
    let (_, listed) = teamgate(&config_path, &["scim-token", "list", "entra"]);
    assert!(listed.contains("revoked"), "{listed}");

    let (ok, out) = teamgate(&config_path, &["scim-token", "create", "nosuch"]);
    assert!(!ok, "an unknown provider is an error: {out}");
}
