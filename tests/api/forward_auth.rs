//! Forward-auth and the signed assertion, against the real teamgate and the test IdP:
//! security-cases sections D (sessions, 47-53) and E (forward-auth and assertion, 55-60), one or
//! more tests per case, named with its number. The real-nginx and Chromium runs are in
//! `forward_auth_e2e`.

use std::str::FromStr;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Response;
use serde_json::{Value, json};
use teamgate::downstream::assertion::TYP;
use teamgate::store::StoreError;
use teamgate::store::sessions::DbSessionStore;
use tower_sessions::SessionStore;
use tower_sessions::session::Id;

use crate::forward_auth_support::{
    Agent, Gate, PROVIDER, claims_of, sign_in, signed_in, spawn, spawn_on, spawn_scim, tamper,
    user, verify,
};

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn alice() -> crate::test_idp::LoginSpec {
    user("u-alice", "alice@example.com", &["g-eng"])
}

fn bob() -> crate::test_idp::LoginSpec {
    user("u-bob", "bob@example.com", &["g-ops"])
}

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Names of the identity headers in a response.
fn identity_headers(r: &Response) -> Vec<String> {
    r.headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("x-teamgate-"))
        .collect()
}

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// `/auth` with only the given cookie, as a replaying attacker would send it.
async fn auth_with_cookie(gate: &Gate, name: &str, value: &str) -> Response {
    reqwest::Client::new()
        .get(gate.url("/auth"))
        .header("cookie", format!("{name}={value}"))
        .send()
        .await
        .unwrap()
}

