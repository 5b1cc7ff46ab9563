//! The ring-backed key must accept exactly what openidconnect's own key accepts for RSA
//! (same compatibility rules, same signatures), refuse keys under 2048 bits, and leave the
//! other algorithms to openidconnect.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, SignatureVerificationError};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha384};

use super::{IdpJsonWebKey, IdpJsonWebKeySet};

fn key_2048() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn jwk_json(key: &RsaPrivateKey, extra: Value) -> Value {
    let mut jwk = json!({
        "kty": "RSA",
        "kid": "k1",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    });
    if let (Some(jwk), Some(extra)) = (jwk.as_object_mut(), extra.as_object()) {
        jwk.extend(extra.clone());
    }
    jwk
}

fn both(jwk: &Value) -> (IdpJsonWebKey, CoreJsonWebKey) {
    let ours = serde_json::from_value(jwk.clone()).unwrap_or_else(|e| panic!("{e}"));
    let theirs = serde_json::from_value(jwk.clone()).unwrap_or_else(|e| panic!("{e}"));
    (ours, theirs)
}

fn rs256(key: &RsaPrivateKey, message: &[u8]) -> Vec<u8> {
    key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn ps256(key: &RsaPrivateKey, message: &[u8]) -> Vec<u8> {
    key.sign_with_rng(
        &mut rsa::rand_core::OsRng,
        Pss::new::<Sha256>(),
        &Sha256::digest(message),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn rs256_and_ps256_signatures_verify_like_openidconnects_own_key() {
    let key = key_2048();
    let (ours, theirs) = both(&jwk_json(key, json!({})));
    let message = b"header.payload";
    for (alg, signature) in [
        (
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            rs256(key, message),
        ),
        (
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            ps256(key, message),
        ),
    ] {
        assert!(theirs.verify_signature(&alg, message, &signature).is_ok());
        assert!(
            ours.verify_signature(&alg, message, &signature).is_ok(),
            "{alg:?}"
        );

        let mut tampered = signature.clone();
        tampered[17] ^= 1;
        assert!(theirs.verify_signature(&alg, message, &tampered).is_err());
        assert!(matches!(
            ours.verify_signature(&alg, message, &tampered),
            Err(SignatureVerificationError::CryptoError(_))
        ));
        assert!(
            ours.verify_signature(&alg, b"header.other", &signature)
                .is_err()
        );
    }
}

#[test]
fn a_signature_made_for_another_rsa_hash_is_refused() {
    let key = key_2048();
    let (ours, _) = both(&jwk_json(key, json!({})));
    let message = b"header.payload";
    let rs384 = key
        .sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(message))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ours.verify_signature(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
            message,
            &rs384
        )
        .is_ok()
    );
    assert!(
        ours.verify_signature(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            message,
            &rs384
        )
        .is_err()
    );
    // PKCS#1 v1.5 and PSS are not interchangeable either.
    assert!(
        ours.verify_signature(
            &CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            message,
            &rs256(key, message)
        )
        .is_err()
    );
}

#[test]
fn keys_for_encryption_or_another_algorithm_are_refused_as_openidconnect_does() {
    let key = key_2048();
    let message = b"header.payload";
    let signature = rs256(key, message);
    for extra in [
        json!({ "use": "enc" }),
        json!({ "alg": "RS384" }),
        json!({ "alg": "A128GCM" }),
    ] {
        let (ours, theirs) = both(&jwk_json(key, extra.clone()));
        let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
        assert!(theirs.verify_signature(&alg, message, &signature).is_err());
        assert!(
            matches!(
                ours.verify_signature(&alg, message, &signature),
                Err(SignatureVerificationError::InvalidKey(_))
            ),
            "{extra}"
        );
    }
    let (ours, _) = both(&jwk_json(key, json!({ "use": "sig", "alg": "RS256" })));
    assert!(
        ours.verify_signature(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            message,
            &signature
        )
        .is_ok()
    );
}

#[test]
fn an_rsa_key_under_2048_bits_is_refused_even_with_a_good_signature() {
    let weak =
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap_or_else(|e| panic!("{e}"));
    let message = b"header.payload";
    let (ours, _) = both(&jwk_json(&weak, json!({})));
    let refused = ours.verify_signature(
        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        message,
        &rs256(&weak, message),
    );
    match refused {
        Err(SignatureVerificationError::InvalidKey(why)) => {
            assert!(why.contains("1024 bits"), "{why}")
        }
        other => panic!("expected the key to be refused, got {other:?}"),
    }
}

#[test]
fn a_modulus_with_a_leading_zero_byte_is_the_same_key() {
    let key = key_2048();
    let mut padded = vec![0u8];
    padded.extend(key.n().to_bytes_be());
    let jwk = json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(padded),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    });
    let (ours, _) = both(&jwk);
    let message = b"header.payload";
    assert!(
        ours.verify_signature(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            message,
            &rs256(key, message)
        )
        .is_ok()
    );
}

#[test]
fn ec_keys_are_left_to_openidconnect() {
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    let signing = SigningKey::random(&mut rsa::rand_core::OsRng);
    let point = signing.verifying_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": "ec1",
        "x": URL_SAFE_NO_PAD.encode(point.x().map(|x| x.to_vec()).unwrap_or_default()),
        "y": URL_SAFE_NO_PAD.encode(point.y().map(|y| y.to_vec()).unwrap_or_default()),
    });
    let (ours, _) = both(&jwk);
    let message = b"header.payload";
    let signature: Signature = signing.sign(message);
    let alg = CoreJwsSigningAlgorithm::EcdsaP256Sha256;
    assert!(
        ours.verify_signature(&alg, message, &signature.to_bytes())
            .is_ok()
    );
    assert!(
        ours.verify_signature(&alg, b"other", &signature.to_bytes())
            .is_err()
    );
    // An EC key never checks an RSA signature.
    assert!(
        ours.verify_signature(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            message,
            &signature.to_bytes()
        )
        .is_err()
    );
}

#[test]
fn a_key_set_skips_unusable_entries_and_keeps_the_rest() {
    let key = key_2048();
    let set: IdpJsonWebKeySet = serde_json::from_value(json!({ "keys": [
        { "kty": "RSA", "kid": "broken", "n": 7 },
        jwk_json(key, json!({ "kid": "good" })),
    ]}))
    .unwrap_or_else(|e| panic!("{e}"));
    let kids: Vec<&str> = set
        .keys()
        .iter()
        .filter_map(|k| k.key_id().map(|id| id.as_str()))
        .collect();
    assert!(kids.contains(&"good"), "{kids:?}");
    let good = set
        .keys()
        .iter()
        .find(|k| k.key_id().is_some_and(|id| id.as_str() == "good"))
        .unwrap_or_else(|| panic!("no good key"));
    let message = b"header.payload";
    assert!(
        good.verify_signature(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            message,
            &rs256(key, message)
        )
        .is_ok()
    );
    // Serialising gives openidconnect's representation back.
    let round: CoreJsonWebKey =
        serde_json::from_value(serde_json::to_value(good).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(round.key_id().map(|k| k.as_str()), Some("good"));
}
