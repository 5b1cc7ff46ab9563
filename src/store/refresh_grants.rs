//! Records of refresh grants (IdP quirk E7) kept in the database, so that any replica can
//! re-evaluate a user's groups and the loss of the replica that signed the user in loses
//! nothing. The refresh token is sealed (AES-256-GCM) by the sign-in use case before it gets
//! here: the store only ever holds the ciphertext.

/// One stored grant; times in unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefreshGrant {
    pub user_id: i64,
    pub provider: String,
    /// The ID token's `iss` and `sub` at login.
    pub issuer: String,
    pub sub: String,
    /// The stored subject (groups cache key).
    pub subject: String,
    /// nonce || ciphertext || tag of the refresh token.
    pub token: Vec<u8>,
    /// Which login stored it: a newer login replaces the grant, and a re-evaluation of the old
    /// one must then not put it back.
    pub login_id: String,
    pub interval_ms: i64,
    pub next_at: i64,
    pub until_at: i64,
}