async fn auth(agent: &Agent, gate: &Gate, query: &str) -> Response {
    agent.get(&gate.url(&format!("/auth{query}"))).await
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---- E. Forward-auth ----

#[tokio::test]
async fn case_55_no_session_gives_401_without_identity_headers() {
    let gate = spawn("", "").await;
    for accept in ["*/*", HTML] {
        let r = Agent::new()
            .client
            .get(gate.url("/auth"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "Accept: {accept}");
        assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
        assert!(identity_headers(&r).is_empty());
        assert_eq!(r.text().await.unwrap(), "not signed in\n");
    }
}

#[tokio::test]
async fn case_55_a_valid_session_gives_200_with_the_identity_headers_from_the_session() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    let me = gate.user("u-alice").await;
    let r = auth(&agent, &gate, "").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(header(&r, "x-teamgate-user"), Some(me.public_id.clone()));
    assert_eq!(
        header(&r, "x-teamgate-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        header(&r, "x-teamgate-name").as_deref(),
        Some("alice Example")
    );
    assert_eq!(
        header(&r, "x-teamgate-teams").as_deref(),
        Some("engineers,everyone")
    );
    assert_eq!(
        header(&r, "x-teamgate-roles").as_deref(),
        Some("org/acme=viewer,org/acme/space/infra=editor,org/acme/space/infra=viewer")
    );
    let token = header(&r, "x-teamgate-assertion").unwrap();
    let claims = verify(
        &token,
        &gate.url("/.well-known/jwks.json"),
        &gate.public_url,
        &gate.public_url,
    )
    .await
    .unwrap();
    assert_eq!(claims["sub"], json!(me.public_id));
    // A valid session costs no session write: nothing to set.
    assert!(set_cookies(&r).is_empty(), "{:?}", set_cookies(&r));
    assert_eq!(r.text().await.unwrap(), "");
}

#[tokio::test]
async fn case_55_an_unauthenticated_browser_in_redirect_mode_is_sent_to_login() {
    let gate = spawn("", "").await;
    let r = Agent::new()
        .client
        .get(gate.url("/auth?redirect=1"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        header(&r, "location"),
        Some(format!("{}/login", gate.public_url))
    );
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    // An API client in the same mode gets 401: a redirect to an HTML login helps no script.
    let r = Agent::new().get(&gate.url("/auth?redirect=1")).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn case_55_a_user_outside_the_required_teams_gets_403() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    let r = auth(&agent, &gate, "?team=operators").await;
    assert_eq!(r.status(), 403);
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    assert!(identity_headers(&r).is_empty());
    let body = r.text().await.unwrap();
    assert!(
        body.contains("alice@example.com") && body.contains("operators"),
        "{body}"
    );
    // Any one of the listed teams is enough.
    assert_eq!(
        auth(&agent, &gate, "?team=operators,engineers")
            .await
            .status(),
        200
    );
    assert_eq!(auth(&agent, &gate, "?team=engineers").await.status(), 200);
}

#[tokio::test]
async fn case_55_a_refused_browser_sees_a_readable_page_with_a_request_id() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    let r = agent
        .client
        .get(gate.url("/auth?team=operators"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(header(&r, "content-type").unwrap().starts_with("text/html"));
    let request_id = header(&r, "x-request-id").unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("Access refused"), "{body}");
    assert!(
        body.contains("only for members of the team: operators"),
        "{body}"
    );
    assert!(body.contains(&request_id), "{body}");
}

#[tokio::test]
async fn case_55_a_role_is_required_on_the_scope_or_above_it() {
    let gate = spawn("", "").await;
    let alice = signed_in(&gate, alice()).await;
    let bob = signed_in(&gate, bob()).await;
    let cases = [
        (&alice, "?role=editor&scope=org/acme/space/infra", 200),
        // Held on a scope above the one asked for.
        (
            &alice,
            "?role=editor&scope=org/acme/space/infra/workspace/prod",
            200,
        ),
        (&alice, "?role=viewer&scope=org/acme/space/web", 200),
        // Held only beneath the scope asked for.
        (&alice, "?role=editor&scope=org/acme", 403),
        (&alice, "?role=editor&scope=org/other", 403),
        (&alice, "?role=owner", 403),
        (&alice, "?role=owner,editor", 200),
        (&bob, "?role=owner&scope=org/acme/space/infra", 200),
        // Owner includes editor and viewer (security case J6); the specialised roles stand alone.
        (&bob, "?role=editor&scope=org/acme/space/infra", 200),
        (&bob, "?role=viewer&scope=org/acme", 200),
        (&bob, "?role=platform-admin", 403),
        (&alice, "?role=owner&scope=org/acme/space/infra", 403),
        // Team and role together: both must hold.
        (&alice, "?team=engineers&role=owner", 403),
        (&bob, "?team=operators&role=owner&scope=org/acme", 200),
    ];
    for (agent, query, status) in cases {
        assert_eq!(auth(agent, &gate, query).await.status(), status, "{query}");
    }
}

#[tokio::test]
async fn case_55_an_internal_error_gives_500_never_2xx() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    // The signing key made at start, corrupted in the database (a hand-edited or broken row).
    crate::helpers::sql_exec(
        &gate.state,
        "UPDATE signing_keys SET private_der = ?1 WHERE retired_at IS NULL",
        &[vec![0x30u8, 0x03, 0x02, 0x01, 0x00].into()],
    )
    .await;
    let r = auth(&agent, &gate, "").await;
    assert_eq!(r.status(), 500);
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    assert!(identity_headers(&r).is_empty());
    let body = r.text().await.unwrap();
    assert!(
        body.starts_with("teamgate could not decide; request id "),
        "{body}"
    );
    assert!(!body.contains("sign"), "no internal detail in {body}");
    let r = agent
        .client
        .get(gate.url("/auth"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("Something went wrong"));
}

#[tokio::test]
async fn case_55_a_route_rule_teamgate_cannot_understand_gives_500_never_2xx() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    for query in [
        "?team=no-such-team",
        "?tema=engineers",
        "?team=",
        "?team=engineers,",
        "?role=emperor",
        "?scope=org/acme",
        "?scope=not a scope&role=editor",
        "?aud=https://unknown.example.com",
        "?redirect=maybe",
    ] {
        let r = auth(&agent, &gate, query).await;
        assert_eq!(r.status(), 500, "{query}");
        assert!(identity_headers(&r).is_empty(), "{query}");
    }
}

#[tokio::test]
async fn case_56_forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let gate = spawn(
        r#"trusted_proxies = ["192.0.2.10"]
allowed_redirect_origins = ["https://app.example.com"]"#,
        "",
    )
    .await;
    for (name, value) in [("x-forwarded-uri", "/x?y=1"), ("x-original-uri", "/x?y=1")] {
        let r = Agent::new()
            .client
            .get(gate.url("/auth?redirect=1"))
            .header("accept", HTML)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com")
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(
            header(&r, "location"),
            Some(format!("{}/login", gate.public_url)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn case_56_forwarded_headers_from_a_trusted_proxy_set_the_return_url_if_it_is_safe() {
    let gate = spawn(
        r#"trusted_proxies = ["127.0.0.1"]
allowed_redirect_origins = ["https://app.example.com"]"#,
        "",
    )
    .await;
    let login = |forwarded_host: &str, uri: &str| {
        Agent::new()
            .client
            .get(gate.url("/auth?redirect=1"))
            .header("accept", HTML)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", forwarded_host)
            .header("x-forwarded-uri", uri)
            .send()
    };
    let r = login("app.example.com", "/x?y=1").await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        header(&r, "location"),
        Some(format!(
            "{}/login?rd=https%3A%2F%2Fapp.example.com%2Fx%3Fy%3D1",
            gate.public_url
        ))
    );
    // A trusted proxy still cannot send the browser anywhere not allowed (no open redirect).
    for (host, uri) in [
        ("evil.example.com", "/x"),
        ("app.example.com@evil.example.com", "/x"),
        ("app.example.com:8443", "/x"),
        ("app.example.com", "x"),
    ] {
        let r = login(host, uri).await.unwrap();
        assert_eq!(
            header(&r, "location"),
            Some(format!("{}/login", gate.public_url)),
            "{host} {uri}"
        );
    }
    // Without a forwarded host the URI alone is the return path, and a protocol-relative
    // one is refused; with a host it is only a path on that host.
    let r = Agent::new()
        .client
        .get(gate.url("/auth?redirect=1"))
        .header("accept", HTML)
        .header("x-forwarded-uri", "//evil.example.com/x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&r, "location"),
        Some(format!("{}/login", gate.public_url))
    );
    let r = login("app.example.com", "//evil.example.com/x")
        .await
        .unwrap();
    assert_eq!(
        header(&r, "location"),
        Some(format!(
            "{}/login?rd=https%3A%2F%2Fapp.example.com%2F%2Fevil.example.com%2Fx",
            gate.public_url
        ))
    );
}

#[tokio::test]
async fn case_57_the_request_query_or_fragment_cannot_widen_a_route_rule() {
    let gate = spawn(r#"trusted_proxies = ["127.0.0.1"]"#, "").await;
    let agent = signed_in(&gate, alice()).await;
    for uri in [
        "/admin?team=engineers",
        "/admin#team=engineers",
        "/admin?x=1&team=engineers#?team=engineers",
    ] {
        let r = agent
            .client
            .get(gate.url("/auth?team=operators"))
            .header("x-forwarded-uri", uri)
            .header("x-original-uri", uri)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{uri}");
    }
    // Nor can a second `team` appended to the route's own query.
    assert_eq!(
        auth(&agent, &gate, "?team=operators&team=engineers")
            .await
            .status(),
        500
    );
}

#[tokio::test]
async fn case_58_identity_headers_sent_by_the_client_are_ignored() {
    let gate = spawn("", "").await;
    let forged = [
        ("x-teamgate-user", "admin"),
        ("x-teamgate-email", "root@example.com"),
        ("x-teamgate-teams", "operators"),
        ("x-teamgate-roles", "org/acme=owner"),
        ("x-teamgate-assertion", "forged"),
        ("x-auth-request-user", "bob"),
        ("x-forwarded-user", "bob"),
    ];
    let forge = |agent: &Agent, path: &str| {
        let mut request = agent.client.get(gate.url(path));
        for (name, value) in forged {
            request = request.header(name, value);
        }
        request.send()
    };
    let anonymous = Agent::new();
    let r = forge(&anonymous, "/auth").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(identity_headers(&r).is_empty());

    let agent = signed_in(&gate, alice()).await;
    let me = gate.user("u-alice").await;
    let r = forge(&agent, "/auth").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-teamgate-user"), Some(me.public_id));
    assert_eq!(
        header(&r, "x-teamgate-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        header(&r, "x-teamgate-teams").as_deref(),
        Some("engineers,everyone")
    );
    assert_ne!(
        header(&r, "x-teamgate-assertion").as_deref(),
        Some("forged")
    );
    assert!(header(&r, "x-auth-request-user").is_none());
    assert!(header(&r, "x-forwarded-user").is_none());
    assert_eq!(
        forge(&agent, "/auth?team=operators")
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test]
async fn case_58_configured_header_names_carry_the_session_values_and_every_one_is_sent() {
    let gate = spawn(
        "",
        r#"[forward_auth.headers]
user = "X-Remote-User"
email = "X-Remote-Email""#,
    )
    .await;
    // A user without a name: the header is still sent, empty, so that a proxy which copies
    // only the headers present cannot let a forged one through.
    let agent = signed_in(&gate, {
        let mut spec = alice();
        spec.name = None;
        spec
    })
    .await;
    let r = agent
        .client
        .get(gate.url("/auth"))
        .header("x-remote-user", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-remote-user"),
        Some(gate.user("u-alice").await.public_id)
    );
    assert_eq!(
        header(&r, "x-remote-email").as_deref(),
        Some("alice@example.com")
    );
    assert!(header(&r, "x-teamgate-user").is_none());
    assert_eq!(header(&r, "x-teamgate-name").as_deref(), Some(""));
}

#[tokio::test]
async fn case_59_the_assertion_is_es256_explicitly_typed_with_a_kid_and_short_lived() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    let me = gate.user("u-alice").await;
    let r = auth(&agent, &gate, "").await;
    let token = header(&r, "x-teamgate-assertion").unwrap();
    let head = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(head.alg, Algorithm::ES256);
    assert_eq!(head.typ.as_deref(), Some(TYP));
    let jwks: Value = reqwest::get(gate.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let published = &jwks["keys"][0];
    assert_eq!(published["kid"], json!(head.kid.unwrap()));
    for (k, v) in [
        ("kty", "EC"),
        ("crv", "P-256"),
        ("alg", "ES256"),
        ("use", "sig"),
    ] {
        assert_eq!(published[k], json!(v), "{k}");
    }
    let claims = claims_of(&token);
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    // Compact: resolved teams and roles; the IdP's raw group list never appears.
    assert_eq!(
        names,
        [
            "aud",
            "email",
            "email_verified",
            "exp",
            "iat",
            "iss",
            "jti",
            "name",
            "roles",
            "sub",
            "teams"
        ]
    );
    assert_eq!(claims["email_verified"], json!(true));
    assert_eq!(claims["iss"], json!(gate.public_url));
    assert_eq!(claims["aud"], json!(gate.public_url));
    assert_eq!(claims["sub"], json!(me.public_id));
    assert_eq!(claims["teams"], json!(["engineers", "everyone"]));
    assert_eq!(
        claims["roles"],
        json!([
            "org/acme=viewer",
            "org/acme/space/infra=editor",
            "org/acme/space/infra=viewer"
        ])
    );
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 120, "the default lifetime");
    assert!((claims["iat"].as_i64().unwrap() - now()).abs() <= 5);

    let jwks_url = gate.url("/.well-known/jwks.json");
    verify(&token, &jwks_url, &gate.public_url, &gate.public_url)
        .await
        .unwrap();
    let err = verify(
        &tamper(&token),
        &jwks_url,
        &gate.public_url,
        &gate.public_url,
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("InvalidSignature") || err.contains("signature"),
        "{err}"
    );
}

#[tokio::test]
async fn case_59_an_assertion_lifetime_over_five_minutes_is_refused_by_the_config() {
    let idp = crate::test_idp::TestIdp::start().await;
    let text = crate::forward_auth_support::config(
        &idp,
        "/dev/null",
        "",
        "[forward_auth]\nassertion_ttl_seconds = 301",
    )
    .replace("{PUBLIC_URL}", "http://127.0.0.1:1")
    .replace("{DB}", "/nonexistent/x.db");
    let errors =
        teamgate::config::Config::parse(&text, std::path::Path::new("t.toml")).unwrap_err();
    assert!(
        errors
            .to_string()
            .contains("assertion_ttl_seconds must be 10 to 300"),
        "{errors}"
    );
}

#[tokio::test]
async fn case_59_app_b_rejects_the_assertion_made_for_app_a() {
    let gate = spawn(
        r#"allowed_redirect_origins = ["https://a.example.com", "https://b.example.com"]"#,
        "",
    )
    .await;
    let agent = signed_in(&gate, alice()).await;
    let jwks = gate.url("/.well-known/jwks.json");
    let for_a = header(
        &auth(&agent, &gate, "?aud=https://a.example.com").await,
        "x-teamgate-assertion",
    )
    .unwrap();
    let for_b = header(
        &auth(&agent, &gate, "?aud=https://b.example.com").await,
        "x-teamgate-assertion",
    )
    .unwrap();
    verify(&for_a, &jwks, &gate.public_url, "https://a.example.com")
        .await
        .unwrap();
    verify(&for_b, &jwks, &gate.public_url, "https://b.example.com")
        .await
        .unwrap();
    let err = verify(&for_a, &jwks, &gate.public_url, "https://b.example.com")
        .await
        .unwrap_err();
    assert!(err.contains("InvalidAudience"), "{err}");
    let err = verify(&for_b, &jwks, &gate.public_url, "https://a.example.com")
        .await
        .unwrap_err();
    assert!(err.contains("InvalidAudience"), "{err}");
}

#[tokio::test]
async fn case_59_the_assertion_is_signed_once_and_served_from_the_cache() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    let first = header(&auth(&agent, &gate, "").await, "x-teamgate-assertion").unwrap();
    let second = header(
        &auth(&agent, &gate, "?team=engineers").await,
        "x-teamgate-assertion",
    )
    .unwrap();
    assert_eq!(
        first, second,
        "the same user and audience reuse the signed assertion"
    );
    // Another session of the same user shares it; another user does not.
    let again = signed_in(&gate, alice()).await;
    assert_eq!(
        header(&auth(&again, &gate, "").await, "x-teamgate-assertion").unwrap(),
        first
    );
    let bob = signed_in(&gate, bob()).await;
    assert_ne!(
        header(&auth(&bob, &gate, "").await, "x-teamgate-assertion").unwrap(),
        first
    );
}

#[tokio::test]
async fn case_59_after_a_rotation_the_jwks_publishes_the_old_and_the_new_key() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    let jwks_url = gate.url("/.well-known/jwks.json");
    let token = header(&auth(&agent, &gate, "").await, "x-teamgate-assertion").unwrap();
    let old_kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();

    let rotation = teamgate::downstream::rotate(&gate.state.store, &gate.state.clock)
        .await
        .unwrap();
    assert_eq!(rotation.previous_kid.as_deref(), Some(old_kid.as_str()));
    let window = rotation.previous_published_until - now();
    assert!(
        window >= 300 + 60,
        "the old key outlives its last assertion: {window} s"
    );

    let jwks: Value = reqwest::get(&jwks_url).await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [rotation.new_kid.as_str(), old_kid.as_str()]);
    // An assertion signed before the rotation still verifies.
    verify(&token, &jwks_url, &gate.public_url, &gate.public_url)
        .await
        .unwrap();
}

#[tokio::test]
async fn case_59_teamgate_keys_rotate_rotates_the_key_of_a_configured_database() {
    let gate = spawn("", "").await;
    // The server makes its first key on first use.
    let before: Value = reqwest::get(gate.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = before["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);

    let dir = gate.dir.path();
    let secret = dir.join("client-secret");
    let text =
        crate::forward_auth_support::config(&gate.idp, &secret.display().to_string(), "", "")
            .replace("{PUBLIC_URL}", &gate.public_url)
            .replace("{DB}", &gate.db.setting);
    let config_path = dir.join("teamgate.toml");
    std::fs::write(&config_path, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["keys", "rotate", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("previous key {first} stays published")),
        "{stdout}"
    );

    let after: Value = reqwest::get(gate.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[1], first);
    assert!(
        stdout.contains(&format!("new signing key {}", kids[0])),
        "{stdout}"
    );
}

/// Sign `claims` with teamgate's current private key, as a forger who had it would: what the
/// app-side checks must still catch when the signature itself is fine.
async fn sign_with_teamgate_key(gate: &Gate, header: Header, claims: &Value) -> String {
    let key = gate
        .state
        .store
        .read(|tx| {
            let keys = tx.published_keys(now())?;
            Ok::<_, StoreError>(keys.into_iter().find(|k| k.retired_at.is_none()))
        })
        .await
        .unwrap()
        .unwrap();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&key.private_der)).unwrap()
}

#[tokio::test]
async fn case_60_missing_or_wrong_iss_or_aud_fail_once_the_validation_asks_for_them() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    let genuine = header(&auth(&agent, &gate, "").await, "x-teamgate-assertion").unwrap();
    let jwks = gate.url("/.well-known/jwks.json");
    let iss = gate.public_url.clone();
    verify(&genuine, &jwks, &iss, &iss).await.unwrap();

    let base = claims_of(&genuine);
    let kid = jsonwebtoken::decode_header(&genuine).unwrap().kid;
    let typed = || {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some(TYP.into());
        h.kid = kid.clone();
        h
    };
    let with = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = base.as_object().unwrap().clone();
        change(&mut c);
        Value::Object(c)
    };
    let cases: Vec<(&str, Value)> = vec![
        ("missing iss", with(&|c| drop(c.remove("iss")))),
        (
            "wrong iss",
            with(&|c| drop(c.insert("iss".into(), json!("https://evil.example.com")))),
        ),
        ("missing aud", with(&|c| drop(c.remove("aud")))),
        (
            "wrong aud",
            with(&|c| drop(c.insert("aud".into(), json!("https://other-app.example.com")))),
        ),
        (
            "expired",
            with(&|c| drop(c.insert("exp".into(), json!(now() - 120)))),
        ),
        ("missing sub", with(&|c| drop(c.remove("sub")))),
    ];
    for (what, claims) in &cases {
        let forged = sign_with_teamgate_key(&gate, typed(), claims).await;
        assert!(
            verify(&forged, &jwks, &iss, &iss).await.is_err(),
            "{what} must fail"
        );
    }
    // The pitfall the case is about: with jsonwebtoken's defaults `iss` is not checked at all.
    let wrong_iss = sign_with_teamgate_key(&gate, typed(), &cases[1].1).await;
    let key = gate
        .state
        .store
        .read(|tx| {
            let keys = tx.published_keys(now())?;
            Ok::<_, StoreError>(keys.into_iter().find(|k| k.retired_at.is_none()))
        })
        .await
        .unwrap()
        .unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(&key.x, &key.y).unwrap();
    let mut defaults = jsonwebtoken::Validation::new(Algorithm::ES256);
    defaults.set_audience(&[&iss]);
    assert!(jsonwebtoken::decode::<Value>(&wrong_iss, &decoding, &defaults).is_ok());

    // A header without the assertion's typ (RFC 8725 §3.11) is refused by the recipe.
    let untyped = sign_with_teamgate_key(&gate, Header::new(Algorithm::ES256), &base).await;
    assert!(
        verify(&untyped, &jwks, &iss, &iss)
            .await
            .unwrap_err()
            .contains("typ")
    );
    // Algorithm confusion (RFC 8725 §3.1): an HS256 token MAC'd with the public key is refused.
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some(TYP.into());
    hs.kid = kid.clone();
    let public_bytes = format!("{}{}", key.x, key.y);
    let confused = jsonwebtoken::encode(
        &hs,
        &base,
        &EncodingKey::from_secret(public_bytes.as_bytes()),
    )
    .unwrap();
    assert!(verify(&confused, &jwks, &iss, &iss).await.is_err());
}

// ---- D. Sessions, as forward-auth sees them ----

#[tokio::test]
async fn case_47_the_session_cookie_is_httponly_lax_path_root_without_domain_or_max_age() {
    let gate = spawn("", "").await;
    let agent = Agent::new();
    let start = agent
        .get(&gate.url(&format!("/login?provider={PROVIDER}")))
        .await;
    let cookies = set_cookies(&start);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let attributes: Vec<String> = cookies[0]
        .split("; ")
        .skip(1)
        .map(str::to_lowercase)
        .collect();
    assert!(cookies[0].starts_with("teamgate="), "{cookies:?}");
    let mut sorted = attributes.clone();
    sorted.sort();
    // Plain http is allowed only on loopback, where Secure cannot be set.
    assert_eq!(
        sorted,
        ["httponly", "path=/", "samesite=lax"],
        "{cookies:?}"
    );
    assert_eq!(header(&start, "cache-control").as_deref(), Some("no-store"));
}

#[tokio::test]
async fn case_47_over_https_the_cookie_is_secure_and_host_prefixed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("https://{}", listener.local_addr().unwrap());
    let gate = spawn_on(listener, &public_url, "", "").await;
    let start = Agent::new()
        .get(&gate.url(&format!("/login?provider={PROVIDER}")))
        .await;
    let cookies = set_cookies(&start);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].starts_with("__Host-teamgate="), "{cookies:?}");
    let mut attributes: Vec<String> = cookies[0]
        .split("; ")
        .skip(1)
        .map(str::to_lowercase)
        .collect();
    attributes.sort();
    assert_eq!(
        attributes,
        ["httponly", "path=/", "samesite=lax", "secure"],
        "{cookies:?}"
    );
}

