//! Verification with fixed keys: every algorithm, a test per RFC 8725 rule, and the attacks
//! (`none`, algorithm confusion, keys named by the token, tampering).

use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, Header};
use palisade_jwt::{
    Alg, IdentityClaims, JwkOptions, JwtKey, JwtKeySet, Rules, TokenReason, Verifier,
};
use palisade_test_support::jwt::{TestKey, claims, now};
use serde_json::{Value, json};

const ISS: &str = "https://issuer.example";
const AUD: &str = "https://api.example";
const SECRET: &[u8] = b"an HMAC secret of 64 bytes, enough for HS512 and the rest .......";

fn rules() -> Rules {
    Rules::new().with_issuer(ISS).with_audiences([AUD])
}

/// Every signing key of the tests with its public key as a `JwtKey`, by PEM and by JWK.
fn pairs() -> Vec<(TestKey, JwtKey, JwtKey)> {
    let mut pairs = Vec::new();
    for (alg, ours) in [
        (Algorithm::RS256, Alg::RS256),
        (Algorithm::RS384, Alg::RS384),
        (Algorithm::RS512, Alg::RS512),
        (Algorithm::PS256, Alg::PS256),
        (Algorithm::PS384, Alg::PS384),
        (Algorithm::PS512, Alg::PS512),
    ] {
        let key = TestKey::rsa_a("rsa", alg);
        pairs.push((
            key.clone(),
            JwtKey::from_pem(ours, key.public_pem.unwrap()).unwrap(),
            jwk_key(&key),
        ));
    }
    for (key, alg) in [
        (TestKey::ec256("ec256"), Alg::ES256),
        (TestKey::ec384("ec384"), Alg::ES384),
        (TestKey::ed25519("ed"), Alg::EdDSA),
    ] {
        pairs.push((
            key.clone(),
            JwtKey::from_pem(alg, key.public_pem.unwrap()).unwrap(),
            jwk_key(&key),
        ));
    }
    for (alg, ours) in [
        (Algorithm::HS256, Alg::HS256),
        (Algorithm::HS384, Alg::HS384),
        (Algorithm::HS512, Alg::HS512),
    ] {
        let key = TestKey::hmac("hmac", alg, SECRET);
        let ours = JwtKey::hmac(ours, SECRET).unwrap();
        pairs.push((key, ours.clone(), ours));
    }
    pairs
}

fn jwk_key(key: &TestKey) -> JwtKey {
    JwtKey::from_jwk(key.jwk().to_string().as_bytes(), &JwkOptions::default()).unwrap()
}

fn verifier(key: JwtKey) -> Verifier {
    Verifier::new(JwtKeySet::new([key]), rules())
}

fn reason(verifier: &Verifier, token: &str) -> TokenReason {
    verifier
        .verify_at::<Value>(token, SystemTime::now())
        .unwrap_err()
        .reason()
}

#[test]
fn every_algorithm_verifies_with_pem_and_jwk_keys() {
    for (signer, pem, jwk) in pairs() {
        let token = signer.sign(&claims(ISS, AUD, "ada"));
        for key in [pem.clone(), jwk] {
            let verified = verifier(key.clone().with_kid(&signer.kid)).verify(&token);
            let verified = verified.unwrap_or_else(|e| panic!("{:?}: {e}", signer.alg));
            assert_eq!(verified.identity.subject(), "ada");
            assert_eq!(verified.key().alg(), key.alg());
        }
        // Keys are found by the token's kid: a key without one does not match it.
        assert_eq!(reason(&verifier(pem), &token), TokenReason::UnknownKey);
    }
}

#[test]
fn none_is_never_accepted() {
    let key = JwtKey::hmac(Alg::HS256, SECRET).unwrap();
    let payload = base64_url(&claims(ISS, AUD, "mallory").to_string());
    for header in [
        r#"{"alg":"none"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"NONE","typ":"JWT"}"#,
    ] {
        let header = base64_url(header);
        for signature in ["", "c2ln"] {
            let token = format!("{header}.{payload}.{signature}");
            let reason = reason(&verifier(key.clone()), &token);
            assert!(
                matches!(
                    reason,
                    TokenReason::UnsupportedAlgorithm | TokenReason::Malformed
                ),
                "{token}: {reason:?}"
            );
        }
    }
}

