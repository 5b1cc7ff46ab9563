//! The provider's write transactions: issue a code for a signed-in user, redeem it once, rotate
//! a refresh token, and the userinfo read. Each write runs in ONE transaction that reads the
//! config in force, the user and their memberships at commit time; a refusal that must leave
//! a trace (a burnt code, a revoked grant) is returned as a value from the job so that the
//! trace commits, and turned into an error after.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::claims::{UserClaims, allowed, granted_scopes, user_claims};
use super::{
    ACCESS_TOKEN_TTL_SECS, Authorize, AuthorizeError, CODE_TTL_SECS, TokenRefusal, UserinfoError,
    hash_token,
};
use crate::config::{ClientConfig, Config};
use crate::membership::Identity;
use crate::store::audit::{Entry, Trigger, TriggerKind};
use crate::store::grants::{GrantRow, NewGrant, TokenKind};
use crate::store::users::UserRecord;
use crate::store::{StoreError, WriteTx};

/// The browser's signed-in state, as the adapter read it from the session.
#[derive(Debug, Clone)]
pub struct SignedInUser {
    pub user_id: i64,
    /// `sessions.id` (the hashed session id).
    pub session_id: String,
    pub generation: i64,
    /// Unix seconds of the teamgate login: the ID token's `auth_time`.
    pub login_at: i64,
}

/// What the authorization request asked for, already checked by the adapter.
#[derive(Debug, Clone)]
pub struct CodeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// As requested; only the supported scopes are granted.
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
}

/// What a successful code or refresh redemption yields: everything the ID token and the token
/// response need.
#[derive(Debug, Clone)]
pub struct Issued {
    pub client: ClientConfig,
    pub user: UserRecord,
    pub claims: UserClaims,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub auth_time: i64,
    /// The session the grant belongs to (the ID token's `sid`).
    pub session_id: String,
    pub access_expires_in: i64,
}

/// The outcome of a job that may refuse but must commit the refusal's trace.
enum Outcome {
    Issued(Box<Issued>),
    Refused(TokenRefusal),
}

/// The user and identity behind a grant, when the grant still stands: the user is active,
/// their generation has not moved, and the client still lets them in under the config in force.
fn still_valid(
    tx: &dyn WriteTx,
    config: &Config,
    grant: &GrantRow,
) -> Result<Result<(ClientConfig, UserRecord, Identity), TokenRefusal>, StoreError> {
    let Some(client) = config.client(&grant.client_id).cloned() else {
        return Ok(Err(TokenRefusal::UnknownRefresh));
    };
    let user = match tx.user(grant.user_id)? {
        Some(u) if u.active && u.session_generation == grant.session_generation => u,
        _ => return Ok(Err(TokenRefusal::UserGone)),
    };
    let identity = Identity::build(config, &user, tx.memberships(user.id)?);
    if !allowed(&client, &identity) {
        return Ok(Err(TokenRefusal::NotAllowed));
    }
    Ok(Ok((client, user, identity)))
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) equals the stored challenge, in constant time.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// RFC 7636 §4.1: a code verifier is 43 to 128 unreserved characters.
pub fn is_code_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn audit(
    tx: &dyn WriteTx,
    now: &str,
    request_id: &str,
    user: Option<(i64, &str)>,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let trigger = Trigger::new(
        TriggerKind::Client,
        Some(request_id.to_owned()),
        Some(detail.to_owned()),
    );
    tx.record_audit(
        now,
        &trigger,
        &Entry {
            user_id: user.map(|u| u.0),
            user_label: user.map(|u| u.1),
            action,
            detail: Some(detail),
            ..Entry::default()
        },
    )
}

impl Authorize {
    /// The signed-in user may sign in to `client_id`: check it against the config in force,
    /// store a new grant holding the code's hash, write the audit row, and return the code.
    pub async fn issue_code(
        &self,
        who: SignedInUser,
        request: CodeRequest,
        code: String,
        request_id: &str,
    ) -> Result<String, AuthorizeError> {
        let live = self.config.clone();
        let clock = self.clock.clone();
        let session_absolute =
            i64::try_from(live.get().server.session_absolute.as_secs()).unwrap_or(i64::MAX);
        let code_hash = hash_token(&code);
        let request_id = request_id.to_owned();
        self.store
            .write(move |tx| {
                let config = live.get();
                let client = config
                    .client(&request.client_id)
                    .ok_or_else(|| AuthorizeError::UnknownClient(request.client_id.clone()))?;
                let user = match tx.user(who.user_id)? {
                    Some(u) if u.active && u.session_generation == who.generation => u,
                    _ => return Err(AuthorizeError::SessionGone),
                };
                // The grant hangs off this session row (and dies with it).
                if tx.session(&who.session_id)?.is_none() {
                    return Err(AuthorizeError::SessionGone);
                }
                let identity = Identity::build(&config, &user, tx.memberships(user.id)?);
                if !allowed(client, &identity) {
                    return Err(AuthorizeError::NotAllowed {
                        user: user.label(),
                        client: client.id.clone(),
                    });
                }
                let now = clock.unix();
                let scopes = granted_scopes(&request.scope).join(" ");
                tx.insert_grant(&NewGrant {
                    client_id: client.id.clone(),
                    user_id: user.id,
                    session_id: who.session_id.clone(),
                    session_generation: who.generation,
                    code_hash,
                    code_expires_at: now + CODE_TTL_SECS,
                    redirect_uri: request.redirect_uri.clone(),
                    code_challenge: request.code_challenge.clone(),
                    nonce: request.nonce.clone(),
                    scopes: scopes.clone(),
                    auth_time: who.login_at,
                    expires_at: who.login_at.saturating_add(session_absolute),
                    created_at: now,
                })?;
                audit(
                    tx,
                    &clock.stamp(),
                    &request_id,
                    Some((user.id, &user.label())),
                    "client.signin",
                    &format!("signed in to client {} (scope {scopes})", client.id),
                )?;
                Ok(())
            })
            .await?;
        Ok(code)
    }