#[tokio::test]
async fn case_48_the_session_id_changes_at_login_and_the_old_one_is_refused() {
    let gate = spawn("", "").await;
    let agent = Agent::new();
    gate.idp.set_next_login(alice());
    let start = agent
        .get(&gate.url(&format!("/login?provider={PROVIDER}")))
        .await;
    assert!(start.status().is_redirection(), "{}", start.status());
    let before = agent
        .cookie(&gate.direct, "teamgate")
        .expect("a pre-login session");
    let location = header(&start, "location").unwrap();
    let (_, end) = crate::helpers::follow(&agent.client, &location).await;
    assert!(end.status().is_success());
    let after = agent.cookie(&gate.direct, "teamgate").unwrap();
    assert_ne!(before, after, "a new id at login");
    assert_eq!(
        auth_with_cookie(&gate, "teamgate", &after).await.status(),
        200
    );
    assert_eq!(
        auth_with_cookie(&gate, "teamgate", &before).await.status(),
        401
    );
    // A well-formed id teamgate never issued is ignored, not adopted.
    let never = Id::default().to_string();
    assert_eq!(
        auth_with_cookie(&gate, "teamgate", &never).await.status(),
        401
    );
    let forced = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(gate.url(&format!("/login?provider={PROVIDER}")))
        .header("cookie", format!("teamgate={never}"))
        .send()
        .await
        .unwrap();
    let issued = set_cookies(&forced);
    assert!(
        issued
            .iter()
            .any(|c| c.starts_with("teamgate=") && !c.starts_with(&format!("teamgate={never}"))),
        "{issued:?}"
    );
}

