//! ID tokens (OIDC Core §2) as compact JWS (RFC 7515 §7.1): the user's claims, then the knobs'
//! overrides, signed the way the knobs say, the wrong ways included.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::LoginSpec;
use super::keys::{self, ROGUE, b64};
use super::knobs::{Alg, GroupsPlacement, Kid, Knobs, TokenShape};

/// Lifetime of ID and access tokens.
pub const TOKEN_LIFETIME_SECS: u64 = 3600;

/// What one ID token is issued for, besides the user.
pub struct Issue<'a> {
    pub iss: &'a str,
    pub aud: &'a str,
    /// The authorization request's nonce; none on refresh (OIDC Core §12.2).
    pub nonce: Option<&'a str>,
    pub access_token: &'a str,
    pub now: u64,
}

/// The claims of an ID token for `spec`: standard claims, then the user's extra claims, then
/// the knobs' overrides and removals, so a test can bend any of them.
pub fn claims(spec: &LoginSpec, issue: &Issue<'_>, knobs: &Knobs) -> Map<String, Value> {
    let mut claims = Map::new();
    let mut put = |name: &str, value: Value| {
        claims.insert(name.to_owned(), value);
    };
    put("iss", json!(issue.iss));
    put("sub", json!(spec.sub));
    put("aud", json!(issue.aud));
    put("iat", json!(issue.now));
    put("exp", json!(issue.now + TOKEN_LIFETIME_SECS));
    put("auth_time", json!(issue.now));
    if let Some(nonce) = issue.nonce {
        put("nonce", json!(nonce));
    }
    // OIDC Core §3.1.3.6: the left half of the SHA-256 of the access token (every alg this IdP
    // signs with is a SHA-256 one); optional in the code flow, sent so `at_hash` gets checked.
    put(
        "at_hash",
        json!(b64(&Sha256::digest(issue.access_token)[..16])),
    );
    if let Some(email) = &spec.email {
        put("email", json!(email));
    }
    if let Some(verified) = spec.email_verified {
        put("email_verified", json!(verified));
    }
    if let Some(name) = &spec.name {
        put("name", json!(name));
    }
    if let Some(groups) = &spec.groups
        && knobs.groups_placement != GroupsPlacement::UserinfoOnly
    {
        put("groups", groups.clone());
    }
    apply(&mut claims, &spec.extra_claims, &[]);
    apply(&mut claims, &knobs.id_token_set, &knobs.id_token_remove);
    claims
}

/// Set `set` over `target` verbatim, then remove `remove`.
pub fn apply(target: &mut Map<String, Value>, set: &Map<String, Value>, remove: &[String]) {
    target.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    for name in remove {
        target.remove(name);
    }
}

/// Encode and sign `claims` as the knobs say; `current` is the pool slot of the current RSA key.
pub fn sign(claims: &Map<String, Value>, knobs: &Knobs, current: usize) -> String {
    let pool = keys::pool();
    let payload = match knobs.shape {
        TokenShape::NonJsonPayload => b"{this is not JSON".to_vec(),
        TokenShape::Jws | TokenShape::FiveSegments => serde_json::to_vec(claims).unwrap(),
    };
    if knobs.shape == TokenShape::FiveSegments {
        // RFC 7516 §7.1 compact JWE: header, encrypted key, IV, ciphertext, tag.
        let header = json!({
            "alg": "RSA-OAEP", "enc": "A256GCM", "cty": "JWT", "kid": pool.rsa[current].kid
        });
        return [
            b64(header.to_string()),
            b64(rand::random::<[u8; 32]>()),
            b64(rand::random::<[u8; 12]>()),
            b64(&payload),
            b64(rand::random::<[u8; 16]>()),
        ]
        .join(".");
    }
    let current_key = &pool.rsa[current];
    let rsa_key = if knobs.sign_with_rogue_key {
        &pool.rsa[ROGUE]
    } else {
        current_key
    };
    let (alg, published_kid) = match knobs.alg {
        Alg::Rs256 => ("RS256", &current_key.kid),
        Alg::Es256 => ("ES256", &pool.ec.kid),
        Alg::Hs256WithRsaPublicKey => ("HS256", &current_key.kid),
        Alg::None => ("none", &current_key.kid),
    };
    let mut header = Map::new();
    header.insert("alg".into(), json!(alg));
    header.insert("typ".into(), json!("JWT"));
    match &knobs.kid {
        Kid::Published => {
            header.insert("kid".into(), json!(published_kid));
        }
        Kid::Fixed(kid) => {
            header.insert("kid".into(), json!(kid));
        }
        Kid::Omit => {}
    }
    apply(&mut header, &knobs.header_set, &knobs.header_remove);
    let signing_input = format!(
        "{}.{}",
        b64(Value::Object(header).to_string()),
        b64(&payload)
    );
    let mut signature = match knobs.alg {
        Alg::Rs256 => rsa_key.rs256(signing_input.as_bytes()),
        Alg::Es256 => pool.ec.es256(signing_input.as_bytes()),
        // The attacker only has what the JWKS publishes: the current key.
        Alg::Hs256WithRsaPublicKey => {
            keys::hs256(current_key.public_pem.as_bytes(), signing_input.as_bytes())
        }
        Alg::None => Vec::new(),
    };
    if knobs.corrupt_signature && !signature.is_empty() {
        let middle = signature.len() / 2;
        signature[middle] ^= 0x5a;
    }
    format!("{signing_input}.{}", b64(signature))
}