#[test]
fn an_rsa_public_key_cannot_be_used_as_an_hmac_secret() {
    let rsa = TestKey::rsa_a("k1", Algorithm::RS256);
    let public_pem = rsa.public_pem.unwrap();
    // The classic confusion: sign HS256 with the public key's PEM bytes as the secret.
    let forger = TestKey::hmac("k1", Algorithm::HS256, public_pem);
    let token = forger.sign(&claims(ISS, AUD, "mallory"));
    let by_pem = JwtKey::from_pem(Alg::RS256, public_pem)
        .unwrap()
        .with_kid("k1");
    assert_eq!(
        reason(&verifier(by_pem), &token),
        TokenReason::AlgorithmMismatch
    );
    let by_jwk = jwk_key(&rsa);
    assert_eq!(
        reason(&verifier(by_jwk), &token),
        TokenReason::AlgorithmMismatch
    );
    // Nor an EC key with an RSA algorithm, or the reverse.
    let ec = TestKey::ec256("k1");
    let token = ec.sign(&claims(ISS, AUD, "mallory"));
    let rsa_key = JwtKey::from_pem(Alg::RS256, public_pem)
        .unwrap()
        .with_kid("k1");
    assert_eq!(
        reason(&verifier(rsa_key), &token),
        TokenReason::AlgorithmMismatch
    );
}

#[test]
fn keys_named_by_the_token_are_never_used() {
    // The attacker's own key, embedded (`jwk`) and pointed at (`jku`, `x5u`): the token is
    // signed by it and names the trusted kid.
    let attacker = TestKey::rsa_b("trusted", Algorithm::RS256);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("trusted".into());
    header.jku = Some("http://127.0.0.1:9/jwks".into());
    header.x5u = Some("http://127.0.0.1:9/cert".into());
    header.jwk = Some(serde_json::from_value(attacker.jwk()).unwrap());
    let token = attacker.sign_with(&header, &claims(ISS, AUD, "mallory"));
    let trusted = jwk_key(&TestKey::rsa_a("trusted", Algorithm::RS256));
    assert_eq!(
        reason(&verifier(trusted), &token),
        TokenReason::BadSignature
    );
}