/// Change the stored auth record of the session behind `cookie`.
async fn edit_session(
    gate: &Gate,
    cookie: &str,
    change: impl FnOnce(&mut serde_json::Map<String, Value>),
) {
    let sessions = DbSessionStore::new(gate.state.store.clone(), gate.state.clock.clone());
    let id = Id::from_str(cookie).unwrap();
    let mut record = sessions
        .load(&id)
        .await
        .unwrap()
        .expect("the session exists");
    let auth = record
        .data
        .get_mut("auth")
        .unwrap()
        .as_object_mut()
        .unwrap();
    change(auth);
    sessions.save(&record).await.unwrap();
}

#[tokio::test]
async fn case_49_an_idle_session_gives_401_even_with_a_cached_assertion() {
    let gate = spawn("session_idle_minutes = 30", "").await;
    let agent = signed_in(&gate, alice()).await;
    assert_eq!(auth(&agent, &gate, "").await.status(), 200);
    let cookie = agent.cookie(&gate.direct, "teamgate").unwrap();
    edit_session(&gate, &cookie, |auth| {
        auth.insert("last_seen".into(), json!(now() - 31 * 60));
    })
    .await;
    let r = auth(&agent, &gate, "").await;
    assert_eq!(r.status(), 401);
    assert!(identity_headers(&r).is_empty());
}

