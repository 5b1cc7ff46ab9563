//! ID-token verification on top of openidconnect's verifier, adding what it leaves out
//! (the security checklist's key finding 1): clock skew on `exp`, an `iat` window, an algorithm allow-list
//! that never admits `none` or HMAC, `azp`, `at_hash`, one rate-limited JWKS refetch when the
//! token names an unknown key (rotation, cases 17-18 and 79-80), and Entra's issuer rules:
//! v2.0 tokens only (E8), and for multi-tenant providers the per-tenant issuer built from a
//! GUID `tid` in the allow-list, compared exactly (E9, case 27) — never a skipped issuer check.

use chrono::{DateTime, TimeDelta, Utc};
use openidconnect::core::{CoreIdToken, CoreJwsSigningAlgorithm};
use openidconnect::{
    AccessToken, AccessTokenHash, ClaimsVerificationError, ClientId, IdTokenVerifier, IssuerUrl,
    JsonWebKey, Nonce, SignatureVerificationError,
};
use serde_json::{Map, Value};

use super::error::IdpError;
use super::jwk::{IdpJsonWebKey, IdpJsonWebKeySet};
use super::metadata::Metadata;
use super::provider::{KeySet, ProviderRuntime, TENANT_TEMPLATE};
use crate::config::{Config, ProviderConfig, ProviderKind};
pub use crate::domain::ids::is_guid;

/// Oldest acceptable `iat`: the token was just issued for this code exchange. Entra back-dates
/// `iat` by five minutes, so the window is ten (plus the configured skew).
const MAX_TOKEN_AGE: TimeDelta = TimeDelta::minutes(10);

/// Asymmetric algorithms only: `none` and HS* (which an attacker could MAC with the IdP's public
/// key, security case 23) are never accepted.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 7] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The nonce a token must carry.
#[derive(Debug, Clone, Copy)]
pub enum NonceCheck<'a> {
    /// The login's nonce (OIDC Core §3.1.3.7 step 11): required and equal.
    Equals(&'a str),
    /// A refreshed ID token (OIDC Core §12.2) carries the original nonce or none; the token
    /// comes straight from the token endpoint with client authentication.
    Refresh,
}

/// A verified ID token.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// Every claim, as JSON (openidconnect's typed claims drop `groups`, `oid`, `tid`...).
    pub claims: Map<String, Value>,
    /// The issuer the token was checked against (for Entra multi-tenant, the tenant's).
    pub issuer: String,
}

/// What a token is checked against besides its keys.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The `issuer` of the provider's discovery document (may hold Entra's `{tenantid}`).
    pub document_issuer: &'a str,
    pub provider: &'a ProviderConfig,
    pub nonce: NonceCheck<'a>,
    pub access_token: Option<&'a AccessToken>,
    /// Clock skew tolerated on `exp` and `iat`.
    pub skew: TimeDelta,
}

/// Verify `token` and return all its claims. A token naming a key the cached JWKS lacks
/// causes one (rate-limited) refetch and a second attempt.
#[allow(clippy::too_many_arguments)]
pub async fn id_token(
    config: &Config,
    runtime: &ProviderRuntime,
    metadata: &Metadata,
    provider: &ProviderConfig,
    token: &CoreIdToken,
    nonce: NonceCheck<'_>,
    access_token: Option<&AccessToken>,
) -> Result<VerifiedToken, IdpError> {
    let expected = Expected {
        document_issuer: metadata.issuer().as_str(),
        provider,
        nonce,
        access_token,
        skew: TimeDelta::from_std(config.server.clock_skew).unwrap_or(TimeDelta::seconds(60)),
    };
    let unverified = UnverifiedToken::read(token, &expected)?;
    let (keys, generation) = runtime.keys().await;
    if let Some(verified) = unverified.check(&keys, &expected)? {
        return Ok(verified);
    }
    if !runtime
        .refresh_keys_after_miss(generation, metadata.jwks_uri())
        .await
    {
        return Err(IdpError::InvalidIdToken("signed by an unknown key".into()));
    }
    let (keys, _) = runtime.keys().await;
    unverified.check(&keys, &expected)?.ok_or_else(|| {
        IdpError::InvalidIdToken("signed by an unknown key (after a JWKS refetch)".into())
    })
}

