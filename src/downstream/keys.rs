//! teamgate's own assertion keys: P-256 key generation, the RFC 7638 thumbprint used as `kid`,
//! the public JWKS, rotation with overlap, and the in-memory key set that `/auth` signs with
//! (reloaded from the database once a minute, so a `teamgate keys rotate` run by another
//! process takes effect without a restart).

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

use super::DownstreamError;
use crate::domain::Clock;
use crate::store::Store;
use crate::store::keys::StoredKey;

/// How often a running server re-reads the keys (to follow a rotation made elsewhere). A server
/// may keep signing with a retired key for this long, so the retired key's publication window
/// includes it.
pub const KEY_REFRESH: Duration = Duration::from_secs(60);

/// The longest assertion lifetime the config accepts (`forward_auth.assertion_ttl_seconds`,
/// RFC 8725 §3.10 short-lived tokens); a retired key is published at least this long after the
/// last moment it may have signed.
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

/// A new P-256 key, ready to store, drawn from the OS generator. (`rand_core`'s `OsRng` is
/// available because the `rsa` dependency enables its `getrandom` feature.)
pub fn generate(now: i64) -> Result<StoredKey, DownstreamError> {
    let secret = SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| DownstreamError::Key(format!("cannot encode the key as PKCS#8: {e}")))?;
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(DownstreamError::Key(
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

/// RFC 7638 §3: SHA-256 over the required EC members in lexicographic order, no whitespace.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// One public key as published (RFC 7517 §4, RFC 7518 §6.2.1).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub y: String,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
}

/// `/.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

impl Jwks {
    /// The public halves of `keys`, in their order.
    pub fn of(keys: &[StoredKey]) -> Jwks {
        Jwks {
            keys: keys
                .iter()
                .map(|k| PublicJwk {
                    kty: "EC",
                    crv: "P-256",
                    x: k.x.clone(),
                    y: k.y.clone(),
                    kid: k.kid.clone(),
                    alg: "ES256",
                    use_: "sig",
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> Result<String, DownstreamError> {
        serde_json::to_string(self)
            .map_err(|e| DownstreamError::Key(format!("cannot serialise the JWKS: {e}")))
    }
}

/// The JWKS as the database has it now. `/.well-known/jwks.json` reads it on every request
/// (verifiers fetch it rarely), so a rotation is published at once, while servers start
/// signing with the new key only at their next refresh: verifiers see a key before any
/// assertion needs it.
pub async fn published_now(store: &Store, clock: &Clock) -> Result<String, DownstreamError> {
    let now = clock.unix();
    let keys = store.read(move |tx| tx.published_keys(now)).await?;
    Jwks::of(&keys).to_json()
}

/// The signing key in the form `jsonwebtoken` wants.
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

/// The keys a server uses: one to sign, all to publish.
pub struct KeySet {
    pub signing: SigningKey,
    pub jwks: Jwks,
    /// The JWKS document, serialised once per load.
    pub jwks_json: Arc<str>,
    loaded: Instant,
}

impl KeySet {
    fn from_stored(keys: Vec<StoredKey>) -> Result<KeySet, DownstreamError> {
        let current = keys
            .iter()
            .find(|k| k.retired_at.is_none())
            .ok_or_else(|| DownstreamError::Key("no signing key in the database".into()))?;
        let signing = SigningKey {
            kid: current.kid.clone(),
            encoding: EncodingKey::from_ec_der(&current.private_der),
        };
        let jwks = Jwks::of(&keys);
        let jwks_json = jwks.to_json()?.into();
        Ok(KeySet {
            signing,
            jwks,
            jwks_json,
            loaded: Instant::now(),
        })
    }
}

/// Read the published keys, creating the first signing key when there is none (first start).
/// Only that first time writes.
pub async fn load(store: &Store, clock: &Clock) -> Result<KeySet, DownstreamError> {
    let now = clock.unix();
    let keys = store.read(move |tx| tx.published_keys(now)).await?;
    if keys.iter().any(|k| k.retired_at.is_none()) {
        return KeySet::from_stored(keys);
    }
    let fresh = generate(now)?;
    let created = store.write(move |tx| tx.insert_key_if_none(&fresh)).await?;
    if created {
        tracing::info!("created teamgate's first assertion signing key");
    }
    let keys = store.read(move |tx| tx.published_keys(now)).await?;
    KeySet::from_stored(keys)
}

/// What `teamgate keys rotate` did.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub new_kid: String,
    pub previous_kid: Option<String>,
    /// Unix seconds until which the previous key stays published.
    pub previous_published_until: i64,
}

/// Make a new signing key now; the previous one stays published long enough for every
/// assertion it may still sign (until running servers notice, [`KEY_REFRESH`]) to expire.
pub async fn rotate(store: &Store, clock: &Clock) -> Result<Rotation, DownstreamError> {
    let now = clock.unix();
    let key = generate(now)?;
    let new_kid = key.kid.clone();
    let until = now + secs(retired_publication());
    let previous_kid = store
        .write(move |tx| tx.rotate_key(&key, now, until))
        .await?;
    Ok(Rotation {
        new_kid,
        previous_kid,
        previous_published_until: until,
    })
}

/// `teamgate keys rotate`: rotate in the configured database and say what happened.
pub async fn rotate_command(config: &crate::config::Config) -> Result<String, DownstreamError> {
    let store = Store::open_database(&config.server.database).await?;
    let r = rotate(&store, &Clock::system()).await?;
    let until = time::OffsetDateTime::from_unix_timestamp(r.previous_published_until)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| r.previous_published_until.to_string());
    Ok(match r.previous_kid {
        Some(previous) => format!(
            "new signing key {}\nprevious key {previous} stays published in /.well-known/jwks.json until {until}\n\
             running servers switch to the new key within {} seconds\n",
            r.new_kid,
            KEY_REFRESH.as_secs()
        ),
        None => format!("new signing key {} (there was no key before)\n", r.new_kid),
    })
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
    pub async fn get(&self, store: &Store, clock: &Clock) -> Result<Arc<KeySet>, DownstreamError> {
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
}
