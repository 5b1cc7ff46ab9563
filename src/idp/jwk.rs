//! The JSON Web Key type ID tokens are verified with. openidconnect lets a relying party bring
//! its own key type; this one is openidconnect's `CoreJsonWebKey` for everything (parsing, key
//! selection, the use/alg compatibility rules, EC and EdDSA signatures, `at_hash`) except RSA
//! signatures, which `ring` checks. openidconnect checks them with the RustCrypto `rsa` crate,
//! whose big-number code took a quarter of the CPU of a whole login in the callback benchmark;
//! `ring` (already in the build for TLS) does the same check roughly ten times faster.
//!
//! `ring` also sets the key-size policy: RSA moduli of 2048 to 8192 bits. A token signed with
//! a smaller key is refused (RFC 7518 §3.3 requires 2048 bits or more).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeySet, JsonWebKeyUse,
    JwsSigningAlgorithm, SignatureVerificationError,
};
use ring::signature::{self, RsaParameters, RsaPublicKeyComponents};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A key set of [`IdpJsonWebKey`]s, as fetched from a provider's `jwks_uri`.
pub type IdpJsonWebKeySet = JsonWebKeySet<IdpJsonWebKey>;

/// One public key of an identity provider.
#[derive(Debug, Clone)]
pub struct IdpJsonWebKey {
    core: CoreJsonWebKey,
    /// The modulus and exponent of an RSA key, big-endian without leading zeros.
    rsa: Option<Arc<RsaComponents>>,
}

#[derive(Debug)]
struct RsaComponents {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl<'de> Deserialize<'de> for IdpJsonWebKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let core = CoreJsonWebKey::deserialize(&value).map_err(serde::de::Error::custom)?;
        let rsa = match core.key_type() {
            CoreJsonWebKeyType::RSA => rsa_components(&value).map(Arc::new),
            _ => None,
        };
        Ok(Self { core, rsa })
    }
}

impl Serialize for IdpJsonWebKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl RsaComponents {
    fn modulus_bits(&self) -> usize {
        self.n.first().map_or(0, |top| {
            (self.n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
        })
    }
}

/// `n` and `e` of an RSA JWK (RFC 7518 §6.3.1), when both are present and base64url.
fn rsa_components(jwk: &Value) -> Option<RsaComponents> {
    let field = |name: &str| -> Option<Vec<u8>> {
        let text = jwk.get(name)?.as_str()?;
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        Some(bytes[first..].to_vec())
    };
    Some(RsaComponents {
        n: field("n")?,
        e: field("e")?,
    })
}

/// The `ring` parameters for an RSA JWS algorithm (RFC 7518 §3.3 and §3.5).
fn rsa_parameters(alg: &CoreJwsSigningAlgorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

impl IdpJsonWebKey {
    /// RFC 7517 §4.2-4.4 as openidconnect applies them before its own checks: the key may
    /// sign, is of the algorithm's type, and names no other algorithm.
    fn check_compatible(&self, alg: &CoreJwsSigningAlgorithm) -> Result<(), &'static str> {
        if self.key_use().is_some_and(|u| !u.allows_signature()) {
            return Err("key usage not permitted for digital signatures");
        }
        if alg.key_type().as_ref() != Some(self.key_type()) {
            return Err("key type does not match signature algorithm");
        }
        match self.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => Ok(()),
            JsonWebKeyAlgorithm::Algorithm(key_alg) if key_alg == alg => Ok(()),
            JsonWebKeyAlgorithm::Algorithm(_) => Err("incompatible key algorithm"),
            JsonWebKeyAlgorithm::Unsupported => Err("key algorithm is not a signing algorithm"),
        }
    }
}

impl JsonWebKey for IdpJsonWebKey {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.core.key_id()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.core.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.core.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.core.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        Self {
            core: CoreJsonWebKey::new_symmetric(key),
            rsa: None,
        }
    }

    fn verify_signature(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        let Some(parameters) = rsa_parameters(alg) else {
            return self.core.verify_signature(alg, message, signature);
        };
        self.check_compatible(alg)
            .map_err(|e| SignatureVerificationError::InvalidKey(e.to_owned()))?;
        let rsa = self.rsa.as_ref().ok_or_else(|| {
            SignatureVerificationError::InvalidKey("RSA key without a valid n and e".into())
        })?;
        let bits = rsa.modulus_bits();
        if !(2048..=8192).contains(&bits) {
            return Err(SignatureVerificationError::InvalidKey(format!(
                "an RSA key of {bits} bits; 2048 to 8192 are accepted"
            )));
        }
        RsaPublicKeyComponents {
            n: &rsa.n,
            e: &rsa.e,
        }
        .verify(parameters, message, signature)
        .map_err(|_| SignatureVerificationError::CryptoError("bad signature".into()))
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.core.hash_bytes(bytes, alg)
    }
}

#[cfg(test)]
mod tests;