/// Verify a compact ID token against a key set already at hand, with no network: the same
/// checks as [`id_token`] minus the JWKS refetch (an unknown key is an error). Parsing
/// included, so any string may be given; used by the fuzz targets (`fuzz/`, security case 25).
pub fn id_token_offline(
    compact: &str,
    keys: &KeySet,
    expected: &Expected<'_>,
) -> Result<VerifiedToken, IdpError> {
    let token: CoreIdToken = serde_json::from_value(Value::String(compact.to_owned()))
        .map_err(|e| IdpError::InvalidIdToken(format!("not an ID token: {e}")))?;
    UnverifiedToken::read(&token, expected)?
        .check(keys, expected)?
        .ok_or_else(|| IdpError::InvalidIdToken("signed by an unknown key".into()))
}

/// A parsed token and what was read from it before its signature is checked: only to choose
/// the issuer and keys to check against; nothing from it is returned unless the token verifies.
struct UnverifiedToken<'t> {
    token: &'t CoreIdToken,
    claims: Map<String, Value>,
    issuer: String,
    tid: Option<String>,
    kid: Option<String>,
}

impl<'t> UnverifiedToken<'t> {
    fn read(token: &'t CoreIdToken, expected: &Expected<'_>) -> Result<Self, IdpError> {
        let claims = payload(token)?;
        let issuer = expected_issuer(expected.document_issuer, expected.provider, &claims)?;
        let tid = claims.get("tid").and_then(Value::as_str).map(str::to_owned);
        Ok(Self {
            token,
            claims,
            issuer,
            tid,
            kid: header_kid(token),
        })
    }

    /// One verification against `keys`: `Ok(None)` when the token names a key `keys` lacks.
    fn check(
        &self,
        keys: &KeySet,
        expected: &Expected<'_>,
    ) -> Result<Option<VerifiedToken>, IdpError> {
        let Self {
            token, issuer, kid, ..
        } = self;
        let usable = keys_for_issuer(keys, issuer, self.tid.as_deref());
        if let Some(kid) = kid {
            let names = |set: &IdpJsonWebKeySet| {
                set.keys()
                    .iter()
                    .any(|k| k.key_id().is_some_and(|id| id.as_str() == kid))
            };
            if names(&keys.set) && !names(&usable) {
                return Err(IdpError::InvalidIdToken(format!(
                    "signing key {kid:?} belongs to another issuer than {issuer:?} (E9)"
                )));
            }
        }
        let verifier = verifier(issuer, expected.provider, usable, expected.skew)?;
        // One signature check: the verified claims carry `at_hash` too.
        let result = match expected.nonce {
            NonceCheck::Equals(n) => token
                .claims(&verifier, &Nonce::new(n.to_owned()))
                .map(|c| c.access_token_hash().cloned()),
            NonceCheck::Refresh => token
                .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                .map(|c| c.access_token_hash().cloned()),
        };
        match result {
            Ok(at_hash) => {
                check_azp(&self.claims, expected.provider)?;
                if let (Some(at_hash), Some(access_token)) = (at_hash, expected.access_token) {
                    check_at_hash(token, &verifier, access_token, &at_hash)?;
                }
                Ok(Some(VerifiedToken {
                    claims: self.claims.clone(),
                    issuer: issuer.clone(),
                }))
            }
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => Ok(None),
            Err(e) => Err(IdpError::InvalidIdToken(super::provider::error_chain(&e))),
        }
    }
}

/// The issuer `token` must carry. Plain providers: the discovery document's, exactly. Entra:
/// v1.0 tokens are refused outright (E8: teamgate talks to the v2.0 endpoint only, so a v1.0 ID
/// token means a misconfigured app or a token from elsewhere). Entra multi-tenant: the
/// document's `{tenantid}` template with the token's `tid`, which must be a GUID in the
/// allow-list; `iss` is then compared with the result exactly, which also proves that the
/// tenant in `iss` is `tid` (E9).
fn expected_issuer(
    document_issuer: &str,
    provider: &ProviderConfig,
    unverified: &Map<String, Value>,
) -> Result<String, IdpError> {
    if provider.kind == ProviderKind::Entra {
        let ver = unverified.get("ver").and_then(Value::as_str);
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if ver == Some("1.0") || iss.starts_with("https://sts.windows.net/") {
            return Err(IdpError::InvalidIdToken(format!(
                "an Entra v1.0 token (ver {ver:?}, iss {iss:?}); teamgate accepts v2.0 ID tokens only: configure the issuer https://login.microsoftonline.com/<tenant>/v2.0"
            )));
        }
    }
    if !document_issuer.contains(TENANT_TEMPLATE) {
        return Ok(document_issuer.to_owned());
    }
    let tid = unverified
        .get("tid")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            IdpError::InvalidIdToken("multi-tenant issuer but the token has no tid".into())
        })?;
    if !is_guid(tid) {
        return Err(IdpError::InvalidIdToken(format!(
            "tid {tid:?} is not a GUID"
        )));
    }
    let tid = tid.to_ascii_lowercase();
    if !provider.allowed_tenants.iter().any(|t| t == &tid) {
        return Err(IdpError::InvalidIdToken(format!(
            "tenant {tid} is not in allowed_tenants of provider {}",
            provider.id
        )));
    }
    Ok(document_issuer.replace(TENANT_TEMPLATE, &tid))
}

