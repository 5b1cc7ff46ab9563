//! The network-free core of ID-token verification ([`id_token_offline`]), which the fuzz
//! targets drive; the HTTP-level cases of security cases A-C are in `tests/api/oidc_*.rs`.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use super::{Expected, NonceCheck, id_token_offline, is_guid};
use crate::config::Config;
use crate::idp::IdpError;
use crate::idp::provider::KeySet;

const ISSUER: &str = "https://idp.example.com";

fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn keys() -> KeySet {
    let jwks = json!({ "keys": [{
        "kty": "RSA", "kid": "k1", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(key().n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key().e().to_bytes_be()),
    }]});
    KeySet::parse(jwks.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn config() -> Config {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("secret"), "s3cret").unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        r#"
[server]
public_url = "https://teamgate.example.com"

[[provider]]
id = "corp"
kind = "oidc"
issuer = "{ISSUER}"
client_id = "teamgate"
client_secret_file = "secret"

[[team]]
id = "everyone"
roles = [{{ scope = "org/acme", role = "viewer" }}]
"#
    );
    Config::parse(&text, &dir.path().join("teamgate.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn sign(claims: &Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let der = key().to_pkcs1_der().unwrap_or_else(|e| panic!("{e}"));
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes()))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn claims() -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": ISSUER, "sub": "u-1", "aud": "teamgate", "nonce": "n-1",
        "iat": now, "exp": now + 300, "groups": ["g-1"],
    })
}

/// What the test provider's tokens are checked against, with `nonce`.
fn expected<'a>(config: &'a Config, nonce: &'a str) -> Expected<'a> {
    Expected {
        document_issuer: ISSUER,
        provider: &config.providers[0],
        nonce: NonceCheck::Equals(nonce),
        access_token: None,
        skew: TimeDelta::seconds(60),
    }
}

fn verify(compact: &str) -> Result<Value, IdpError> {
    let config = config();
    id_token_offline(compact, &keys(), &expected(&config, "n-1")).map(|v| Value::Object(v.claims))
}

#[test]
fn a_good_token_verifies_offline_with_every_claim() {
    let verified = verify(&sign(&claims(), "k1")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verified["groups"], json!(["g-1"]));
}

#[test]
fn offline_verification_refuses_what_the_callback_refuses() {
    let mut wrong_nonce = claims();
    wrong_nonce["nonce"] = json!("n-2");
    let mut expired = claims();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let mut other_audience = claims();
    other_audience["aud"] = json!("someone-else");
    let good = sign(&claims(), "k1");
    let (head, rest) = good.split_once('.').unwrap_or_default();
    let tampered = format!("{head}.{}", rest.replacen('A', "B", 1));
    for (what, token) in [
        ("wrong nonce", sign(&wrong_nonce, "k1")),
        ("expired", sign(&expired, "k1")),
        ("another audience", sign(&other_audience, "k1")),
        ("unknown key", sign(&claims(), "k2")),
        ("tampered", tampered),
        ("not a JWT", "hello".to_owned()),
        ("empty", String::new()),
        ("five segments", format!("{good}.x.y")),
    ] {
        match verify(&token) {
            Err(IdpError::InvalidIdToken(_)) => {}
            other => panic!("{what}: expected an invalid-token error, got {other:?}"),
        }
    }
}

#[test]
fn only_the_8_4_4_4_12_hex_form_is_a_guid() {
    assert!(is_guid("9188040d-6c67-4c5b-b112-36a304b66dad"));
    assert!(!is_guid("9188040d6c674c5bb11236a304b66dad"));
    assert!(!is_guid("organizations"));
    assert!(!is_guid("9188040d-6c67-4c5b-b112-36a304b66da/"));
    assert!(!is_guid("../../x"));
}

/// The fuzz seeds (`fuzz/corpus/id_token`, made by `fuzz/seeds/make_id_token_seeds.py`) run
/// on stable too: every one is refused with an error (the well-formed one because its `iat`
/// is long past), none panics.
#[test]
fn case_25_the_fuzz_seed_tokens_are_all_refused_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let jwks = std::fs::read(root.join("seeds/jwks.json")).unwrap_or_else(|e| panic!("{e}"));
    let keys = KeySet::parse(&jwks).unwrap_or_else(|e| panic!("{e}"));
    let config = config();
    let expected = expected(&config, "fuzz-nonce");
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("corpus/id_token")).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let token = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let outcome = id_token_offline(&token, &keys, &expected);
        assert!(
            matches!(outcome, Err(IdpError::InvalidIdToken(_))),
            "{}: {outcome:?}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} seeds");
    // The well-formed seed is refused for its age, not its form: its signature is good.
    let good = std::fs::read_to_string(root.join("corpus/id_token/good")).unwrap_or_default();
    match id_token_offline(&good, &keys, &expected) {
        Err(IdpError::InvalidIdToken(why)) => assert!(why.contains("too old"), "{why}"),
        other => panic!("{other:?}"),
    }
}