#[test]
fn tampering_breaks_the_signature() {
    let key = TestKey::ec256("k");
    let token = key.sign(&claims(ISS, AUD, "ada"));
    let verifier = verifier(jwk_key(&key));
    let (head, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_payload = base64_url(&claims(ISS, AUD, "admin").to_string());
    let forged = format!("{head}.{forged_payload}.{signature}");
    assert_eq!(reason(&verifier, &forged), TokenReason::BadSignature);
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 5;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(matches!(
        reason(&verifier, &flipped),
        TokenReason::BadSignature | TokenReason::Malformed
    ));
}

/// One test per RFC 8725 / RFC 7519 claim rule, through real signed tokens.
#[test]
fn claim_rules() {
    let key = TestKey::ed25519("k");
    let verifier = Verifier::new(
        JwtKeySet::new([jwk_key(&key)]),
        rules().with_leeway(Duration::from_secs(30)),
    );
    let n = now();
    let cases: Vec<(&str, Value, Result<(), TokenReason>)> = vec![
        (
            "valid",
            json!({"iss": ISS, "aud": AUD, "exp": n + 60}),
            Ok(()),
        ),
        (
            "exp required",
            json!({"iss": ISS, "aud": AUD}),
            Err(TokenReason::MissingClaim),
        ),
        (
            "expired",
            json!({"iss": ISS, "aud": AUD, "exp": n - 31}),
            Err(TokenReason::Expired),
        ),
        (
            "expired within leeway",
            json!({"iss": ISS, "aud": AUD, "exp": n - 20}),
            Ok(()),
        ),
        (
            "exp not a number",
            json!({"iss": ISS, "aud": AUD, "exp": "tomorrow"}),
            Err(TokenReason::InvalidClaim),
        ),
        (
            "nbf in the future",
            json!({"iss": ISS, "aud": AUD, "exp": n + 600, "nbf": n + 120}),
            Err(TokenReason::NotYetValid),
        ),
        (
            "iat in the future",
            json!({"iss": ISS, "aud": AUD, "exp": n + 600, "iat": n + 120}),
            Err(TokenReason::IssuedInFuture),
        ),
        (
            "iss missing",
            json!({"aud": AUD, "exp": n + 60}),
            Err(TokenReason::MissingClaim),
        ),
        (
            "iss wrong",
            json!({"iss": "https://evil.example", "aud": AUD, "exp": n + 60}),
            Err(TokenReason::WrongIssuer),
        ),
        (
            "aud missing",
            json!({"iss": ISS, "exp": n + 60}),
            Err(TokenReason::MissingClaim),
        ),
        (
            "aud wrong",
            json!({"iss": ISS, "aud": "https://other.example", "exp": n + 60}),
            Err(TokenReason::WrongAudience),
        ),
        (
            "aud among others",
            json!({"iss": ISS, "aud": ["x", AUD], "exp": n + 60}),
            Ok(()),
        ),
        (
            "payload not an object",
            json!([1, 2]),
            Err(TokenReason::Malformed),
        ),
        // Issue 16, item 5: a token without a subject was accepted with subject "".
        (
            "sub missing",
            json!({"iss": ISS, "aud": AUD, "exp": n + 60, "sub": null}),
            Err(TokenReason::MissingClaim),
        ),
        (
            "sub empty",
            json!({"iss": ISS, "aud": AUD, "exp": n + 60, "sub": ""}),
            Err(TokenReason::MissingClaim),
        ),
        (
            "sub not a string",
            json!({"iss": ISS, "aud": AUD, "exp": n + 60, "sub": 7}),
            Err(TokenReason::InvalidClaim),
        ),
    ];
    for (name, mut claims, expected) in cases {
        // Every case names a subject unless it is about the subject.
        if let Some(object) = claims.as_object_mut() {
            object.entry("sub").or_insert(json!("ada"));
            if object["sub"].is_null() {
                object.remove("sub");
            }
        }
        let token = key.sign(&claims);
        let outcome = verifier
            .verify_at::<Value>(&token, SystemTime::now())
            .map(|_| ())
            .map_err(|e| e.reason());
        assert_eq!(outcome, expected, "{name}");
    }
}

#[test]
fn header_rules() {
    let key = TestKey::hmac("k", Algorithm::HS256, SECRET);
    let ours = JwtKey::hmac(Alg::HS256, SECRET).unwrap().with_kid("k");
    let claims = claims(ISS, AUD, "ada").to_string();
    let typed = Verifier::new(
        JwtKeySet::new([ours.clone()]),
        rules().with_types(["at+jwt"]),
    );
    let plain = verifier(ours);
    let cases: &[(&str, &Verifier, Result<(), TokenReason>)] = &[
        (
            r#"{"alg":"HS256","kid":"k","typ":"at+jwt"}"#,
            &typed,
            Ok(()),
        ),
        (
            r#"{"alg":"HS256","kid":"k","typ":"application/at+jwt"}"#,
            &typed,
            Ok(()),
        ),
        (
            r#"{"alg":"HS256","kid":"k","typ":"JWT"}"#,
            &typed,
            Err(TokenReason::WrongType),
        ),
        (
            r#"{"alg":"HS256","kid":"k"}"#,
            &typed,
            Err(TokenReason::WrongType),
        ),
        (
            r#"{"alg":"HS256","kid":"k","crit":["exp"],"exp":1}"#,
            &plain,
            Err(TokenReason::CriticalHeader),
        ),
        (
            r#"{"alg":"HS256","kid":"k","cty":"JWT"}"#,
            &plain,
            Err(TokenReason::NestedToken),
        ),
        (
            r#"{"alg":"HS256","kid":"k","kid":"other"}"#,
            &plain,
            Err(TokenReason::Malformed),
        ),
        (
            r#"{"alg":"HS256","kid":"../../etc/passwd"}"#,
            &plain,
            Err(TokenReason::UnknownKey),
        ),
        (
            r#"{"alg":"HS256","kid":"k","x5c":["MIIB"]}"#,
            &plain,
            Ok(()),
        ),
    ];
    for (header, verifier, expected) in cases {
        let token = key.sign_raw(header.as_bytes(), claims.as_bytes());
        let outcome = verifier
            .verify_at::<Value>(&token, SystemTime::now())
            .map(|_| ())
            .map_err(|e| e.reason());
        assert_eq!(outcome, *expected, "{header}");
    }
}

#[test]
fn size_and_encoding_are_checked_before_anything_else() {
    let key = TestKey::hmac("k", Algorithm::HS256, SECRET);
    let verifier = verifier(JwtKey::hmac(Alg::HS256, SECRET).unwrap().with_kid("k"));
    let mut big = claims(ISS, AUD, "ada");
    big["padding"] = json!("x".repeat(9000));
    assert_eq!(reason(&verifier, &key.sign(&big)), TokenReason::TooLarge);
    let token = key.sign(&claims(ISS, AUD, "ada"));
    let padded = format!("{token}=");
    assert_eq!(reason(&verifier, &padded), TokenReason::Malformed);
    let standard_alphabet = token.replace('-', "+").replace('_', "/");
    if standard_alphabet != token {
        assert_eq!(
            reason(&verifier, &standard_alphabet),
            TokenReason::Malformed
        );
    }
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// Issue 16, item 5: RFC 9068 access tokens (`typ: at+jwt`) must name their subject, whatever
/// claim the identity is read from; identities carry the issuer, so the same `sub` from two
/// issuers (or from an API key) is not one caller.
#[test]
fn access_tokens_need_sub_and_identities_carry_the_issuer() {
    let key = TestKey::hmac("k", Algorithm::HS256, SECRET);
    let keys = || JwtKeySet::new([JwtKey::hmac(Alg::HS256, SECRET).unwrap().with_kid("k")]);
    let by_client_id = IdentityClaims {
        subject: "client_id".to_owned(),
        ..IdentityClaims::default()
    };
    let verifier = Verifier::new(keys(), rules()).with_identity_claims(by_client_id);
    let n = now();
    let sign = |typ: &str, claims: &Value| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k".into());
        header.typ = Some(typ.into());
        key.sign_with(&header, claims)
    };
    let without_sub = json!({"iss": ISS, "aud": AUD, "exp": n + 60, "client_id": "billing"});
    let verified = verifier
        .verify_at::<Value>(&sign("JWT", &without_sub), SystemTime::now())
        .unwrap();
    assert_eq!(verified.identity.subject(), "billing");
    assert_eq!(verified.identity.issuer(), Some(ISS));
    for typ in ["at+jwt", "application/at+JWT"] {
        let error = verifier
            .verify_at::<Value>(&sign(typ, &without_sub), SystemTime::now())
            .unwrap_err();
        assert_eq!(error.reason(), TokenReason::MissingClaim, "{typ}");
        assert_eq!(error.claim_name(), Some("sub"), "{typ}");
    }
    let mut with_sub = without_sub.clone();
    with_sub["sub"] = json!("svc-1");
    assert!(
        verifier
            .verify_at::<Value>(&sign("at+jwt", &with_sub), SystemTime::now())
            .is_ok()
    );
    // A token whose subject claim is missing is refused, never an identity named "".
    let plain = Verifier::new(keys(), rules());
    let error = plain
        .verify_at::<Value>(&sign("JWT", &without_sub), SystemTime::now())
        .unwrap_err();
    assert_eq!(
        (error.reason(), error.claim_name()),
        (TokenReason::MissingClaim, Some("sub"))
    );
}

/// Issue 16, item 11: RSA keys given as PEM or DER were not held to the 2048-bit minimum that
/// JWKs are. A 1024-bit key is refused in every form; a 2048-bit one is accepted.
#[test]
fn rsa_keys_under_2048_bits_are_refused_in_every_form() {
    const PEM_1024: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCzfO6PgZuXOwOC6apnRV0zYJn9
XoD0dYedJtoP37k3/c5Y2Hdf/SKVpiyb4IlRyVD0fUVOd0KMSfgMVDn85Ui+H0BC
+Cx2PNLoHlgcbfylTFo+720HP7A6MhhMarA67xWSYrjvseLHTIWkKNML0pM9nruW
nuORABi/PXYZWSVMnwIDAQAB
-----END PUBLIC KEY-----";
    const PKCS1_1024_HEX: &str = "30818902818100b37cee8f819b973b0382e9aa67455d336099fd5e80f475879d26da0fdfb937fdce58d8775ffd2295a62c9be08951c950f47d454e77428c49f80c5439fce548be1f4042f82c763cd2e81e581c6dfca54c5a3eef6d073fb03a32184c6ab03aef159262b8efb1e2c74c85a428d30bd2933d9ebb969ee3910018bf3d761959254c9f0203010001";
    let der: Vec<u8> = (0..PKCS1_1024_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(PKCS1_1024_HEX.get(i..i + 2).unwrap(), 16).unwrap())
        .collect();
    assert_eq!(
        JwtKey::from_pem(Alg::RS256, PEM_1024.as_bytes()).unwrap_err(),
        palisade_jwt::KeyError::RsaTooSmall
    );
    assert_eq!(
        JwtKey::from_der(Alg::PS256, &der).unwrap_err(),
        palisade_jwt::KeyError::RsaTooSmall
    );
    // Not DER at all, or DER with something after the key: unreadable, never accepted.
    assert_eq!(
        JwtKey::from_der(Alg::RS256, b"not a key").unwrap_err(),
        palisade_jwt::KeyError::Unreadable
    );
    let mut trailing = der.clone();
    trailing.push(0);
    assert_eq!(
        JwtKey::from_der(Alg::RS256, &trailing).unwrap_err(),
        palisade_jwt::KeyError::Unreadable
    );
    let key = TestKey::rsa_a("k", Algorithm::RS256);
    assert!(JwtKey::from_pem(Alg::RS256, key.public_pem.unwrap()).is_ok());
}
