//! The demo IdP's RS256 signing key: loaded from (or created once into) the `settings` table so
//! that ID tokens and cached JWKS stay valid across restarts, and published as a JWK whose `kid`
//! is the key's RFC 7638 thumbprint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::DemoIdpError;
use crate::store::Store;

/// The `settings` row holding the PKCS#8 PEM private key.
const SETTING_KEY: &str = "demo_idp.rsa_private_pem";
/// RSA keys below 2048 bits are not acceptable for RS256 (NIST SP 800-131A).
const MIN_BITS: usize = 2048;

/// The public half as published at `/jwks` (RFC 7517 §4, RFC 7518 §6.3.1).
#[derive(Debug, Clone, Serialize)]
pub(super) struct PublicJwk {
    kty: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    alg: &'static str,
    kid: String,
    n: String,
    e: String,
}

/// What signing needs, prepared once: the key in jsonwebtoken's form and its public JWK.
pub(super) struct SigningKey {
    encoding: EncodingKey,
    jwk: PublicJwk,
}

impl SigningKey {
    pub(super) fn new(key: &RsaPrivateKey) -> Result<Self, DemoIdpError> {
        let bits = key.size() * 8;
        if bits < MIN_BITS {
            return Err(DemoIdpError::WeakKey(bits));
        }
        // jsonwebtoken's RustCrypto backend reads RSA private keys as PKCS#1 DER.
        let der = key
            .to_pkcs1_der()
            .map_err(|e| DemoIdpError::KeyEncoding(e.to_string()))?;
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        // RFC 7638 §3.2: the required members in lexicographic order, no whitespace. n and e
        // are base64url, so no JSON escaping can be needed.
        let thumbprint = Sha256::digest(format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
        Ok(Self {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: PublicJwk {
                kty: "RSA",
                use_: "sig",
                alg: "RS256",
                kid: URL_SAFE_NO_PAD.encode(thumbprint),
                n,
                e,
            },
        })
    }

    pub(super) fn jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    /// A compact JWS (RFC 7515 §7.1) over `claims`, RS256, with `kid` so relying parties pick
    /// the right key after a rotation.
    pub(super) fn sign(&self, claims: &impl Serialize) -> Result<String, DemoIdpError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.jwk.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(DemoIdpError::Sign)
    }
}

/// The demo IdP's signing key: the stored one, or a new 2048-bit key stored for next time.
/// Two instances starting at once on one database both end up with the first key written.
pub async fn load_or_create_key(store: &Store) -> Result<RsaPrivateKey, DemoIdpError> {
    if let Some(pem) = read_pem(store).await? {
        return parse_pem(&pem);
    }
    // Key generation takes hundreds of milliseconds: keep it off the async workers.
    let pem = match tokio::task::spawn_blocking(generate_pem).await {
        Ok(pem) => pem?,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => return Err(DemoIdpError::KeyTask),
    };
    store
        // A racing start that stored its key first wins; the re-read below makes both use it.
        .write(move |tx| tx.insert_setting_if_absent(SETTING_KEY, &pem))
        .await?;
    let pem = read_pem(store).await?.ok_or(DemoIdpError::KeyNotStored)?;
    parse_pem(&pem)
}

async fn read_pem(store: &Store) -> Result<Option<String>, DemoIdpError> {
    let pem = store.read(|tx| tx.setting(SETTING_KEY)).await?;
    Ok(pem)
}

fn parse_pem(pem: &str) -> Result<RsaPrivateKey, DemoIdpError> {
    RsaPrivateKey::from_pkcs8_pem(pem).map_err(DemoIdpError::StoredKeyCorrupt)
}

fn generate_pem() -> Result<String, DemoIdpError> {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, MIN_BITS)
        .map_err(DemoIdpError::KeyGeneration)?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| DemoIdpError::KeyEncoding(e.to_string()))?;
    Ok(pem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("teamgate.db")).expect("a store")
    }

    #[tokio::test]
    async fn two_racing_starts_agree_on_one_key_and_a_restart_reuses_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = open(&dir);
        // Both find no key, both generate one, both insert: the first insert must win for both.
        let (a, b) = tokio::join!(load_or_create_key(&store), load_or_create_key(&store));
        let a = a.expect("a key");
        // assert! rather than assert_eq!: the key's derived Debug would print its primes.
        assert!(a == b.expect("a key"), "the racing starts disagree");
        drop(store);
        let again = load_or_create_key(&open(&dir))
            .await
            .expect("the stored key");
        assert!(a == again, "a restart made a new key");
    }

    #[tokio::test]
    async fn a_corrupt_stored_key_is_reported_and_never_replaced() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = open(&dir);
        store
            .write(|tx| tx.set_setting(SETTING_KEY, "not a key"))
            .await
            .expect("written");
        let out = load_or_create_key(&store).await;
        assert!(
            matches!(out, Err(DemoIdpError::StoredKeyCorrupt(_))),
            "{out:?}"
        );
        assert_eq!(
            read_pem(&store).await.ok().flatten().as_deref(),
            Some("not a key")
        );
    }

    #[test]
    fn a_key_under_2048_bits_is_refused() {
        let weak = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).expect("a small key");
        assert!(matches!(
            SigningKey::new(&weak),
            Err(DemoIdpError::WeakKey(1024))
        ));
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint_of_the_public_key() {
        let key = super::super::tests::test_key();
        let jwk = SigningKey::new(key).expect("a signing key").jwk().clone();
        // Recomputed from the published members through serde_json's canonical-order map.
        let members = serde_json::json!({ "e": jwk.e, "kty": "RSA", "n": jwk.n });
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(members.to_string()));
        assert_eq!(jwk.kid, expected);
    }
}
