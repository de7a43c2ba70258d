//! The JWS examples of RFC 7520 ("Examples of Protecting Content Using JOSE") and RFC 8037's
//! Ed25519 example, from `../shared/testdata/jose-cookbook/`: each compact serialization
//! verifies with the example's key where Palisade supports the algorithm, and is refused for
//! the right reason where it does not. Their payloads are prose, not claims, so only the
//! structure, the header rules and the signature are checked.

use std::path::PathBuf;

use palisade_jwt::{JwkOptions, JwtKey, JwtKeySet, Rules, TokenReason, Verifier};
use serde_json::Value;

fn cookbook(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/jose-cookbook")
        .join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap()
}

/// The example's key (a private JWK: its public part is used; `oct` allowed, as the CLI does).
/// The RSA keys have no `alg`: the example's algorithm is configured, as an operator would.
fn verifier(example: &Value) -> Result<Verifier, palisade_jwt::KeyError> {
    let rsa_alg = example["input"]["alg"]
        .as_str()
        .and_then(|alg| alg.parse().ok())
        .filter(|alg: &palisade_jwt::Alg| alg.key_kind() == palisade_jwt::KeyKind::Rsa)
        .unwrap_or(palisade_jwt::Alg::RS256);
    let options = JwkOptions {
        allow_symmetric: true,
        rsa_alg,
    };
    let key = JwtKey::from_jwk(example["input"]["key"].to_string().as_bytes(), &options)?;
    Ok(Verifier::new(JwtKeySet::new([key]), Rules::new()))
}

fn compact(example: &Value) -> &str {
    example["output"]["compact"].as_str().unwrap()
}

#[test]
fn rsa_v1_5_and_pss_verify() {
    for path in [
        "jws/4_1.rsa_v15_signature.json",
        "jws/4_2.rsa-pss_signature.json",
    ] {
        let example = cookbook(path);
        let verifier = verifier(&example).unwrap();
        let header = verifier.verify_signature_only(compact(&example)).unwrap();
        assert_eq!(header.alg.name(), example["input"]["alg"], "{path}");
        assert_eq!(
            header.kid.as_deref(),
            Some("bilbo.baggins@hobbiton.example")
        );
    }
}

#[test]
fn an_rsa_key_pinned_to_one_algorithm_refuses_the_other() {
    // The PSS example against the same key pinned to RS256 (what a JWK without `alg` gets by
    // default): the token does not choose.
    let example = cookbook("jws/4_2.rsa-pss_signature.json");
    let key = JwtKey::from_jwk(
        example["input"]["key"].to_string().as_bytes(),
        &JwkOptions::default(),
    )
    .unwrap();
    let verifier = Verifier::new(JwtKeySet::new([key]), Rules::new());
    assert_eq!(
        verifier
            .verify_signature_only(compact(&example))
            .unwrap_err()
            .reason(),
        TokenReason::AlgorithmMismatch
    );
}

#[test]
fn hmac_verifies_and_a_changed_byte_does_not() {
    let example = cookbook("jws/4_4.hmac-sha2_integrity_protection.json");
    let verifier = verifier(&example).unwrap();
    let token = compact(&example);
    verifier.verify_signature_only(token).unwrap();
    let tampered = token.replacen("SXTigJlz", "SXTigJly", 1);
    assert_ne!(tampered, token);
    assert_eq!(
        verifier
            .verify_signature_only(&tampered)
            .unwrap_err()
            .reason(),
        TokenReason::BadSignature
    );
}

#[test]
fn ed25519_verifies() {
    let example = cookbook("curve25519/jws.json");
    let verifier = verifier(&example).unwrap();
    let header = verifier.verify_signature_only(compact(&example)).unwrap();
    assert_eq!(header.alg.name(), "EdDSA");
}

#[test]
fn unsupported_or_unsafe_forms_are_refused() {
    // ES512 (P-521) is not an algorithm jsonwebtoken verifies: its key is refused, and so is a
    // token naming it.
    let example = cookbook("jws/4_3.ecdsa_signature.json");
    assert!(verifier(&example).is_err());
    let other = verifier(&cookbook("jws/4_1.rsa_v15_signature.json")).unwrap();
    assert_eq!(
        other
            .verify_signature_only(compact(&example))
            .unwrap_err()
            .reason(),
        TokenReason::UnsupportedAlgorithm
    );
    // Detached content (an empty payload part) is not a compact JWT.
    let example = cookbook("jws/4_5.signature_with_detached_content.json");
    let verifier = verifier(&example).unwrap();
    assert_eq!(
        verifier
            .verify_signature_only(compact(&example))
            .unwrap_err()
            .reason(),
        TokenReason::Malformed
    );
}

#[test]
fn the_cookbook_keys_load_as_jwks() {
    for path in [
        "jwk/3_1.ec_public_key.json",
        "jwk/3_3.rsa_public_key.json",
        "jwk/3_4.rsa_private_key.json",
    ] {
        let jwk = cookbook(path);
        let set = JwtKeySet::from_jwk_or_jwks(jwk.to_string().as_bytes(), &JwkOptions::default());
        // 3.1 is a P-521 key: unsupported; the RSA keys load.
        assert_eq!(set.is_ok(), !path.contains("ec_public"), "{path}: {set:?}");
    }
    let symmetric = cookbook("jwk/3_5.symmetric_key_mac_computation.json");
    assert!(
        JwtKeySet::from_jwk_or_jwks(symmetric.to_string().as_bytes(), &JwkOptions::default())
            .is_err()
    );
}
