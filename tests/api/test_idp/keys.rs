//! The test IdP's keys: a pool of RSA 2048 keys made once per test process (each takes a
//! noticeable fraction of a second to generate, and hundreds of tests start an IdP), one P-256
//! key, their JWKs (RFC 7517) and the raw JWS signing primitives (RFC 7518 §3) that the token
//! builder composes, the deliberately wrong ones included.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
// One `signature` crate serves both: p256's `Signer` also signs with the RSA key.
use p256::ecdsa::signature::Signer as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::rand_core::OsRng;
use rsa::signature::SignatureEncoding;
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How many RSA keys `TestIdp::rotate_key` cycles through.
pub const ROTATING_KEYS: usize = 3;
/// Pool slot of the key that rotation never publishes: "signed by a key not in the JWKS".
pub const ROGUE: usize = ROTATING_KEYS;

pub struct RsaKey {
    signer: SigningKey<Sha256>,
    /// RFC 7638 thumbprint, so the kid is stable for the key and unique across the pool.
    pub kid: String,
    /// The public key as a JWK, with `kid`, `use: sig` and `alg: RS256`.
    pub jwk: Value,
    /// SubjectPublicKeyInfo PEM: the "secret" an HS256 algorithm-confusion attacker MACs with.
    pub public_pem: String,
}

pub struct EcKey {
    signer: p256::ecdsa::SigningKey,
    pub kid: String,
    pub jwk: Value,
}

pub struct KeyPool {
    /// Slots `0..ROTATING_KEYS` rotate; slot `ROGUE` is never published by rotation.
    pub rsa: Vec<RsaKey>,
    pub ec: EcKey,
}

static POOL: OnceLock<KeyPool> = OnceLock::new();

/// The process-wide keys, generated on first use (blocking; call it off the async runtime).
pub fn pool() -> &'static KeyPool {
    POOL.get_or_init(|| {
        // One thread per key: on the two cores this halves the one-time wait.
        let rsa = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..=ROGUE).map(|_| scope.spawn(RsaKey::generate)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        KeyPool {
            rsa,
            ec: EcKey::generate(),
        }
    })
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638 §3: SHA-256 over the required members, in lexicographic order, no whitespace.
fn thumbprint(required_members: &Value) -> String {
    // serde_json's default map is ordered by key, which is exactly the canonical order.
    b64(Sha256::digest(required_members.to_string()))
}

impl RsaKey {
    fn generate() -> Self {
        let private = RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
        let public = RsaPublicKey::from(&private);
        let n = b64(public.n().to_bytes_be());
        let e = b64(public.e().to_bytes_be());
        let kid = thumbprint(&json!({ "e": e, "kty": "RSA", "n": n }));
        let jwk = json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e });
        let public_pem = public.to_public_key_pem(LineEnding::LF).unwrap();
        Self {
            signer: SigningKey::<Sha256>::new(private),
            kid,
            jwk,
            public_pem,
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    pub fn rs256(&self, signing_input: &[u8]) -> Vec<u8> {
        self.signer.sign(signing_input).to_vec()
    }
}

impl EcKey {
    fn generate() -> Self {
        let signer = p256::ecdsa::SigningKey::random(&mut OsRng);
        let point = signer.verifying_key().to_encoded_point(false);
        let x = b64(point.x().unwrap());
        let y = b64(point.y().unwrap());
        let kid = thumbprint(&json!({ "crv": "P-256", "kty": "EC", "x": x, "y": y }));
        let jwk = json!({
            "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": kid, "x": x, "y": y
        });
        Self { signer, kid, jwk }
    }

    /// ECDSA P-256 SHA-256 as JWS wants it: the fixed 64-byte R || S, not DER (RFC 7518 §3.4).
    pub fn es256(&self, signing_input: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self.signer.sign(signing_input);
        signature.to_bytes().to_vec()
    }
}

/// HMAC-SHA-256 (RFC 2104), for the HS256 algorithm-confusion token; written out because the
/// `hmac` crate is not a dependency and this is the only place that needs it.
pub fn hs256(key: &[u8], message: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block_key.iter().map(move |k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36).collect::<Vec<u8>>())
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c).collect::<Vec<u8>>())
        .chain_update(inner)
        .finalize()
        .to_vec()
}
