//! Records of teamgate's own signing keys for the downstream assertion (ES256). Exactly one
//! key signs at a time; retired keys stay published until their last assertion has expired.

/// One stored key.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub private_der: Vec<u8>,
    /// The public point's coordinates, base64url without padding.
    pub x: String,
    pub y: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When a newer key took over signing; `None` for the signing key.
    pub retired_at: Option<i64>,
    /// Until when a retired key stays in the JWKS.
    pub publish_until: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    // The private key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

/// One stored RS256 key (for ID tokens), with the same life cycle as [`StoredKey`].
#[derive(Clone)]
pub struct StoredRsaKey {
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub private_der: Vec<u8>,
    /// The public modulus and exponent, base64url without padding.
    pub n: String,
    pub e: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

impl std::fmt::Debug for StoredRsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRsaKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}
