//! teamgate's own signing keys: the ES256 (P-256) key of the forward-auth assertion and of
//! ES256 ID tokens, and the RS256 key of the OpenID provider's ID tokens. Key generation, the
//! RFC 7638 thumbprint used as `kid`, the one public JWKS (`/.well-known/jwks.json`, which
//! both kinds of token are verified against), rotation with overlap, and the in-memory key set
//! that `/auth` and the provider sign with (reloaded from the database once a minute, so a
//! `teamgate keys rotate` run by another process takes effect without a restart).
//!
//! Decision: ONE key set for everything teamgate signs. Verifiers fetch one URL, one command
//! rotates every key with the same overlap, and the tokens cannot pass for each other: an
//! assertion has its own `typ` (`teamgate-assertion+jwt`) and `aud` (the assertion audience,
//! which no client id may equal), an ID token has `aud` = its client id. The RSA key exists
//! only once the provider has a client (its generation costs a moment at start).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::Clock;
use crate::store::keys::{StoredKey, StoredRsaKey};
use crate::store::{Store, StoreError};

/// Why teamgate's keys could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key: {0}")]
    Key(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// How often a running server re-reads the keys (to follow a rotation made elsewhere). A server
/// may keep signing with a retired key for this long, so the retired key's publication window
/// includes it.
pub const KEY_REFRESH: Duration = Duration::from_secs(60);

/// The longest lifetime of anything signed: the assertion (`forward_auth.assertion_ttl_seconds`,
/// RFC 8725 §3.10 short-lived tokens) and ID tokens; a retired key is published at least this
/// long after the last moment it may have signed.
pub const MAX_ASSERTION_TTL: Duration = Duration::from_secs(300);

/// Slack for clocks of verifiers that run a little behind.
const PUBLISH_SLACK: Duration = Duration::from_secs(60);

/// How long a key stays in the JWKS after it stopped being the signing key.
pub fn retired_publication() -> Duration {
    KEY_REFRESH + MAX_ASSERTION_TTL + PUBLISH_SLACK
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// RSA keys below 2048 bits are not acceptable for RS256 (NIST SP 800-131A).
const RSA_BITS: usize = 2048;

/// A new P-256 key, ready to store, drawn from the OS generator. (`rand_core`'s `OsRng` is
/// available because the `rsa` dependency enables its `getrandom` feature.)
pub fn generate(now: i64) -> Result<StoredKey, SigningError> {
    let secret = SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| SigningError::Key(format!("cannot encode the key as PKCS#8: {e}")))?;
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(SigningError::Key(
            "the public key has no affine coordinates".into(),
        ));
    };
    let x = URL_SAFE_NO_PAD.encode(x);
    let y = URL_SAFE_NO_PAD.encode(y);
    Ok(StoredKey {
        kid: thumbprint(&x, &y),
        private_der: der.as_bytes().to_vec(),
        x,
        y,
        created_at: now,
        retired_at: None,
        publish_until: None,
    })
}

/// A new 2048-bit RSA key, ready to store. Takes a moment: call it off the async workers.
pub fn generate_rsa(now: i64) -> Result<StoredRsaKey, SigningError> {
    use rsa::pkcs8::EncodePrivateKey as _;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
        .map_err(|e| SigningError::Key(format!("cannot generate an RSA key: {e}")))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| SigningError::Key(format!("cannot encode the RSA key as PKCS#8: {e}")))?;
    let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
    Ok(StoredRsaKey {
        kid: rsa_thumbprint(&n, &e),
        private_der: der.as_bytes().to_vec(),
        n,
        e,
        created_at: now,
        retired_at: None,
        publish_until: None,
    })
}

/// RFC 7638 §3: SHA-256 over the required EC members in lexicographic order, no whitespace.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// RFC 7638 §3.2: the same for an RSA key (`e`, `kty`, `n`).
pub fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// One public key as published (RFC 7517 §4; RFC 7518 §6.2.1 for EC, §6.3.1 for RSA).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PublicJwk {
    Ec {
        kty: &'static str,
        crv: &'static str,
        x: String,
        y: String,
        kid: String,
        alg: &'static str,
        #[serde(rename = "use")]
        use_: &'static str,
    },
    Rsa {
        kty: &'static str,
        n: String,
        e: String,
        kid: String,
        alg: &'static str,
        #[serde(rename = "use")]
        use_: &'static str,
    },
}