/// The keys that may verify a token of `issuer`: a JWKS entry naming an `issuer` (Entra, E9)
/// only verifies that issuer's tokens; `{tenantid}` in it stands for the token's `tid`.
fn keys_for_issuer(keys: &KeySet, issuer: &str, tid: Option<&str>) -> IdpJsonWebKeySet {
    if keys.issuers.is_empty() {
        return (*keys.set).clone();
    }
    let usable = keys
        .set
        .keys()
        .iter()
        .filter(|k| {
            let Some(key_issuer) = k.key_id().and_then(|kid| keys.issuers.get(kid.as_str())) else {
                return true;
            };
            match (key_issuer.contains(TENANT_TEMPLATE), tid) {
                (true, Some(tid)) => {
                    key_issuer.replace(TENANT_TEMPLATE, &tid.to_ascii_lowercase()) == issuer
                }
                (true, None) => true,
                (false, _) => key_issuer == issuer,
            }
        })
        .cloned()
        .collect();
    IdpJsonWebKeySet::new(usable)
}

fn verifier(
    issuer: &str,
    provider: &ProviderConfig,
    keys: IdpJsonWebKeySet,
    skew: TimeDelta,
) -> Result<IdTokenVerifier<'static, IdpJsonWebKey>, IdpError> {
    let issuer = IssuerUrl::new(issuer.to_owned())
        .map_err(|e| IdpError::InvalidIdToken(format!("issuer: {e}")))?;
    Ok(
        IdTokenVerifier::new_public_client(ClientId::new(provider.client_id.clone()), issuer, keys)
            .set_allowed_algs(ALLOWED_ALGS)
            // openidconnect checks `exp` against this clock with no leeway; running it `skew`
            // behind gives `exp` its tolerance (security case 19).
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
            }),
    )
}

/// OIDC Core §3.1.3.7 step 5: when `azp` is present it must be our client id (security case 21).
/// openidconnect leaves this check out on purpose.
fn check_azp(claims: &Map<String, Value>, provider: &ProviderConfig) -> Result<(), IdpError> {
    match claims.get("azp") {
        None => Ok(()),
        Some(Value::String(azp)) if azp == &provider.client_id => Ok(()),
        Some(other) => Err(IdpError::InvalidIdToken(format!(
            "azp {other} is not this client"
        ))),
    }
}

/// OIDC Core §3.1.3.8: when the ID token carries `at_hash` it must match the access token.
fn check_at_hash(
    token: &CoreIdToken,
    verifier: &IdTokenVerifier<'_, IdpJsonWebKey>,
    access_token: &AccessToken,
    expected: &AccessTokenHash,
) -> Result<(), IdpError> {
    let alg = token
        .signing_alg()
        .map_err(|e| IdpError::InvalidIdToken(e.to_string()))?;
    let key = token
        .signing_key(verifier)
        .map_err(|e| IdpError::InvalidIdToken(e.to_string()))?;
    let actual = AccessTokenHash::from_token(access_token, alg, key)
        .map_err(|e| IdpError::InvalidIdToken(format!("at_hash: {e}")))?;
    if &actual == expected {
        Ok(())
    } else {
        Err(IdpError::InvalidIdToken(
            "at_hash does not match the access token".into(),
        ))
    }
}

fn segment(token: &CoreIdToken, n: usize) -> Result<Vec<u8>, IdpError> {
    use base64::Engine;
    let jwt = token.to_string();
    let part = jwt
        .split('.')
        .nth(n)
        .ok_or_else(|| IdpError::InvalidIdToken("not a compact JWS".into()))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| IdpError::InvalidIdToken(format!("segment {n}: {e}")))
}

/// The claims as JSON (see [`UnverifiedToken`]).
fn payload(token: &CoreIdToken) -> Result<Map<String, Value>, IdpError> {
    serde_json::from_slice(&segment(token, 1)?)
        .map_err(|e| IdpError::InvalidIdToken(format!("payload: {e}")))
}

fn header_kid(token: &CoreIdToken) -> Option<String> {
    let header: Map<String, Value> = serde_json::from_slice(&segment(token, 0).ok()?).ok()?;
    header.get("kid").and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests;
