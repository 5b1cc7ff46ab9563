//! End-to-end tests of the demo IdP: each test serves the router on its own 127.0.0.1:0
//! listener and drives it over HTTP the way a browser and a relying party would.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, LOCATION, WWW_AUTHENTICATE};
use rsa::RsaPrivateKey;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::{DemoIdp, router};
use crate::config::DemoUser;
use crate::domain::secret::Secret;
use crate::web::templates::Templates;

pub(super) const CLIENT_ID: &str = "teamgate-demo";
/// Characters that RFC 6749 §2.3.1 makes clients form-url-encode inside Basic credentials.
const CLIENT_SECRET: &str = "s3cret:with+reserved/chars=&%";
/// Nothing listens there: tests read the `Location` header instead of following it.
pub(super) const REDIRECT_URI: &str = "http://127.0.0.1:9/callback/demo";

/// Key generation is slow; one key serves the whole test process.
pub(super) fn test_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key"))
}

fn users() -> Vec<DemoUser> {
    vec![
        DemoUser {
            email: "alice@example.com".into(),
            name: "Alice Admin".into(),
            groups: vec!["g-admins".into(), "g-security".into()],
        },
        DemoUser {
            email: "dave@example.com".into(),
            name: "Dave <Newcomer>".into(),
            groups: vec![],
        },
    ]
}

pub(super) fn test_idp(issuer: &str) -> DemoIdp {
    test_idp_redirecting_to(issuer, REDIRECT_URI)
}

pub(super) fn test_idp_redirecting_to(issuer: &str, redirect_uri: &str) -> DemoIdp {
    DemoIdp::new(
        issuer.into(),
        CLIENT_ID.into(),
        Secret::new(CLIENT_SECRET.into()),
        redirect_uri.into(),
        users(),
        test_key().clone(),
        Arc::new(Templates::new("").expect("templates")),
    )
    .expect("a demo IdP")
}

/// How the test client authenticates at the token endpoint.
#[derive(Clone, Copy)]
enum Auth {
    Basic,
    Post,
}

/// A PKCE pair (RFC 7636 §4.1, §4.2).
struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Self {
        let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

struct TestIdp {
    issuer: String,
    http: reqwest::Client,
}

async fn spawn_idp() -> TestIdp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let issuer = format!("http://127.0.0.1:{port}/demo-idp");
    let app = Router::new().nest("/demo-idp", router(Arc::new(test_idp(&issuer))));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    TestIdp { issuer, http }
}

/// `name="..." value="..."` of each hidden input, unescaped the way a browser would.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let len = tag[start..].find('"')?;
        Some(unescape(&tag[start..start + len]))
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|tag| tag.contains(r#"type="hidden""#))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value")?)))
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

fn query_of(location: &str) -> HashMap<String, String> {
    Url::parse(location)
        .expect("an absolute Location")
        .query_pairs()
        .into_owned()
        .collect()
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// RFC 6749 §2.3.1: form-url-encode, then Basic.
fn basic_credentials(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

impl TestIdp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    fn authorize_params(&self, pkce: &Pkce) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", CLIENT_ID.into()),
            ("redirect_uri", REDIRECT_URI.into()),
            ("response_type", "code".into()),
            ("scope", "openid email profile".into()),
            ("state", "state-1".into()),
            ("nonce", "nonce-1".into()),
            ("code_challenge", pkce.challenge.clone()),
            ("code_challenge_method", "S256".into()),
        ]
    }

    async fn authorize(&self, params: &[(&str, String)]) -> reqwest::Response {
        self.http
            .get(self.url("/authorize"))
            .query(params)
            .send()
            .await
            .expect("authorize answered")
    }

    /// Open the pick page, then submit its form as a browser would with the button `button`
    /// (`email=...` or `cancel=1`). Returns the redirect's query.
    async fn submit_pick(&self, pkce: &Pkce, button: (&str, &str)) -> HashMap<String, String> {
        let page = self.authorize(&self.authorize_params(pkce)).await;
        assert_eq!(page.status(), StatusCode::OK);
        let mut form = hidden_inputs(&page.text().await.expect("a page"));
        form.push((button.0.into(), button.1.into()));
        let response = self
            .http
            .post(self.url("/authorize/pick"))
            .form(&form)
            .send()
            .await
            .expect("pick answered");
        assert_eq!(response.status(), StatusCode::FOUND);
        query_of(&location(&response).expect("a redirect"))
    }

    /// A code for `email`, obtained through the pick page.
    async fn code_for(&self, email: &str, pkce: &Pkce) -> String {
        let query = self.submit_pick(pkce, ("email", email)).await;
        query.get("code").cloned().expect("a code")
    }

    async fn token(&self, auth: Auth, secret: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.http.post(self.url("/token"));
        match auth {
            Auth::Basic => {
                request = request.header("authorization", basic_credentials(CLIENT_ID, secret))
            }
            Auth::Post => form.extend([("client_id", CLIENT_ID), ("client_secret", secret)]),
        }
        request.form(&form).send().await.expect("token answered")
    }

    async fn exchange(&self, auth: Auth, code: &str, verifier: &str) -> reqwest::Response {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ];
        self.token(auth, CLIENT_SECRET, &form).await
    }

    async fn json(&self, response: reqwest::Response) -> Value {
        response.json().await.expect("a JSON body")
    }
}