impl PublicJwk {
    pub fn kid(&self) -> &str {
        match self {
            PublicJwk::Ec { kid, .. } | PublicJwk::Rsa { kid, .. } => kid,
        }
    }
}

/// `/.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

impl Jwks {
    /// The public halves of `keys` then of `rsa`, in their order.
    pub fn of(keys: &[StoredKey], rsa: &[StoredRsaKey]) -> Jwks {
        let ec = keys.iter().map(|k| PublicJwk::Ec {
            kty: "EC",
            crv: "P-256",
            x: k.x.clone(),
            y: k.y.clone(),
            kid: k.kid.clone(),
            alg: "ES256",
            use_: "sig",
        });
        let rsa = rsa.iter().map(|k| PublicJwk::Rsa {
            kty: "RSA",
            n: k.n.clone(),
            e: k.e.clone(),
            kid: k.kid.clone(),
            alg: "RS256",
            use_: "sig",
        });
        Jwks {
            keys: ec.chain(rsa).collect(),
        }
    }

    pub fn to_json(&self) -> Result<String, SigningError> {
        serde_json::to_string(self)
            .map_err(|e| SigningError::Key(format!("cannot serialise the JWKS: {e}")))
    }
}

/// The JWKS as the database has it now. `/.well-known/jwks.json` reads it on every request
/// (verifiers fetch it rarely), so a rotation is published at once, while servers start
/// signing with the new key only at their next refresh: verifiers see a key before any
/// token needs it.
pub async fn published_now(store: &Store, clock: &Clock) -> Result<String, SigningError> {
    let now = clock.unix();
    let (keys, rsa) = store
        .read(move |tx| Ok::<_, StoreError>((tx.published_keys(now)?, tx.published_rsa_keys(now)?)))
        .await?;
    Jwks::of(&keys, &rsa).to_json()
}

/// The ES256 signing key in the form `jsonwebtoken` wants.
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

/// The RS256 signing key, in ring's form (about ten times faster than the `rsa` crate).
pub struct RsaSigningKey {
    pub kid: String,
    pair: ring::signature::RsaKeyPair,
}

impl RsaSigningKey {
    fn from_stored(key: &StoredRsaKey) -> Result<Self, SigningError> {
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&key.private_der).map_err(|e| {
            SigningError::Key(format!("the stored RSA key {} is unusable: {e}", key.kid))
        })?;
        Ok(Self {
            kid: key.kid.clone(),
            pair,
        })
    }

    /// RSASSA-PKCS1-v1_5 SHA-256 over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| SigningError::Sign("RSA signing failed".into()))?;
        Ok(signature)
    }
}

/// The keys a server uses: one of each kind to sign, all to publish.
pub struct KeySet {
    pub signing: SigningKey,
    /// `None` until the OpenID provider needed an RS256 key.
    pub rsa: Option<RsaSigningKey>,
    pub jwks: Jwks,
    /// The JWKS document, serialised once per load.
    pub jwks_json: Arc<str>,
    loaded: Instant,
}

impl KeySet {
    fn from_stored(keys: Vec<StoredKey>, rsa: Vec<StoredRsaKey>) -> Result<KeySet, SigningError> {
        let current = keys
            .iter()
            .find(|k| k.retired_at.is_none())
            .ok_or_else(|| SigningError::Key("no signing key in the database".into()))?;
        let signing = SigningKey {
            kid: current.kid.clone(),
            encoding: EncodingKey::from_ec_der(&current.private_der),
        };
        let rsa_signing = rsa
            .iter()
            .find(|k| k.retired_at.is_none())
            .map(RsaSigningKey::from_stored)
            .transpose()?;
        let jwks = Jwks::of(&keys, &rsa);
        let jwks_json = jwks.to_json()?.into();
        Ok(KeySet {
            signing,
            rsa: rsa_signing,
            jwks,
            jwks_json,
            loaded: Instant::now(),
        })
    }
}

