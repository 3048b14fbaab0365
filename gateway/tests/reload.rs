//! Reloading the issuers' keys swaps them at once: tokens from the new key are accepted, those
//! from the old key refused, the cache of verified tokens included.
#![allow(clippy::unwrap_used)]

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use lienthong_devtool::tokens::{TokenSpec, mint_with};
use lienthong_domain::UnitCode;
use lienthong_gateway::config::{Approval, Auth, Environment, Issuer, Rate, Unit};
use lienthong_gateway::pipeline::rescue::Refusal;
use lienthong_gateway::pipeline::{Authn, Caller, Gate};
use lienthong_gateway::tls::CertificateIdentity;
use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

fn keys() -> (EncodingKey, DecodingKey) {
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    (
        EncodingKey::from_ed_pem(k.serialize_pem().as_bytes()).unwrap(),
        DecodingKey::from_ed_pem(k.public_key_pem().as_bytes()).unwrap(),
    )
}

fn auth(key: DecodingKey) -> Auth {
    Auth {
        audience: "lienthong-gateway".into(),
        leeway: Duration::from_secs(30),
        cache_entries: 100,
        issuers: vec![Issuer {
            issuer: "https://sso.lienthong.dev".into(),
            algorithm: Algorithm::EdDSA,
            key,
            require_certificate_binding: false,
        }],
    }
}

fn request(token: &str) -> http::request::Parts {
    let one = NonZeroU32::MIN;
    let code = UnitCode::parse("000.00.00.H42").unwrap();
    let unit = Unit {
        code: code.clone(),
        name: "Hà Tĩnh".into(),
        environment: Environment::Production,
        approval: Approval::Approved,
        procedures: BTreeSet::new(),
        rate: Rate {
            per_second: one,
            burst: one,
        },
        officer_rate: Rate {
            per_second: one,
            burst: one,
        },
        batch_max_items: 0,
    };
    let (mut parts, ()) = http::Request::builder()
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap()
        .into_parts();
    parts.extensions.insert(Caller {
        unit: Arc::new(unit),
        certificate: CertificateIdentity {
            unit: code,
            fingerprint: "00".repeat(32),
            thumbprint: "AA".into(),
        },
        peer: None,
    });
    parts
}

#[test]
fn a_reload_swaps_the_keys_and_forgets_verified_tokens() {
    let (old_sign, old_verify) = keys();
    let (new_sign, new_verify) = keys();
    let spec = TokenSpec::new("CB.H42.0001", "000.00.00.H42", &["receiver"]);
    let old_token = mint_with(&old_sign, Algorithm::EdDSA, &spec).unwrap();
    let new_token = mint_with(&new_sign, Algorithm::EdDSA, &spec).unwrap();

    let authn = Authn::new(&auth(old_verify));
    assert!(authn.check(&mut request(&old_token)).is_ok());
    assert!(matches!(
        authn.check(&mut request(&new_token)),
        Err(Refusal::BadToken(_))
    ));

    authn.reload(&auth(new_verify));
    assert!(authn.check(&mut request(&new_token)).is_ok());
    // The old token was verified and cached before the reload; it is refused now all the same.
    assert!(matches!(
        authn.check(&mut request(&old_token)),
        Err(Refusal::BadToken(_))
    ));
}