#[tokio::test]
async fn case_49_a_session_past_its_absolute_lifetime_gives_401_even_when_active() {
    let gate = spawn("session_absolute_hours = 2", "").await;
    let agent = signed_in(&gate, alice()).await;
    assert_eq!(auth(&agent, &gate, "").await.status(), 200);
    let cookie = agent.cookie(&gate.direct, "teamgate").unwrap();
    edit_session(&gate, &cookie, |auth| {
        auth.insert("login_at".into(), json!(now() - 2 * 3600 - 60));
        auth.insert("last_seen".into(), json!(now()));
    })
    .await;
    assert_eq!(auth(&agent, &gate, "").await.status(), 401);
}

fn csrf_of(home: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = home
        .find(marker)
        .expect("the home page has the sign-out form")
        + marker.len();
    home[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn case_50_logout_needs_the_csrf_token_and_then_the_replayed_cookie_gets_401() {
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    let cookie = agent.cookie(&gate.direct, "teamgate").unwrap();
    let refused = agent
        .client
        .post(gate.url("/logout"))
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        auth(&agent, &gate, "").await.status(),
        200,
        "still signed in"
    );

    let home = agent.get(&gate.url("/")).await.text().await.unwrap();
    let out = agent
        .client
        .post(gate.url("/logout"))
        .form(&[("csrf", csrf_of(&home))])
        .send()
        .await
        .unwrap();
    assert!(out.status().is_redirection(), "{}", out.status());
    assert_eq!(
        auth_with_cookie(&gate, "teamgate", &cookie).await.status(),
        401
    );
    let sessions = DbSessionStore::new(gate.state.store.clone(), gate.state.clock.clone());
    assert!(
        sessions
            .load(&Id::from_str(&cookie).unwrap())
            .await
            .unwrap()
            .is_none(),
        "the record is deleted"
    );
}

#[tokio::test]
async fn case_51_a_deprovisioned_user_fails_the_very_next_forward_auth_even_when_cached() {
    let gate = spawn("", "").await;
    let first = signed_in(&gate, alice()).await;
    let second = signed_in(&gate, alice()).await;
    let bob = signed_in(&gate, bob()).await;
    for agent in [&first, &second, &bob] {
        assert_eq!(auth(agent, &gate, "").await.status(), 200);
    }
    gate.revoke("u-alice").await;
    for agent in [&first, &second] {
        let r = auth(agent, &gate, "").await;
        assert_eq!(r.status(), 401);
        assert!(identity_headers(&r).is_empty());
    }
    assert_eq!(
        auth(&bob, &gate, "").await.status(),
        200,
        "other users are unaffected"
    );
}

/// A SCIM request to the test provider's endpoint.
async fn scim(
    gate: &Gate,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, gate.url(&format!("/scim/v2/{PROVIDER}{path}")))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn case_51_scim_deactivation_and_delete_fail_the_next_forward_auth_even_when_cached() {
    let (gate, token) = spawn_scim().await;
    let agent = signed_in(&gate, alice()).await;
    assert_eq!(auth(&agent, &gate, "").await.status(), 200, "now cached");
    // The IdP provisions the same person: externalId = the login subject.
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "alice@example.com",
        "externalId": "u-alice",
    });
    let (status, created) = scim(&gate, &token, reqwest::Method::POST, "/Users", user).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        auth(&agent, &gate, "").await.status(),
        200,
        "provisioning keeps the session"
    );
    let deactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    let (status, body) = scim(
        &gate,
        &token,
        reqwest::Method::PATCH,
        &format!("/Users/{id}"),
        deactivate,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = auth(&agent, &gate, "").await;
    assert_eq!(r.status(), 401, "deactivation ends forward-auth at once");
    assert!(identity_headers(&r).is_empty());

    // Reactivated and signed in again, then deleted: refused again at once.
    let reactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": true}],
    });
    let (status, _) = scim(
        &gate,
        &token,
        reqwest::Method::PATCH,
        &format!("/Users/{id}"),
        reactivate,
    )
    .await;
    assert_eq!(status, 200);
    let again = signed_in(&gate, alice()).await;
    assert_eq!(auth(&again, &gate, "").await.status(), 200);
    let (status, _) = scim(
        &gate,
        &token,
        reqwest::Method::DELETE,
        &format!("/Users/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        auth(&again, &gate, "").await.status(),
        401,
        "deletion ends forward-auth at once"
    );
}