async fn read_published(
    store: &Store,
    now: i64,
) -> Result<(Vec<StoredKey>, Vec<StoredRsaKey>), SigningError> {
    Ok(store
        .read(move |tx| Ok::<_, StoreError>((tx.published_keys(now)?, tx.published_rsa_keys(now)?)))
        .await?)
}

/// Read the published keys, creating the first ES256 signing key when there is none (first
/// start). Only that first time writes.
pub async fn load(store: &Store, clock: &Clock) -> Result<KeySet, SigningError> {
    let now = clock.unix();
    let (keys, rsa) = read_published(store, now).await?;
    if keys.iter().any(|k| k.retired_at.is_none()) {
        return KeySet::from_stored(keys, rsa);
    }
    let fresh = generate(now)?;
    let created = store.write(move |tx| tx.insert_key_if_none(&fresh)).await?;
    if created {
        tracing::info!("created teamgate's first assertion signing key");
    }
    let (keys, rsa) = read_published(store, now).await?;
    KeySet::from_stored(keys, rsa)
}

/// Make sure an RS256 signing key exists (the OpenID provider's default ID-token algorithm);
/// two servers racing here end with one key.
pub async fn ensure_rsa_key(store: &Store, clock: &Clock) -> Result<(), SigningError> {
    let now = clock.unix();
    let (_, rsa) = read_published(store, now).await?;
    if rsa.iter().any(|k| k.retired_at.is_none()) {
        return Ok(());
    }
    let fresh = run_blocking(move || generate_rsa(now)).await?;
    let created = store
        .write(move |tx| tx.insert_rsa_key_if_none(&fresh))
        .await?;
    if created {
        tracing::info!("created teamgate's first RS256 signing key (ID tokens)");
    }
    Ok(())
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SigningError> + Send + 'static,
) -> Result<T, SigningError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(SigningError::Key("the key generation task stopped".into())),
    }
}

/// What `teamgate keys rotate` did.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub new_kid: String,
    pub previous_kid: Option<String>,
    /// The new and previous RS256 kids, when there is an RS256 key.
    pub rsa: Option<(String, Option<String>)>,
    /// Unix seconds until which the previous keys stay published.
    pub previous_published_until: i64,
}

/// Make new signing keys now (ES256, and RS256 when the provider has one); the previous ones
/// stay published long enough for every token they may still sign (until running servers
/// notice, [`KEY_REFRESH`]) to expire.
pub async fn rotate(store: &Store, clock: &Clock) -> Result<Rotation, SigningError> {
    let now = clock.unix();
    let key = generate(now)?;
    let new_kid = key.kid.clone();
    let until = now + secs(retired_publication());
    let (_, rsa) = read_published(store, now).await?;
    let rsa_key = if rsa.iter().any(|k| k.retired_at.is_none()) {
        Some(run_blocking(move || generate_rsa(now)).await?)
    } else {
        None
    };
    let (previous_kid, rsa) = store
        .write(move |tx| {
            let previous = tx.rotate_key(&key, now, until)?;
            let rsa = match &rsa_key {
                Some(k) => Some((k.kid.clone(), tx.rotate_rsa_key(k, now, until)?)),
                None => None,
            };
            Ok::<_, StoreError>((previous, rsa))
        })
        .await?;
    Ok(Rotation {
        new_kid,
        previous_kid,
        rsa,
        previous_published_until: until,
    })
}

/// `teamgate keys rotate`: rotate in the configured database and say what happened.
pub async fn rotate_command(config: &crate::config::Config) -> Result<String, SigningError> {
    let store = Store::open_database(&config.server.database).await?;
    let r = rotate(&store, &Clock::system()).await?;
    let until = time::OffsetDateTime::from_unix_timestamp(r.previous_published_until)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| r.previous_published_until.to_string());
    let mut out = match r.previous_kid {
        Some(previous) => format!(
            "new signing key {}\nprevious key {previous} stays published in /.well-known/jwks.json until {until}\n\
             running servers switch to the new key within {} seconds\n",
            r.new_kid,
            KEY_REFRESH.as_secs()
        ),
        None => format!("new signing key {} (there was no key before)\n", r.new_kid),
    };
    if let Some((new, previous)) = r.rsa {
        out.push_str(&format!("new RS256 key {new} (ID tokens)\n"));
        if let Some(previous) = previous {
            out.push_str(&format!(
                "previous RS256 key {previous} stays published until {until}\n"
            ));
        }
    }
    Ok(out)
}

