//! The authorization code flow (OIDC Core §3.1) with PKCE S256, state and nonce: `start` builds
//! the redirect to the IdP; `finish` checks the callback, exchanges the code, verifies the ID
//! token and returns who signed in and with which groups. Nothing here writes the database.

use std::collections::HashMap;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use serde_json::{Map, Value};
use tower_sessions::Session;

use super::pending::{self, PendingLogin};
use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::domain::Clock;
use crate::domain::secret::Secret;
use crate::idp::claims;
use crate::idp::provider::{ProviderRuntime, TENANT_TEMPLATE, error_chain, is_multi_tenant};
use crate::idp::verify::{self, NonceCheck};
use crate::signin::{LoginError, VerifiedLogin};

pub fn redirect_uri(config: &Config, provider: &ProviderConfig) -> String {
    config.server.url(&format!("/callback/{}", provider.id))
}

/// The scopes requested: openid (always added by openidconnect), email and profile so the
/// claims the broker needs are released (security case 13), `groups` for Okta (IdP quirk O1).
fn scopes(provider: &ProviderConfig) -> Vec<String> {
    let mut s = vec!["email".to_owned(), "profile".to_owned()];
    if provider.kind == ProviderKind::Okta {
        s.push("groups".into());
    }
    // A refresh token is what lets groups be re-read without a new sign-in (E7).
    if provider.refresh_interval.is_some() {
        s.push("offline_access".into());
    }
    for extra in &provider.extra_scopes {
        if !s.contains(extra) && extra != "openid" {
            s.push(extra.clone());
        }
    }
    s
}

/// Begin a login: remember state, nonce and PKCE verifier in the session and return the IdP
/// authorization URL to redirect the browser to. `force_login` asks the IdP to authenticate
/// the user again (OIDC Core §3.1.2.1 `prompt=login`).
#[allow(clippy::too_many_arguments)]
pub async fn start(
    config: &Config,
    clock: &Clock,
    runtime: &ProviderRuntime,
    provider: &ProviderConfig,
    secret: Option<ClientSecret>,
    session: &Session,
    return_to: String,
    force_login: bool,
) -> Result<String, LoginError> {
    let metadata = runtime.metadata().await?;
    let client = CoreClient::from_provider_metadata(
        (*metadata).clone(),
        ClientId::new(provider.client_id.clone()),
        secret,
    )
    .set_redirect_uri(redirect_uri_of(config, provider)?);
    // RFC 7636 §4.2: S256 only; the verifier is 32 random bytes (43 characters).
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in scopes(provider) {
        request = request.add_scope(Scope::new(scope));
    }
    if force_login {
        request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
    }
    let (url, state, nonce) = request.url();
    pending::push(
        session,
        PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            provider: provider.id.to_string(),
            issuer: metadata.issuer().to_string(),
            return_to,
            created: clock.unix(),
        },
        clock,
    )
    .await
    .map_err(|e| LoginError::Internal(format!("session: {e}")))?;
    Ok(url.to_string())
}

fn redirect_uri_of(config: &Config, provider: &ProviderConfig) -> Result<RedirectUrl, LoginError> {
    RedirectUrl::new(redirect_uri(config, provider))
        .map_err(|e| LoginError::Internal(format!("redirect URI: {e}")))
}

/// Parse the callback query, refusing repeated parameters (RFC 6749 §3.1).
pub fn parse_callback_query(raw: Option<&str>) -> Result<HashMap<String, String>, LoginError> {
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if params.insert(k.to_string(), v.to_string()).is_some() {
            return Err(LoginError::RepeatedParameter(k.to_string()));
        }
    }
    Ok(params)
}