#[tokio::test]
async fn the_discovery_document_describes_a_code_flow_provider_under_its_issuer() {
    let idp = spawn_idp().await;
    let doc = idp
        .json(
            idp.http
                .get(idp.url("/.well-known/openid-configuration"))
                .send()
                .await
                .expect("discovery answered"),
        )
        .await;
    assert_eq!(doc["issuer"], idp.issuer.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(doc[field], idp.url(path).as_str(), "{field}");
    }
    let list = |field: &str| doc[field].as_array().cloned().unwrap_or_default();
    assert_eq!(list("response_types_supported"), ["code"]);
    assert_eq!(list("subject_types_supported"), ["public"]);
    assert_eq!(list("id_token_signing_alg_values_supported"), ["RS256"]);
    assert_eq!(list("code_challenge_methods_supported"), ["S256"]);
    assert_eq!(
        list("token_endpoint_auth_methods_supported"),
        ["client_secret_basic", "client_secret_post"]
    );
    assert_eq!(list("grant_types_supported"), ["authorization_code"]);
    assert!(list("scopes_supported").contains(&Value::from("openid")));
    assert!(list("claims_supported").contains(&Value::from("groups")));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn the_jwks_publishes_one_rs256_signing_key_with_a_kid() {
    let idp = spawn_idp().await;
    let response = idp
        .http
        .get(idp.url("/jwks"))
        .send()
        .await
        .expect("jwks answered");
    let set = idp.json(response).await;
    let key = &set["keys"][0];
    assert_eq!(set["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (key["kty"].as_str(), key["use"].as_str()),
        (Some("RSA"), Some("sig"))
    );
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["e"], "AQAB");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    // A 2048-bit modulus is 256 bytes: 342 base64url characters.
    assert_eq!(key["n"].as_str().map(str::len), Some(342));
}

#[tokio::test]
async fn the_pick_page_offers_one_button_per_user_and_works_without_javascript() {
    let idp = spawn_idp().await;
    let response = idp.authorize(&idp.authorize_params(&Pkce::new())).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Framing protection comes from the router's header layer (tests/api/hardening_web.rs).
    let html = response.text().await.expect("a page");
    assert!(html.contains("Demo identity provider — anyone can sign in, never use in production"));
    // minijinja escapes '/' as &#x2f; inside attributes; browsers read it back as '/'.
    assert!(unescape(&html).contains(r#"action="/demo-idp/authorize/pick""#));
    assert!(html.contains(r#"id="pick-0""#) && html.contains(r#"data-email="alice@example.com""#));
    assert!(html.contains(r#"id="pick-1""#) && html.contains(r#"data-email="dave@example.com""#));
    assert!(!html.contains("pick-2"));
    assert!(html.contains("g-security"));
    // Names are escaped, not interpreted.
    assert!(html.contains("Dave &lt;Newcomer&gt;"));
    assert!(!html.contains("<script"));
    let hidden: HashMap<_, _> = hidden_inputs(&html).into_iter().collect();
    assert_eq!(
        hidden.get("redirect_uri").map(String::as_str),
        Some(REDIRECT_URI)
    );
    assert_eq!(hidden.get("state").map(String::as_str), Some("state-1"));
    assert_eq!(hidden.get("nonce").map(String::as_str), Some("nonce-1"));
}

#[tokio::test]
async fn a_full_code_flow_yields_an_id_token_that_verifies_against_the_published_jwks() {
    let idp = spawn_idp().await;
    let pkce = Pkce::new();
    let query = idp.submit_pick(&pkce, ("email", "alice@example.com")).await;
    // RFC 9207 §2: the response names its issuer.
    assert_eq!(query.get("iss"), Some(&idp.issuer));
    assert_eq!(query.get("state").map(String::as_str), Some("state-1"));
    let code = query.get("code").expect("a code");
    assert!(
        URL_SAFE_NO_PAD
            .decode(code)
            .map(|b| b.len() >= 16)
            .unwrap_or(false)
    );

    let response = idp.exchange(Auth::Basic, code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get(CACHE_CONTROL).map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    let body = idp.json(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid email profile");
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0));
    let access_token = body["access_token"].as_str().expect("an access token");
    let id_token = body["id_token"].as_str().expect("an ID token");

    let jwks: JwkSet = idp
        .http
        .get(idp.url("/jwks"))
        .send()
        .await
        .expect("jwks answered")
        .json()
        .await
        .expect("a JWK set");
    let header = jsonwebtoken::decode_header(id_token).expect("a JWS header");
    assert_eq!(header.alg, Algorithm::RS256);
    let jwk = jwks
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the kid is published");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[idp.issuer.as_str()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let key = DecodingKey::from_jwk(jwk).expect("a usable JWK");
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .expect("the ID token verifies")
        .claims;

    assert_eq!(claims["sub"], "demo-ff8d9819fc0e12bf");
    assert_eq!(claims["azp"], CLIENT_ID);
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Admin");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["g-admins", "g-security"])
    );
    assert_eq!(
        claims["exp"]
            .as_i64()
            .zip(claims["iat"].as_i64())
            .map(|(e, i)| e - i),
        Some(300)
    );
    // OIDC Core §3.1.3.6, computed here independently of the provider's code.
    let digest = Sha256::digest(access_token.as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));
}

#[tokio::test]
async fn a_user_without_groups_gets_an_empty_groups_claim() {
    let idp = spawn_idp().await;
    let pkce = Pkce::new();
    let code = idp.code_for("dave@example.com", &pkce).await;
    let body = idp
        .json(idp.exchange(Auth::Post, &code, &pkce.verifier).await)
        .await;
    let payload = body["id_token"]
        .as_str()
        .and_then(|t| t.split('.').nth(1))
        .expect("a JWT");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON");
    assert_eq!(claims["groups"], serde_json::json!([]));
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_as_invalid_grant() {
    let idp = spawn_idp().await;
    let pkce = Pkce::new();
    let code = idp.code_for("alice@example.com", &pkce).await;
    let response = idp
        .exchange(Auth::Basic, &code, &Pkce::new().verifier)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(idp.json(response).await["error"], "invalid_grant");
}

#[tokio::test]
async fn a_reused_code_is_refused_as_invalid_grant_and_its_access_token_revoked() {
    let idp = spawn_idp().await;
    let pkce = Pkce::new();
    let code = idp.code_for("alice@example.com", &pkce).await;
    let first = idp
        .json(idp.exchange(Auth::Basic, &code, &pkce.verifier).await)
        .await;
    let access_token = first["access_token"].as_str().expect("an access token");

    let second = idp.exchange(Auth::Basic, &code, &pkce.verifier).await;
    assert_eq!(second.status(), StatusCode::BAD_REQUEST);
    assert_eq!(idp.json(second).await["error"], "invalid_grant");

    // RFC 6749 §4.1.2: tokens issued on the reused code are revoked.
    let userinfo = idp
        .http
        .get(idp.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo answered");
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_as_invalid_client_with_401() {
    let idp = spawn_idp().await;
    let pkce = Pkce::new();
    let code = idp.code_for("alice@example.com", &pkce).await;
    for auth in [Auth::Basic, Auth::Post] {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", pkce.verifier.as_str()),
        ];
        let response = idp.token(auth, "not-the-secret", &form).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(idp.json(response).await["error"], "invalid_client");
    }
    // A refused client does not burn the code of the real one.
    let ok = idp.exchange(Auth::Post, &code, &pkce.verifier).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_request_naming_another_redirect_uri_is_refused_as_invalid_grant() {
    let idp = spawn_idp().await;
    let pkce = Pkce::new();
    let code = idp.code_for("alice@example.com", &pkce).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let response = idp.token(Auth::Basic, CLIENT_SECRET, &form).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(idp.json(response).await["error"], "invalid_grant");
}

#[tokio::test]
async fn an_unsupported_grant_type_is_refused_by_name() {
    let idp = spawn_idp().await;
    let response = idp
        .token(
            Auth::Basic,
            CLIENT_SECRET,
            &[("grant_type", "password"), ("username", "alice")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(idp.json(response).await["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let idp = spawn_idp().await;
    let pkce = Pkce::new();
    for (name, value) in [
        ("redirect_uri", "https://evil.example/callback"),
        ("client_id", "someone-else"),
    ] {
        let mut params = idp.authorize_params(&pkce);
        params.retain(|(k, _)| *k != name);
        params.push((name, value.into()));
        let response = idp.authorize(&params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(location(&response), None, "{name}");
        let html = response.text().await.expect("a page");
        assert!(html.contains(r#"id="request-id""#), "{name}");
        assert!(!html.contains("evil.example"), "{name}");

        // The pick form is checked the same way, so a forged form cannot redirect either.
        let mut form = params.clone();
        form.push(("email", "alice@example.com".into()));
        let pick = idp
            .http
            .post(idp.url("/authorize/pick"))
            .form(&form)
            .send()
            .await
            .expect("pick answered");
        assert_eq!(pick.status(), StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(location(&pick), None, "{name}");
    }
}

#[tokio::test]
async fn a_request_without_pkce_goes_back_to_the_client_as_invalid_request_with_state_and_iss() {
    let idp = spawn_idp().await;
    let mut params = idp.authorize_params(&Pkce::new());
    params.retain(|(k, _)| !k.starts_with("code_challenge"));
    let response = idp.authorize(&params).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let target = location(&response).expect("a redirect");
    assert!(target.starts_with(REDIRECT_URI));
    let query = query_of(&target);
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("invalid_request")
    );
    assert_eq!(query.get("state").map(String::as_str), Some("state-1"));
    assert_eq!(query.get("iss"), Some(&idp.issuer));
    assert_eq!(query.get("code"), None);
}

#[tokio::test]
async fn cancel_sends_access_denied_back_to_the_client() {
    let idp = spawn_idp().await;
    let query = idp.submit_pick(&Pkce::new(), ("cancel", "1")).await;
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(query.get("state").map(String::as_str), Some("state-1"));
    assert_eq!(query.get("iss"), Some(&idp.issuer));
    assert_eq!(query.get("code"), None);
}

#[tokio::test]
async fn userinfo_returns_the_user_of_the_access_token_and_refuses_others() {
    let idp = spawn_idp().await;
    let pkce = Pkce::new();
    let code = idp.code_for("alice@example.com", &pkce).await;
    let body = idp
        .json(idp.exchange(Auth::Post, &code, &pkce.verifier).await)
        .await;
    let access_token = body["access_token"].as_str().expect("an access token");

    let response = idp
        .http
        .get(idp.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo answered");
    assert_eq!(response.status(), StatusCode::OK);
    let claims = idp.json(response).await;
    assert_eq!(claims["sub"], "demo-ff8d9819fc0e12bf");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Admin");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["g-admins", "g-security"])
    );

    let forged = idp
        .http
        .get(idp.url("/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("userinfo answered");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let challenge = forged
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok());
    assert!(challenge.is_some_and(|c| c.contains(r#"error="invalid_token""#)));
}

/// openidconnect's HTTP client seam, over reqwest, for the relying-party test below.
async fn send(
    client: &reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    Ok(out
        .body(response.bytes().await?.to_vec())
        .expect("a response"))
}

#[tokio::test]
async fn the_openidconnect_relying_party_library_accepts_the_whole_flow() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
        OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    };

    let idp = spawn_idp().await;
    let http = |request| send(&idp.http, request);
    // Discovery checks that the document's issuer is the one asked for.
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(idp.issuer.clone()).expect("an issuer"),
        &http,
    )
    .await
    .expect("discovery succeeds");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(CLIENT_ID.into()),
        Some(ClientSecret::new(CLIENT_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).expect("a redirect URI"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser: open the page, click Alice.
    let page = idp
        .http
        .get(url.as_str())
        .send()
        .await
        .expect("authorize answered");
    let mut form = hidden_inputs(&page.text().await.expect("a page"));
    form.push(("email".into(), "alice@example.com".into()));
    let pick = idp
        .http
        .post(idp.url("/authorize/pick"))
        .form(&form)
        .send()
        .await
        .expect("pick answered");
    let query = query_of(&location(&pick).expect("a redirect"));
    assert_eq!(query.get("state"), Some(state.secret()));

    // The relying party: exchange with client_secret_basic, verify the ID token.
    let token = client
        .exchange_code(AuthorizationCode::new(
            query.get("code").cloned().expect("a code"),
        ))
        .expect("a token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the exchange succeeds");
    let id_token = token.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token verifies");
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    assert_eq!(claims.subject().as_str(), "demo-ff8d9819fc0e12bf");
    let expected_hash = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().expect("an algorithm"),
        id_token.signing_key(&verifier).expect("the signing key"),
    )
    .expect("a hash");
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
}

#[test]
fn construction_refuses_an_issuer_or_redirect_uri_a_provider_cannot_use() {
    let build = |issuer: &str, redirect_uri: &str| {
        DemoIdp::new(
            issuer.into(),
            CLIENT_ID.into(),
            Secret::new(CLIENT_SECRET.into()),
            redirect_uri.into(),
            users(),
            test_key().clone(),
            Arc::new(Templates::new("").expect("templates")),
        )
        .err()
        .map(|e| e.to_string())
    };
    let good_issuer = "http://127.0.0.1:8080/demo-idp";
    assert_eq!(build(good_issuer, REDIRECT_URI), None);
    assert!(build("http://127.0.0.1:8080/demo-idp?x=1", REDIRECT_URI).is_some());
    assert!(build("demo-idp", REDIRECT_URI).is_some());
    assert!(build(good_issuer, "http://127.0.0.1:8080/callback/demo#frag").is_some());
    assert!(build(good_issuer, "/callback/demo").is_some());
}