#[tokio::test]
async fn case_52_a_removed_group_reaches_forward_auth_within_half_the_assertion_lifetime() {
    let gate = spawn("", "[forward_auth]\nassertion_ttl_seconds = 10").await;
    let agent = signed_in(&gate, alice()).await;
    let r = auth(&agent, &gate, "?team=engineers").await;
    assert_eq!(r.status(), 200);
    let old = header(&r, "x-teamgate-assertion").unwrap();

    // Alice signs in again elsewhere, now without the engineers group: reconcile removes it.
    let changed_at = Instant::now();
    signed_in(&gate, user("u-alice", "alice@example.com", &[])).await;
    let bound = Duration::from_secs(5) + Duration::from_millis(1500);
    loop {
        let r = auth(&agent, &gate, "").await;
        assert_eq!(r.status(), 200);
        if header(&r, "x-teamgate-teams").as_deref() == Some("everyone") {
            let token = header(&r, "x-teamgate-assertion").unwrap();
            assert_ne!(token, old);
            assert_eq!(claims_of(&token)["teams"], json!(["everyone"]));
            break;
        }
        assert!(
            changed_at.elapsed() < bound,
            "still {:?} after {bound:?}",
            header(&r, "x-teamgate-teams")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(auth(&agent, &gate, "?team=engineers").await.status(), 403);
}

#[tokio::test]
async fn case_53_no_forward_auth_answer_and_no_cookie_setting_response_may_be_cached() {
    let gate = spawn("", "").await;
    let agent = Agent::new();
    let mut answers = vec![("401", auth(&agent, &gate, "").await)];
    let start = agent
        .get(&gate.url(&format!("/login?provider={PROVIDER}")))
        .await;
    answers.push(("login start", start));
    let signed = signed_in(&gate, alice()).await;
    answers.push(("200", auth(&signed, &gate, "").await));
    answers.push(("403", auth(&signed, &gate, "?team=operators").await));
    answers.push(("500", auth(&signed, &gate, "?team=nope-nope").await));
    let redirect = agent
        .client
        .get(gate.url("/auth?redirect=1"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    answers.push(("302", redirect));
    for (what, r) in &answers {
        assert_eq!(
            header(r, "cache-control").as_deref(),
            Some("no-store"),
            "{what}"
        );
    }
    // The callback sets the signed-in cookie.
    gate.idp.set_next_login(bob());
    let fresh = Agent::new();
    let mut url = gate.url(&format!("/login?provider={PROVIDER}"));
    loop {
        let r = fresh.get(&url).await;
        if url.contains("/callback/") {
            assert!(!set_cookies(&r).is_empty());
            assert_eq!(
                header(&r, "cache-control").as_deref(),
                Some("no-store"),
                "callback"
            );
            break;
        }
        url = reqwest::Url::parse(&url)
            .unwrap()
            .join(&header(&r, "location").unwrap())
            .unwrap()
            .to_string();
    }
}

#[tokio::test]
async fn a_second_login_does_not_reuse_the_session_of_another_agent() {
    // The cache is keyed by user, never by cookie: two users never share an entry even when
    // they arrive on one connection pool.
    let gate = spawn("", "").await;
    let shared = Agent::new();
    sign_in(&gate, &shared, &gate.direct.clone(), alice()).await;
    let alice_id = header(&auth(&shared, &gate, "").await, "x-teamgate-user").unwrap();
    sign_in(&gate, &shared, &gate.direct.clone(), bob()).await;
    let bob_id = header(&auth(&shared, &gate, "").await, "x-teamgate-user").unwrap();
    assert_ne!(alice_id, bob_id);
    assert_eq!(bob_id, gate.user("u-bob").await.public_id);
}

/// Case 52 through SCIM: the IdP removes Alice from the group over SCIM (no new login); the
/// team leaves `/auth` and the assertion within half the assertion lifetime.
#[tokio::test]
async fn case_52_a_group_removed_through_scim_reaches_forward_auth_within_half_the_assertion_lifetime()
 {
    let (gate, token) =
        crate::forward_auth_support::spawn_scim_with("[forward_auth]\nassertion_ttl_seconds = 10")
            .await;
    // Alice's login carries no groups: engineers can only come from SCIM.
    let agent = signed_in(&gate, user("u-alice", "alice@example.com", &[])).await;
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "alice@example.com",
        "externalId": "u-alice",
    });
    let (status, created) = scim(&gate, &token, reqwest::Method::POST, "/Users", user).await;
    assert_eq!(status, 201, "{created}");
    let member = created["id"].as_str().unwrap().to_owned();
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Engineering",
        "externalId": "g-eng",
        "members": [{"value": member}],
    });
    let (status, created) = scim(&gate, &token, reqwest::Method::POST, "/Groups", group).await;
    assert_eq!(status, 201, "{created}");
    let group_id = created["id"].as_str().unwrap().to_owned();
    // The grant follows within the bound too; wait for it before removing.
    let bound = Duration::from_secs(5) + Duration::from_millis(1500);
    let added_at = Instant::now();
    while auth(&agent, &gate, "?team=engineers").await.status() != 200 {
        assert!(
            added_at.elapsed() < bound,
            "the SCIM group never granted engineers"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let old = header(&auth(&agent, &gate, "").await, "x-teamgate-assertion").unwrap();

    let remove = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{member}\"]")}],
    });
    let (status, body) = scim(
        &gate,
        &token,
        reqwest::Method::PATCH,
        &format!("/Groups/{group_id}"),
        remove,
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let changed_at = Instant::now();
    loop {
        let r = auth(&agent, &gate, "").await;
        assert_eq!(r.status(), 200, "the session itself is untouched");
        if header(&r, "x-teamgate-teams").as_deref() == Some("everyone") {
            let token = header(&r, "x-teamgate-assertion").unwrap();
            assert_ne!(token, old);
            assert_eq!(claims_of(&token)["teams"], json!(["everyone"]));
            break;
        }
        assert!(
            changed_at.elapsed() < bound,
            "still {:?} after {bound:?}",
            header(&r, "x-teamgate-teams")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(auth(&agent, &gate, "?team=engineers").await.status(), 403);
}

/// Case 85, the forward-auth half: another process holds the write lock past the busy
/// timeout. `/auth` keeps answering from reads (WAL) while it needs no write; when it must
/// write (the session's `last_seen`), it fails closed with a 5xx and no identity header,
/// never a 2xx.
#[tokio::test]
async fn case_85_forward_auth_while_the_database_is_locked_past_the_busy_timeout_is_5xx_never_2xx()
{
    let gate = spawn("", "").await;
    let agent = signed_in(&gate, alice()).await;
    assert_eq!(auth(&agent, &gate, "").await.status(), 200);
    let hog = crate::helpers::hold_writes(&gate.state).await;
    assert_eq!(
        auth(&agent, &gate, "").await.status(),
        200,
        "a read-only check works under the lock"
    );
    // A minute on: this request refreshes last_seen, a write the lock refuses.
    gate.state.clock.advance(Duration::from_secs(61));
    let started = Instant::now();
    let r = auth(&agent, &gate, "").await;
    assert!(r.status().is_server_error(), "{}", r.status());
    assert!(
        identity_headers(&r).is_empty(),
        "{:?}",
        identity_headers(&r)
    );
    assert!(
        started.elapsed() >= teamgate::store::sqlite::BUSY_TIMEOUT - Duration::from_millis(100)
    );
    hog.release().await;
    assert_eq!(auth(&agent, &gate, "").await.status(), 200);
}