/// Check a callback and turn it into a verified login.
pub async fn finish(
    config: &Config,
    clock: &Clock,
    runtime: &ProviderRuntime,
    provider: &ProviderConfig,
    secret: Option<ClientSecret>,
    session: &Session,
    params: &HashMap<String, String>,
) -> Result<VerifiedLogin, LoginError> {
    let state = params.get("state").ok_or(LoginError::StateMissing)?;
    let login = pending::take(session, state, clock)
        .await
        .map_err(|e| LoginError::Internal(format!("session: {e}")))?
        .ok_or(LoginError::StateUnknown)?;
    // Mix-up defence: the callback must come back to the provider the login started at.
    if login.provider != provider.id.as_str() {
        return Err(LoginError::ProviderMismatch {
            expected: login.provider,
            got: provider.id.to_string(),
        });
    }
    let metadata = runtime.metadata().await?;
    check_response_issuer(
        params.get("iss").map(String::as_str),
        &login.issuer,
        &metadata,
    )?;
    if let Some(error) = params.get("error") {
        return Err(LoginError::IdpRefused {
            error: error.chars().take(64).collect(),
            description: params
                .get("error_description")
                .map(|d| d.chars().take(200).collect())
                .unwrap_or_default(),
        });
    }
    let code = params.get("code").ok_or(LoginError::CodeMissing)?;
    let client = CoreClient::from_provider_metadata(
        (*metadata).clone(),
        ClientId::new(provider.client_id.clone()),
        secret,
    )
    .set_redirect_uri(redirect_uri_of(config, provider)?);
    let http = |req| runtime.http().call(req);
    let token = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(|e| LoginError::IdpUnavailable(format!("no token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
        .request_async(&http)
        .await
        .map_err(token_error)?;
    let id_token = token
        .extra_fields()
        .id_token()
        .ok_or(LoginError::NoIdToken)?;
    let verified = verify::id_token(
        config,
        runtime,
        &metadata,
        provider,
        id_token,
        NonceCheck::Equals(&login.nonce),
        Some(token.access_token()),
    )
    .await?;
    // RFC 9207 §2.4: the response's `iss` names the same issuer as the ID token (for a
    // multi-tenant provider only the ID token says which tenant, so it is compared here).
    if let Some(iss) = params.get("iss")
        && iss != &verified.issuer
    {
        return Err(LoginError::ResponseIssuer(format!(
            "iss {iss:?} differs from the ID token's issuer {:?}",
            verified.issuer
        )));
    }
    let claims = verified.claims;
    let subject = subject_of(provider, &claims)?;
    let (email, email_verified) = claims::email(provider, &claims);
    let name = claims::display_name(&claims);
    let groups = claims::groups(&claims, provider)?;
    Ok(VerifiedLogin {
        provider: provider.id.to_string(),
        subject,
        email,
        email_verified,
        name,
        groups,
        claims,
        issuer: verified.issuer,
        access_token: Secret::new(token.access_token().secret().clone()),
        id_token: Secret::new(id_token.to_string()),
        refresh_token: token
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone())),
        return_to: login.return_to,
    })
}

/// RFC 9207 §2.4: when the response carries `iss` it must equal the issuer the login started
/// at, compared as plain strings; when the IdP advertises the parameter it must be present.
fn check_response_issuer(
    iss: Option<&str>,
    expected: &str,
    metadata: &crate::idp::metadata::Metadata,
) -> Result<(), LoginError> {
    match iss {
        Some(iss) if iss == expected => Ok(()),
        // Multi-tenant: any tenant's issuer for now; `finish` then requires it to equal the
        // issuer the ID token is verified against, which is checked against the allow-list.
        Some(iss) if matches_template(iss, expected) => Ok(()),
        Some(iss) => Err(LoginError::ResponseIssuer(format!(
            "iss {iss:?} is not the expected {expected:?}"
        ))),
        None if metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            == Some(true) =>
        {
            Err(LoginError::ResponseIssuer(
                "iss missing although the IdP advertises it".into(),
            ))
        }
        None => Ok(()),
    }
}

/// True when `iss` is `template` with its `{tenantid}` replaced by a GUID.
fn matches_template(iss: &str, template: &str) -> bool {
    let Some((before, after)) = template.split_once(TENANT_TEMPLATE) else {
        return false;
    };
    iss.len() > before.len() + after.len()
        && iss.starts_with(before)
        && iss.ends_with(after)
        && verify::is_guid(&iss[before.len()..iss.len() - after.len()])
}

/// The stable subject (security case 28, IdP quirk E10), never an email or upn: `sub`, or for
/// Entra the `oid`. A single-tenant Entra provider pins the tenant through its issuer, so
/// (provider, `oid`) is (`tid`, `oid`) and equals the SCIM `externalId`; a multi-tenant
/// provider keys users by `{tid}/{oid}` so two tenants' objects can never meet.
pub fn subject_of(
    provider: &ProviderConfig,
    claims: &Map<String, Value>,
) -> Result<String, LoginError> {
    let claim = |key: &str| {
        claims
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| LoginError::InvalidIdToken(format!("no {key} claim")))
    };
    // The `sub` is required of every ID token (OIDC Core §2), Entra's included (case 3).
    let sub = claim("sub")?;
    if provider.kind != ProviderKind::Entra {
        return Ok(sub);
    }
    let oid = claim("oid")?;
    if is_multi_tenant(provider) {
        Ok(format!("{}/{oid}", claim("tid")?.to_ascii_lowercase()))
    } else {
        Ok(oid)
    }
}

fn token_error<RE: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    e: openidconnect::RequestTokenError<RE, T>,
) -> LoginError {
    use openidconnect::RequestTokenError::*;
    match &e {
        Request(_) => LoginError::IdpUnavailable(format!("token endpoint: {}", error_chain(&e))),
        ServerResponse(_) | Parse(_, _) | Other(_) => LoginError::TokenExchange(error_chain(&e)),
    }
}
