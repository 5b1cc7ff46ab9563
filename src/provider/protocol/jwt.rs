//! ID tokens (OIDC Core §2, §3.1.3.6): the registered claims around a provider's user claims,
//! `at_hash`, the random values of codes and tokens, and compact JWS assembly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// An ID token's claims: the registered ones and, flattened in, the provider's user claims.
#[derive(Debug, Clone, Serialize)]
pub struct IdTokenClaims<U: Serialize> {
    pub iss: String,
    /// A single audience, so `azp` is informative only (OIDC Core §2).
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub at_hash: String,
    /// The provider's session (OIDC Front-Channel Logout §2.1 `sid`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(flatten)]
    pub user: U,
}

/// OIDC Core §3.1.3.6: base64url of the left-most half of the SHA-256 of the ASCII access token
/// (SHA-256 because the ID token is signed with RS256 or ES256).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// 256 random bits, base64url: codes and tokens (RFC 6749 §10.10 asks for values an attacker
/// cannot guess; RFC 6819 §5.1.4.2.2 for at least 128 bits).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `BASE64URL(header).BASE64URL(payload)`: the JWS signing input (RFC 7515 §5.1).
pub fn signing_input(header: &impl Serialize, payload: &impl Serialize) -> Result<String, String> {
    let header = serde_json::to_vec(header).map_err(|e| e.to_string())?;
    let payload = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    ))
}

/// The compact JWS of `input` and its signature.
pub fn compact(input: &str, signature: &[u8]) -> String {
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_openid_connect_core_example() {
        // OIDC Core Appendix A.3 (RS256): this access token has this at_hash.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn random_tokens_carry_256_bits_and_differ() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).map(|b| b.len()).ok(), Some(32));
        assert_ne!(a, random_token());
    }
}
