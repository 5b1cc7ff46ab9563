//! Proves the test IdP is a correct OpenID provider before the login tests lean on it: plain
//! reqwest (and openidconnect, the crate teamgate uses) against discovery, the code flow with
//! PKCE, the token endpoint's checks, a few knobs, and the Graph and Okta API paging.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::test_idp::{
    Alg, Endpoint, EntraUser, IssParam, LoginSpec, TestIdp, TestIdpOptions, entra_group_id,
    okta_group_names, okta_login_spec,
};

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback/test";
/// RFC 7636 Appendix B.
const RFC7636_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC7636_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `client_secret_basic` done right: form-encode, then Base64 (RFC 6749 §2.3.1).
fn basic(idp: &TestIdp) -> String {
    let pair = format!(
        "{}:{}",
        form_encode(&idp.client_id()),
        form_encode(&idp.client_secret())
    );
    format!("Basic {}", STANDARD.encode(pair))
}

fn authorize_url(idp: &TestIdp, challenge: &str) -> String {
    let mut url = url::Url::parse(&idp.authorization_endpoint()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &idp.client_id())
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid email profile")
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-0S6_WzA2Mj")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

/// The parameters of the IdP's redirect back to the client.
async fn callback_params(idp: &TestIdp, challenge: &str) -> Vec<(String, String)> {
    let location = idp.authorize_redirect(&authorize_url(idp, challenge)).await;
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn redeem(idp: &TestIdp, code: &str, verifier: &str) -> reqwest::Response {
    client()
        .post(idp.token_endpoint())
        .header("authorization", basic(idp))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

/// Authorize with the RFC 7636 vector and redeem the code: the token response.
async fn login(idp: &TestIdp) -> Value {
    let params = callback_params(idp, RFC7636_CHALLENGE).await;
    let code = param(&params, "code").unwrap();
    let response = redeem(idp, code, RFC7636_VERIFIER).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn decode_segment(token: &str, index: usize) -> Value {
    let segment = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

async fn jwks(idp: &TestIdp) -> JwkSet {
    reqwest::get(idp.jwks_uri())
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn discovery_names_the_issuer_and_endpoints_under_a_random_path() {
    let idp = TestIdp::start().await;
    let doc: Value = reqwest::get(idp.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], json!(idp.issuer()));
    assert_eq!(doc["jwks_uri"], json!(idp.jwks_uri()));
    assert_eq!(doc["token_endpoint"], json!(idp.token_endpoint()));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    // security case 15: a second IdP's endpoints differ, so only discovery can find them.
    let other = TestIdp::start().await;
    let path = |u: String| url::Url::parse(&u).unwrap().path().to_owned();
    assert_ne!(path(idp.jwks_uri()), path(other.jwks_uri()));
    assert_eq!(idp.discovery_calls(), 1);
}

#[tokio::test]
async fn a_code_flow_with_pkce_yields_an_id_token_that_verifies_against_the_jwks() {
    let idp = TestIdp::start().await;
    idp.set_next_login(LoginSpec::new("u-42", "bob@example.com").with_groups(["g1", "g2"]));
    let params = callback_params(&idp, RFC7636_CHALLENGE).await;
    assert_eq!(param(&params, "state"), Some("st-1"));
    assert_eq!(param(&params, "iss"), Some(idp.issuer().as_str()));
    let code = param(&params, "code").unwrap();
    let response = redeem(&idp, code, RFC7636_VERIFIER).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(idp.current_kid().as_str()));
    let set = jwks(&idp).await;
    let key = DecodingKey::from_jwk(set.find(&idp.current_kid()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[idp.client_id()]);
    validation.set_issuer(&[idp.issuer()]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "u-42");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["groups"], json!(["g1", "g2"]));
    let access_token = tokens["access_token"].as_str().unwrap();
    let at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token)[..16]);
    assert_eq!(claims["at_hash"], json!(at_hash));

    // What the IdP recorded, as the login tests will inspect it.
    let authorize = idp.last_authorize().unwrap();
    assert_eq!(authorize.get("code_challenge_method"), Some("S256"));
    let token_request = idp.last_token_request().unwrap();
    assert_eq!(
        token_request.basic_credentials(),
        Some((idp.client_id(), idp.client_secret()))
    );
    assert_eq!(token_request.form("code_verifier"), Some(RFC7636_VERIFIER));

    // RFC 6749 §4.1.2: a code is single-use.
    let replay = redeem(&idp, code, RFC7636_VERIFIER).await;
    assert_eq!(replay.status(), 400);
    let error: Value = replay.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_and_burns_the_code() {
    let idp = TestIdp::start().await;
    let params = callback_params(&idp, RFC7636_CHALLENGE).await;
    let code = param(&params, "code").unwrap();
    let wrong = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let response = redeem(&idp, code, &wrong).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");
    assert_eq!(redeem(&idp, code, RFC7636_VERIFIER).await.status(), 400);
}

#[tokio::test]
async fn an_authorization_request_without_s256_pkce_is_sent_back_with_an_error() {
    let idp = TestIdp::start().await;
    let url = authorize_url(&idp, RFC7636_CHALLENGE).replace("S256", "plain");
    let location = idp.authorize_redirect(&url).await;
    assert!(location.contains("error=invalid_request"), "{location}");
    assert!(location.contains("state=st-1"), "{location}");
    assert!(!location.contains("code="), "{location}");
}

#[tokio::test]
async fn basic_credentials_that_skip_form_encoding_are_refused() {
    let idp = TestIdp::start().await;
    assert!(idp.client_secret().contains(['+', '%', ':', '~', ' ']));
    let params = callback_params(&idp, RFC7636_CHALLENGE).await;
    let raw = STANDARD.encode(format!("{}:{}", idp.client_id(), idp.client_secret()));
    let response = client()
        .post(idp.token_endpoint())
        .header("authorization", format!("Basic {raw}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", param(&params, "code").unwrap()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", RFC7636_VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn the_idp_is_usable_through_the_openidconnect_crate() {
    use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
    use openidconnect::{
        AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
        PkceCodeChallenge, RedirectUrl, TokenResponse,
    };

    let idp = TestIdp::start_with(TestIdpOptions::entra(
        "11111111-2222-4333-8444-555555555555",
    ))
    .await;
    let user = EntraUser::new("11111111-2222-4333-8444-555555555555", "carol@contoso.test")
        .with_groups([entra_group_id(1), entra_group_id(2)]);
    idp.set_next_login(user.login_spec());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // openidconnect 4 takes any async closure as its HTTP client.
    let call = |request: openidconnect::HttpRequest| {
        let http = http.clone();
        async move {
            let (parts, body) = request.into_parts();
            let response = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut builder = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            Ok::<_, reqwest::Error>(builder.body(response.bytes().await?.to_vec()).unwrap())
        }
    };
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(idp.issuer()).unwrap(), &call)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(idp.client_id()),
        Some(ClientSecret::new(idp.client_secret())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let location = idp.authorize_redirect(url.as_str()).await;
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&call)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    let claims = id_token
        .claims(
            &client.id_token_verifier(),
            &Nonce::new(nonce.secret().clone()),
        )
        .unwrap();
    assert_eq!(claims.subject().as_str(), user.sub);
    assert_eq!(claims.issuer().as_str(), idp.issuer());
    // openidconnect's nonce from `Nonce::new_random` fits security case 1's 43-char limit.
    assert!(idp.last_authorize().unwrap().get("nonce").unwrap().len() <= 43);
    let payload = decode_segment(&id_token.to_string(), 1);
    assert_eq!(payload["oid"], json!(user.oid));
    assert_eq!(
        payload["groups"],
        json!([entra_group_id(1), entra_group_id(2)])
    );
    // openidconnect sends client_secret_basic, form-encoded before Base64.
    assert_eq!(
        idp.last_token_request().unwrap().basic_credentials(),
        Some((idp.client_id(), idp.client_secret()))
    );
}

#[tokio::test]
async fn knobs_bend_the_next_id_token_and_the_authorization_response() {
    let idp = TestIdp::start().await;
    idp.with_knobs(|k| {
        k.remove_claim("sub")
            .set_claim("aud", json!([idp.client_id(), "other"]));
        k.alg = Alg::Hs256WithRsaPublicKey;
        k.iss_param = IssParam::TrailingSlash;
    });
    let params = callback_params(&idp, RFC7636_CHALLENGE).await;
    assert_eq!(
        param(&params, "iss"),
        Some(format!("{}/", idp.issuer()).as_str())
    );
    let code = param(&params, "code").unwrap();
    let tokens: Value = redeem(&idp, code, RFC7636_VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = decode_segment(id_token, 1);
    assert!(claims.get("sub").is_none());
    assert_eq!(claims["aud"], json!([idp.client_id(), "other"]));
    // The confusion token really is MAC'd with the published key's PEM: what an attacker does.
    let set = jwks(&idp).await;
    let rsa = set.find(&idp.current_kid()).unwrap();
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(params) = &rsa.algorithm else {
        panic!("not an RSA key");
    };
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(&params.n).unwrap()),
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(&params.e).unwrap()),
    )
    .unwrap();
    use rsa::pkcs8::EncodePublicKey;
    let pem = public
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(
        id_token,
        &DecodingKey::from_secret(pem.as_bytes()),
        &validation,
    )
    .unwrap();

    idp.reset_knobs();
    let params = callback_params(&idp, RFC7636_CHALLENGE).await;
    assert_eq!(param(&params, "iss"), Some(idp.issuer().as_str()));
}

#[tokio::test]
async fn rotation_publishes_both_keys_or_only_the_new_one() {
    let idp = TestIdp::start().await;
    let first = idp.current_kid();
    idp.rotate_key();
    let second = idp.current_kid();
    assert_ne!(first, second);
    let kids = |set: JwkSet| -> Vec<String> {
        set.keys
            .into_iter()
            .filter_map(|k| k.common.key_id)
            .collect()
    };
    assert_eq!(kids(jwks(&idp).await), [second.clone(), first]);
    idp.with_knobs(|k| k.jwks_keep_previous = false);
    assert_eq!(kids(jwks(&idp).await), [second]);
    let tokens = login(&idp).await;
    let header = jsonwebtoken::decode_header(tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.kid, Some(idp.current_kid()));
}

#[tokio::test]
async fn a_fault_with_a_count_fails_that_many_calls_then_clears() {
    let idp = TestIdp::start().await;
    idp.with_knobs(|k| {
        let fault = k.fault(Endpoint::Jwks);
        fault.status = Some(500);
        fault.times = Some(1);
    });
    assert_eq!(reqwest::get(idp.jwks_uri()).await.unwrap().status(), 500);
    assert_eq!(reqwest::get(idp.jwks_uri()).await.unwrap().status(), 200);
    idp.with_knobs(|k| {
        k.redirect(Endpoint::Jwks, &idp.moved_jwks_url())
            .delay(Endpoint::Jwks, Duration::from_millis(50));
    });
    let moved = client().get(idp.jwks_uri()).send().await.unwrap();
    assert_eq!(moved.status(), 302);
    assert_eq!(moved.headers()["location"], idp.moved_jwks_url().as_str());
    assert_eq!(idp.jwks_calls(), 3);
    assert_eq!(idp.calls(Endpoint::MovedJwks), 0);
}

#[tokio::test]
async fn a_refresh_grant_returns_an_id_token_for_the_current_user() {
    let idp = TestIdp::start().await;
    idp.with_knobs(|k| k.issue_refresh_token = true);
    let tokens = login(&idp).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    idp.set_next_login(LoginSpec::new("someone-else", "eve@example.com"));
    let refreshed: Value = client()
        .post(idp.token_endpoint())
        .header("authorization", basic(&idp))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = decode_segment(refreshed["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], "someone-else");
    assert!(claims.get("nonce").is_none());
    assert_ne!(refreshed["refresh_token"], json!(refresh));
}

#[tokio::test]
async fn graph_pages_through_groups_and_directory_roles_and_limits_check_member_groups() {
    let idp = TestIdp::start_with(TestIdpOptions::entra(
        "aaaaaaaa-0000-4000-8000-000000000001",
    ))
    .await;
    let mut user = EntraUser::new("aaaaaaaa-0000-4000-8000-000000000001", "dan@contoso.test")
        .with_groups((1..=250).map(entra_group_id));
    user.directory_roles = vec!["62e90394-69f5-4237-9190-012177145e10".into()];
    let spec = user.overage_login_spec(&idp);
    assert!(spec.groups.is_none());
    idp.set_next_login(spec);
    idp.with_knobs(|k| k.graph_page_size_cap = 100);
    let token = idp.mint_access_token(&user.sub);

    let mut url = format!(
        "{}/v1.0/me/transitiveMemberOf?$select=id&$top=999",
        idp.graph_url()
    );
    let (mut groups, mut roles, mut pages) = (Vec::new(), 0, 0);
    loop {
        let page: Value = client()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        for object in page["value"].as_array().unwrap() {
            match object["@odata.type"].as_str().unwrap() {
                "#microsoft.graph.group" => groups.push(object["id"].as_str().unwrap().to_owned()),
                _ => roles += 1,
            }
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!((groups.len(), roles, pages), (250, 1, 3));
    assert_eq!(groups, user.groups);

    let check = |ids: Vec<String>| {
        client()
            .post(format!("{}/v1.0/me/checkMemberGroups", idp.graph_url()))
            .bearer_auth(&token)
            .json(&json!({ "groupIds": ids }))
            .send()
    };
    let asked: Vec<String> = (240..=260).map(entra_group_id).collect();
    assert_eq!(check(asked.clone()).await.unwrap().status(), 400);
    let answer: Value = check(asked[1..].to_vec())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["value"],
        json!((241..=250).map(entra_group_id).collect::<Vec<_>>())
    );
    let anonymous = client()
        .get(format!("{}/v1.0/me/transitiveMemberOf", idp.graph_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(idp.graph_calls(), 6);
}

#[tokio::test]
async fn the_okta_groups_api_pages_with_link_headers_past_the_100_group_claim() {
    let idp = TestIdp::start().await;
    let spec = okta_login_spec("erin@example.com", &okta_group_names(130));
    assert_eq!(spec.groups.as_ref().unwrap().as_array().unwrap().len(), 100);
    idp.set_next_login(spec.clone());
    idp.with_knobs(|k| k.okta_page_size_cap = 50);
    let mut url = format!("{}/api/v1/users/{}/groups", idp.base_url(), spec.sub);
    let mut names = Vec::new();
    loop {
        let response = client()
            .get(&url)
            .header("authorization", format!("SSWS {}", idp.okta_api_token()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let next = response
            .headers()
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.ends_with("rel=\"next\""));
        let page: Vec<Value> = response.json().await.unwrap();
        names.extend(
            page.iter()
                .map(|g| g["profile"]["name"].as_str().unwrap().to_owned()),
        );
        match next {
            Some(link) => url = link[1..link.find('>').unwrap()].to_owned(),
            None => break,
        }
    }
    assert_eq!(names, okta_group_names(130));
    let unauthorised = client().get(&url).bearer_auth("x").send().await.unwrap();
    assert_eq!(unauthorised.status(), 401);
    assert_eq!(idp.okta_api_calls(), 4);
}

#[tokio::test]
async fn an_es256_token_verifies_against_the_published_ec_key() {
    let idp = TestIdp::start().await;
    idp.with_knobs(|k| {
        k.alg = Alg::Es256;
        k.jwks_ec_key = true;
    });
    let tokens = login(&idp).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.kid, Some(idp.ec_kid()));
    let set = jwks(&idp).await;
    let key = DecodingKey::from_jwk(set.find(&idp.ec_kid()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[idp.client_id()]);
    jsonwebtoken::decode::<Value>(id_token, &key, &validation).unwrap();
    // A corrupted signature no longer verifies (security case 10, bad-sig-es256).
    idp.with_knobs(|k| k.corrupt_signature = true);
    let tokens = login(&idp).await;
    let corrupted = tokens["id_token"].as_str().unwrap();
    assert!(jsonwebtoken::decode::<Value>(corrupted, &key, &validation).is_err());
}

#[tokio::test]
async fn multi_tenant_discovery_names_a_template_and_tokens_carry_the_users_tenant() {
    let idp = TestIdp::start_with(TestIdpOptions::entra_multi_tenant()).await;
    assert!(idp.issuer().ends_with("/common/v2.0"));
    let doc: Value = reqwest::get(idp.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["issuer"],
        json!(format!("{}/{{tenantid}}/v2.0", idp.base_url()))
    );
    assert!(
        doc.get("authorization_response_iss_parameter_supported")
            .is_none()
    );
    let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
    idp.set_next_login(EntraUser::new(tid, "frank@outlook.test").hasgroups_login_spec());
    let params = callback_params(&idp, RFC7636_CHALLENGE).await;
    assert_eq!(param(&params, "iss"), None);
    let code = param(&params, "code").unwrap();
    let tokens: Value = redeem(&idp, code, RFC7636_VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    let claims = decode_segment(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(
        claims["iss"],
        json!(format!("{}/{tid}/v2.0", idp.base_url()))
    );
    assert_eq!(claims["tid"], tid);
    assert_eq!(claims["hasgroups"], true);
    assert!(claims.get("groups").is_none());
}

#[tokio::test]
async fn groups_can_be_released_only_in_userinfo_whose_sub_can_be_bent() {
    let idp = TestIdp::start().await;
    idp.set_next_login(LoginSpec::new("00u1", "gail@example.com").with_groups(["Everyone"]));
    idp.with_knobs(|k| k.groups_placement = crate::test_idp::GroupsPlacement::UserinfoOnly);
    let tokens = login(&idp).await;
    assert!(
        decode_segment(tokens["id_token"].as_str().unwrap(), 1)
            .get("groups")
            .is_none()
    );
    let userinfo = |token: String| {
        client()
            .get(idp.userinfo_endpoint())
            .bearer_auth(token)
            .send()
    };
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let claims: Value = userinfo(access_token.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&claims["sub"], &claims["groups"]),
        (&json!("00u1"), &json!(["Everyone"]))
    );
    idp.with_knobs(|k| k.userinfo_set.insert("sub".into(), json!("00u2")));
    let claims: Value = userinfo(access_token).await.unwrap().json().await.unwrap();
    assert_eq!(claims["sub"], "00u2");
    assert_eq!(userinfo("forged".into()).await.unwrap().status(), 401);
    assert_eq!(idp.userinfo_calls(), 3);
}

#[tokio::test]
async fn broken_token_shapes_and_a_missing_id_token_are_served_on_request() {
    use crate::test_idp::TokenShape;
    let idp = TestIdp::start().await;
    idp.with_knobs(|k| k.shape = TokenShape::FiveSegments);
    let tokens = login(&idp).await;
    assert_eq!(tokens["id_token"].as_str().unwrap().split('.').count(), 5);
    idp.with_knobs(|k| k.shape = TokenShape::NonJsonPayload);
    let tokens = login(&idp).await;
    let payload = tokens["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(payload).unwrap()).is_err());
    idp.with_knobs(|k| {
        k.shape = TokenShape::Jws;
        k.alg = Alg::None;
        k.omit_kids();
    });
    let tokens = login(&idp).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert!(id_token.ends_with('.'));
    assert_eq!(
        decode_segment(id_token, 0),
        json!({ "alg": "none", "typ": "JWT" })
    );
    idp.with_knobs(|k| k.token_response_remove.push("id_token".into()));
    assert!(login(&idp).await.get("id_token").is_none());
}
