//! ID-token verification on top of openidconnect's verifier, adding what it leaves out
//! (SECURITY.md key finding 1): clock skew on `exp`, an `iat` window, an algorithm allow-list
//! that never admits `none` or HMAC, `at_hash`, and one rate-limited JWKS refetch when the
//! token names an unknown key (rotation, cases 17-18 and 79-80).

use chrono::{DateTime, TimeDelta, Utc};
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJwsSigningAlgorithm};
use openidconnect::{
    AccessToken, AccessTokenHash, ClaimsVerificationError, ClientId, IssuerUrl, Nonce,
    SignatureVerificationError,
};
use serde_json::{Map, Value};

use super::error::LoginError;
use super::metadata::Metadata;
use super::provider::ProviderRuntime;
use crate::config::{Config, ProviderConfig};

/// Oldest acceptable `iat`: the token was just issued for this code exchange. Entra back-dates
/// `iat` by five minutes, so the window is ten (plus the configured skew).
const MAX_TOKEN_AGE: TimeDelta = TimeDelta::minutes(10);

/// Asymmetric algorithms only: `none` and HS* (which an attacker could MAC with the IdP's public
/// key, SECURITY.md 23) are never accepted.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 7] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Verify `token` and return all its claims.
pub async fn id_token(
    config: &Config,
    runtime: &ProviderRuntime,
    metadata: &Metadata,
    provider: &ProviderConfig,
    token: &CoreIdToken,
    nonce: &str,
    access_token: &AccessToken,
) -> Result<Map<String, Value>, LoginError> {
    let skew = TimeDelta::from_std(config.server.clock_skew).unwrap_or(TimeDelta::seconds(60));
    let nonce = Nonce::new(nonce.to_owned());
    let mut retried = false;
    loop {
        let (keys, generation) = runtime.keys().await;
        let verifier = verifier(metadata, provider, (*keys).clone(), skew);
        match token.claims(&verifier, &nonce) {
            Ok(_) => {
                check_at_hash(token, &verifier, access_token)?;
                return payload(token);
            }
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey))
                if !retried =>
            {
                retried = true;
                if !runtime.refresh_keys_after_miss(generation, metadata.jwks_uri()).await {
                    return Err(LoginError::InvalidIdToken("signed by an unknown key".into()));
                }
            }
            Err(e) => return Err(LoginError::InvalidIdToken(e.to_string())),
        }
    }
}

fn verifier(
    metadata: &Metadata,
    provider: &ProviderConfig,
    keys: openidconnect::core::CoreJsonWebKeySet,
    skew: TimeDelta,
) -> CoreIdTokenVerifier<'static> {
    let issuer: IssuerUrl = metadata.issuer().clone();
    CoreIdTokenVerifier::new_public_client(ClientId::new(provider.client_id.clone()), issuer, keys)
        .set_allowed_algs(ALLOWED_ALGS)
        // openidconnect checks `exp` against this clock with no leeway; running it `skew`
        // behind gives `exp` its tolerance (SECURITY.md 19).
        .set_time_fn(move || Utc::now() - skew)
        .set_issue_time_verifier_fn(move |iat: DateTime<Utc>| {
            let now = Utc::now();
            if iat > now + skew {
                Err(format!("iat {iat} is in the future"))
            } else if iat < now - MAX_TOKEN_AGE - skew {
                Err(format!("iat {iat} is too old"))
            } else {
                Ok(())
            }
        })
}

/// OIDC Core §3.1.3.8: when the ID token carries `at_hash` it must match the access token.
fn check_at_hash(token: &CoreIdToken, verifier: &CoreIdTokenVerifier<'_>, access_token: &AccessToken) -> Result<(), LoginError> {
    let claims = token
        .claims(verifier, |_: Option<&Nonce>| Ok(()))
        .map_err(|e| LoginError::InvalidIdToken(e.to_string()))?;
    let Some(expected) = claims.access_token_hash() else {
        return Ok(());
    };
    let alg = token.signing_alg().map_err(|e| LoginError::InvalidIdToken(e.to_string()))?;
    let key = token
        .signing_key(verifier)
        .map_err(|e| LoginError::InvalidIdToken(e.to_string()))?;
    let actual = AccessTokenHash::from_token(access_token, alg, key)
        .map_err(|e| LoginError::InvalidIdToken(format!("at_hash: {e}")))?;
    if &actual == expected {
        Ok(())
    } else {
        Err(LoginError::InvalidIdToken("at_hash does not match the access token".into()))
    }
}

/// The claims of an already verified token, as JSON (openidconnect's typed claims drop the
/// ones it does not model, such as `groups`, `oid` and `tid`).
fn payload(token: &CoreIdToken) -> Result<Map<String, Value>, LoginError> {
    use base64::Engine;
    let jwt = token.to_string();
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| LoginError::InvalidIdToken("not a compact JWS".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| LoginError::InvalidIdToken(format!("payload: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| LoginError::InvalidIdToken(format!("payload: {e}")))
}
