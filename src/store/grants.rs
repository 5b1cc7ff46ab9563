//! Records of teamgate's OpenID provider: grants (one authorization of a client by a signed-in
//! user, with its code) and the access and refresh tokens issued under them. Codes and tokens
//! are stored only as SHA-256 hashes; a grant belongs to the browser session it was made in,
//! so ending the session ends the grant and its tokens.

use serde::Serialize;

/// A grant to store when a code is issued.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub client_id: String,
    pub user_id: i64,
    /// `sessions.id` (the hashed session id).
    pub session_id: String,
    pub session_generation: i64,
    pub code_hash: [u8; 32],
    pub code_expires_at: i64,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// Space-separated.
    pub scopes: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub created_at: i64,
}

/// A stored grant.
#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: i64,
    pub client_id: String,
    pub user_id: i64,
    pub session_id: String,
    pub session_generation: i64,
    pub code_expires_at: i64,
    pub code_used_at: Option<i64>,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scopes: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub created_at: i64,
    pub last_used_at: i64,
}

/// Access token (userinfo) or refresh token (the token endpoint's `refresh_token` grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// A stored token.
#[derive(Debug, Clone)]
pub struct OAuthTokenRow {
    pub grant_id: i64,
    pub kind: TokenKind,
    pub expires_at: i64,
    /// Set when a refresh token was rotated.
    pub used_at: Option<i64>,
}

/// What the admin pages show per client.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientUsage {
    pub client_id: String,
    /// Unix seconds of the last code or token issued to the client, if any.
    pub last_used_at: Option<i64>,
    /// Refresh tokens that can still be used.
    pub active_refresh_tokens: i64,
    /// Users holding a live grant.
    pub users: i64,
}