/// The key set of a running server, loaded on first use and refreshed every [`KEY_REFRESH`].
#[derive(Default)]
pub struct Keys {
    current: RwLock<Option<Arc<KeySet>>>,
    /// Serialises loads, so a burst of requests at start or at refresh time loads once.
    loading: tokio::sync::Mutex<()>,
}

impl Keys {
    fn snapshot(&self) -> Option<Arc<KeySet>> {
        match self.current.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn put(&self, set: KeySet) -> Arc<KeySet> {
        let set = Arc::new(set);
        match self.current.write() {
            Ok(mut k) => *k = Some(set.clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(set.clone()),
        }
        set
    }

    /// The keys to sign and publish with. When the set is due for a refresh, one caller reloads
    /// while the others keep using the set they have; a failed refresh keeps the old set.
    pub async fn get(&self, store: &Store, clock: &Clock) -> Result<Arc<KeySet>, SigningError> {
        if let Some(set) = self.snapshot() {
            if set.loaded.elapsed() < KEY_REFRESH {
                return Ok(set);
            }
            let Ok(_guard) = self.loading.try_lock() else {
                return Ok(set);
            };
            if let Some(newer) = self.snapshot().filter(|s| s.loaded.elapsed() < KEY_REFRESH) {
                return Ok(newer);
            }
            return Ok(match load(store, clock).await {
                Ok(fresh) => self.put(fresh),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot refresh the signing keys; keeping the loaded ones");
                    set
                }
            });
        }
        let _guard = self.loading.lock().await;
        if let Some(set) = self.snapshot() {
            return Ok(set);
        }
        Ok(self.put(load(store, clock).await?))
    }

    /// [`Keys::get`], with an RS256 key made first when there is none yet (the first client
    /// of a server whose config gained clients by a reload).
    pub async fn get_with_rsa(
        &self,
        store: &Store,
        clock: &Clock,
    ) -> Result<Arc<KeySet>, SigningError> {
        let set = self.get(store, clock).await?;
        if set.rsa.is_some() {
            return Ok(set);
        }
        let _guard = self.loading.lock().await;
        if let Some(set) = self.snapshot().filter(|s| s.rsa.is_some()) {
            return Ok(set);
        }
        ensure_rsa_key(store, clock).await?;
        Ok(self.put(load(store, clock).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 7638 §3.1 gives an RSA example only; this pins the EC member order and format
        // against an independently computed value (python: sha256 of the same canonical JSON).
        let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
        assert_eq!(
            thumbprint(x, y),
            "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"
        );
    }

    #[test]
    fn a_generated_key_signs_and_its_published_coordinates_verify() {
        let key = generate(0).unwrap();
        assert_eq!(key.kid, thumbprint(&key.x, &key.y));
        let encoding = EncodingKey::from_ec_der(&key.private_der);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"exp": 4_000_000_000u64}),
            &encoding,
        )
        .unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(&key.x, &key.y).unwrap();
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(generate(0).unwrap().kid, generate(0).unwrap().kid);
    }

    #[test]
    fn the_rsa_kid_is_the_rfc_7638_thumbprint_of_the_rfc_example_key() {
        // RFC 7638 §3.1: this key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            rsa_thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_generated_rsa_key_signs_rs256_that_its_published_modulus_verifies() {
        let key = generate_rsa(0).unwrap();
        assert_eq!(key.kid, rsa_thumbprint(&key.n, &key.e));
        let signer = RsaSigningKey::from_stored(&key).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":4000000000}"#);
        let input = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(signer.sign(input.as_bytes()).unwrap());
        let token = format!("{input}.{signature}");
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&key.n, &key.e).unwrap();
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
    }
}
