//! Refresh tokens sealed at rest: AES-256-GCM (ring's AEAD, already in the tree through
//! rustls), the key derived with HKDF-SHA256 from `server.secret_key_*`, a random 96-bit nonce
//! per token, and the grant's user and provider as associated data (a sealed token copied
//! into another user's row does not open).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::domain::secret::Secret;

/// Why a sealed token could not be made or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot seal the refresh token")]
    Seal,
    #[error("a sealed refresh token does not open (another secret key, or a damaged row)")]
    Open,
}

pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

/// HKDF output length for AES-256.
struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        32
    }
}

impl Sealer {
    pub fn new(secret: &Secret) -> Result<Sealer, SealError> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"teamgate refresh grants v1");
        let prk = salt.extract(secret.expose().as_bytes());
        let okm = prk
            .expand(&[b"aes-256-gcm"], KeyLen)
            .map_err(|_| SealError::Seal)?;
        let mut bytes = [0u8; 32];
        okm.fill(&mut bytes).map_err(|_| SealError::Seal)?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::Seal)?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    fn aad(user_id: i64, provider: &str) -> Vec<u8> {
        format!("{user_id}\u{0}{provider}").into_bytes()
    }

    /// nonce || ciphertext || tag.
    pub fn seal(&self, user_id: i64, provider: &str, plain: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Seal)?;
        let mut buf = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(user_id, provider)),
                &mut buf,
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, user_id: i64, provider: &str, sealed: &[u8]) -> Result<Secret, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(Self::aad(user_id, provider)), &mut buf)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec())
            .map(Secret::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(key: &str) -> Sealer {
        Sealer::new(&Secret::new(key.into())).unwrap()
    }

    #[test]
    fn a_sealed_token_opens_only_with_its_key_user_and_provider() {
        let s = sealer("0123456789abcdef0123456789abcdef");
        let sealed = s.seal(7, "entra", "refresh-token-value").unwrap();
        assert!(
            !sealed
                .windows(b"refresh-token-value".len())
                .any(|w| w == b"refresh-token-value"),
            "no plaintext at rest"
        );
        assert_eq!(
            s.open(7, "entra", &sealed).unwrap().expose(),
            "refresh-token-value"
        );
        assert!(s.open(8, "entra", &sealed).is_err(), "another user's row");
        assert!(s.open(7, "okta", &sealed).is_err(), "another provider");
        let other = sealer("another key, also thirty-two chars!");
        assert!(other.open(7, "entra", &sealed).is_err(), "another key");
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(s.open(7, "entra", &damaged).is_err(), "a damaged row");
    }

    #[test]
    fn two_seals_of_one_token_differ() {
        let s = sealer("0123456789abcdef0123456789abcdef");
        assert_ne!(s.seal(1, "p", "t").unwrap(), s.seal(1, "p", "t").unwrap());
    }
}