    /// The `authorization_code` grant (RFC 6749 §4.1.3): the code is redeemed at most once
    /// and burnt whatever the checks say; a second redemption revokes the grant and every
    /// token issued with it. `access` and `refresh` are the new tokens' values, made by the
    /// caller so that a re-run of the job stores the same ones.
    #[allow(clippy::too_many_arguments)]
    pub async fn redeem_code(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        access: &str,
        refresh: &str,
        request_id: &str,
    ) -> Result<Issued, TokenRefusal> {
        let live = self.config.clone();
        let clock = self.clock.clone();
        let code_hash = hash_token(code);
        let (access_hash, refresh_hash) = (hash_token(access), hash_token(refresh));
        let client_id = client_id.to_owned();
        let redirect_uri = redirect_uri.map(str::to_owned);
        let verifier = verifier.map(str::to_owned);
        let request_id = request_id.to_owned();
        let outcome = self
            .store
            .write(move |tx| {
                let now = clock.unix();
                let Some(grant) = tx.grant_by_code(&code_hash)? else {
                    return Ok(Outcome::Refused(TokenRefusal::UnknownCode));
                };
                if grant.code_used_at.is_some() {
                    tx.delete_grant(grant.id)?;
                    let label = tx.user(grant.user_id)?.map(|u| u.label());
                    audit(
                        tx,
                        &clock.stamp(),
                        &request_id,
                        label.as_deref().map(|l| (grant.user_id, l)),
                        "client.code_replayed",
                        &format!(
                            "authorization code of client {} presented again: its tokens are revoked",
                            grant.client_id
                        ),
                    )?;
                    return Ok(Outcome::Refused(TokenRefusal::CodeReplayed));
                }
                // Burnt now, whatever follows: a wrong verifier cannot be retried.
                tx.mark_code_used(grant.id, now)?;
                let refusal = if grant.code_expires_at <= now {
                    Some(TokenRefusal::UnknownCode)
                } else if grant.client_id != client_id {
                    Some(TokenRefusal::OtherClient)
                } else if redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
                    // OIDC Core §3.1.3.2 / RFC 6749 §4.1.3: the same redirect_uri, required
                    // because every authorization request here names one.
                    Some(TokenRefusal::RedirectMismatch)
                } else {
                    match (&grant.code_challenge, &verifier) {
                        (Some(challenge), Some(v)) if is_code_verifier(v) => {
                            (!verifier_matches(v, challenge)).then_some(TokenRefusal::VerifierMismatch)
                        }
                        (Some(_), _) => Some(TokenRefusal::VerifierMissing),
                        // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is
                        // a PKCE downgrade attempt.
                        (None, Some(_)) => Some(TokenRefusal::VerifierUnexpected),
                        (None, None) => None,
                    }
                };
                if let Some(refusal) = refusal {
                    return Ok(Outcome::Refused(refusal));
                }
                let config = live.get();
                let (client, user, identity) = match still_valid(tx, &config, &grant)? {
                    Ok(v) => v,
                    Err(refusal) => {
                        tx.delete_grant(grant.id)?;
                        return Ok(Outcome::Refused(refusal));
                    }
                };
                store_token_pair(tx, &grant, &access_hash, &refresh_hash, now)?;
                Ok::<_, StoreError>(Outcome::Issued(Box::new(issued(
                    client, user, &identity, &grant, now,
                ))))
            })
            .await?;
        match outcome {
            Outcome::Issued(i) => Ok(*i),
            Outcome::Refused(r) => Err(r),
        }
    }

    /// The `refresh_token` grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2): the token is
    /// used once and replaced; a second use of a rotated token revokes the grant. The user,
    /// their session and `allowed_teams` are checked again, so a user removed from the team or
    /// deactivated loses the client at the next refresh at the latest.
    pub async fn refresh(
        &self,
        client_id: &str,
        token: &str,
        access: &str,
        refresh: &str,
        request_id: &str,
    ) -> Result<Issued, TokenRefusal> {
        let live = self.config.clone();
        let clock = self.clock.clone();
        let old_hash = hash_token(token);
        let (access_hash, refresh_hash) = (hash_token(access), hash_token(refresh));
        let client_id = client_id.to_owned();
        let request_id = request_id.to_owned();
        let outcome = self
            .store
            .write(move |tx| {
                let now = clock.unix();
                let Some((row, grant)) = tx.oauth_token(&old_hash)? else {
                    return Ok(Outcome::Refused(TokenRefusal::UnknownRefresh));
                };
                if row.kind != TokenKind::Refresh || grant.client_id != client_id {
                    return Ok(Outcome::Refused(TokenRefusal::UnknownRefresh));
                }
                if row.used_at.is_some() {
                    tx.delete_grant(grant.id)?;
                    let label = tx.user(grant.user_id)?.map(|u| u.label());
                    audit(
                        tx,
                        &clock.stamp(),
                        &request_id,
                        label.as_deref().map(|l| (grant.user_id, l)),
                        "client.refresh_replayed",
                        &format!(
                            "a used refresh token of client {} presented again: its grant is revoked",
                            grant.client_id
                        ),
                    )?;
                    return Ok(Outcome::Refused(TokenRefusal::RefreshReplayed));
                }
                if row.expires_at <= now || grant.expires_at <= now {
                    return Ok(Outcome::Refused(TokenRefusal::UnknownRefresh));
                }
                let config = live.get();
                let (client, user, identity) = match still_valid(tx, &config, &grant)? {
                    Ok(v) => v,
                    Err(refusal) => {
                        tx.delete_grant(grant.id)?;
                        return Ok(Outcome::Refused(refusal));
                    }
                };
                if !tx.mark_token_used(&old_hash, now)? {
                    return Ok(Outcome::Refused(TokenRefusal::RefreshReplayed));
                }
                store_token_pair(tx, &grant, &access_hash, &refresh_hash, now)?;
                Ok::<_, StoreError>(Outcome::Issued(Box::new(issued(
                    client, user, &identity, &grant, now,
                ))))
            })
            .await?;
        match outcome {
            Outcome::Issued(i) => Ok(*i),
            Outcome::Refused(r) => Err(r),
        }
    }

    /// The claims behind a live access token (OIDC Core §5.3), read now: the user's teams
    /// and roles as they are, not as they were at sign-in.
    pub async fn userinfo(&self, access_token: &str) -> Result<UserClaims, UserinfoError> {
        let live = self.config.clone();
        let now = self.clock.unix();
        let hash = hash_token(access_token);
        self.store
            .read(move |tx| {
                let Some((row, grant)) = tx.oauth_token(&hash)? else {
                    return Err(UserinfoError::InvalidToken);
                };
                if row.kind != TokenKind::Access || row.expires_at <= now || grant.expires_at <= now
                {
                    return Err(UserinfoError::InvalidToken);
                }
                let config = live.get();
                let Some(client) = config.client(&grant.client_id) else {
                    return Err(UserinfoError::InvalidToken);
                };
                let user = match tx.user(grant.user_id)? {
                    Some(u) if u.active && u.session_generation == grant.session_generation => u,
                    _ => return Err(UserinfoError::InvalidToken),
                };
                let identity = Identity::build(&config, &user, tx.memberships(user.id)?);
                if !allowed(client, &identity) {
                    return Err(UserinfoError::InvalidToken);
                }
                let scopes: Vec<String> = grant.scopes.split(' ').map(str::to_owned).collect();
                Ok(user_claims(client, &user, &identity, &scopes))
            })
            .await
    }
}

fn issued(
    client: ClientConfig,
    user: UserRecord,
    identity: &Identity,
    grant: &GrantRow,
    now: i64,
) -> Issued {
    let scopes: Vec<String> = grant
        .scopes
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Issued {
        claims: user_claims(&client, &user, identity, &scopes),
        client,
        user,
        scopes,
        nonce: grant.nonce.clone(),
        auth_time: grant.auth_time,
        session_id: grant.session_id.clone(),
        access_expires_in: (now + ACCESS_TOKEN_TTL_SECS).min(grant.expires_at) - now,
    }
}

/// Store a new access and refresh token of `grant` (hashes only) and note its use.
fn store_token_pair(
    tx: &dyn WriteTx,
    grant: &GrantRow,
    access_hash: &[u8; 32],
    refresh_hash: &[u8; 32],
    now: i64,
) -> Result<(), StoreError> {
    tx.insert_oauth_token(
        access_hash,
        grant.id,
        TokenKind::Access,
        (now + ACCESS_TOKEN_TTL_SECS).min(grant.expires_at),
    )?;
    tx.insert_oauth_token(refresh_hash, grant.id, TokenKind::Refresh, grant.expires_at)?;
    tx.touch_grant(grant.id, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_appendix_b_verifier_matches_its_challenge() {
        assert!(verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn code_verifiers_follow_rfc_7636_syntax() {
        assert!(is_code_verifier(&"a".repeat(43)));
        assert!(is_code_verifier(&"~._-".repeat(32)));
        assert!(!is_code_verifier(&"a".repeat(42)));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}+", "a".repeat(43))));
    }
}
