//! The officer's token beyond its signature: reloading the issuers' keys swaps them at once
//! (the cache of verified tokens included), a token may not live longer than its issuer allows
//! nor be issued in the future, and a single-use issuer's token is accepted once.
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
    auth_with(key, |_| {})
}

fn auth_with(key: DecodingKey, adjust: impl FnOnce(&mut Issuer)) -> Auth {
    let mut issuer = Issuer {
        issuer: "https://sso.lienthong.dev".into(),
        key_digest: String::new(),
        algorithm: Algorithm::EdDSA,
        key: lienthong_gateway::config::IssuerKey::Pem(key),
        require_certificate_binding: false,
        max_lifetime: Duration::from_secs(12 * 3600),
        refuse_replay: false,
    };
    adjust(&mut issuer);
    Auth {
        audience: "lienthong-gateway".into(),
        leeway: Duration::from_secs(30),
        cache_entries: 100,
        issuers: vec![issuer],
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
        audit_scope: lienthong_gateway::config::AuditScope::National,
    };
    let (mut parts, ()) = http::Request::builder()
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap()
        .into_parts();
    parts.extensions.insert(Caller {
        unit: Arc::new(unit),
        catalog: Arc::default(),
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

fn refused_because(r: Result<(), Refusal>, words: &str) {
    match r {
        Err(Refusal::BadToken(why)) => assert!(why.contains(words), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_token_lives_no_longer_than_its_issuer_allows_and_is_not_issued_in_the_future() {
    let (sign, verify) = keys();
    let authn = Authn::new(&auth_with(verify, |i| {
        i.max_lifetime = Duration::from_secs(3600)
    }));
    let spec = TokenSpec::new("CB.H42.0001", "000.00.00.H42", &["receiver"]);
    let ten_years = TokenSpec {
        ttl: Duration::from_secs(10 * 365 * 86_400),
        ..spec.clone()
    };
    let token = mint_with(&sign, Algorithm::EdDSA, &ten_years).unwrap();
    refused_because(authn.check(&mut request(&token)), "maximum of 3600 s");
    let future = TokenSpec {
        issued_at_offset: 600,
        ttl: Duration::from_secs(600),
        ..spec.clone()
    };
    let token = mint_with(&sign, Algorithm::EdDSA, &future).unwrap();
    refused_because(authn.check(&mut request(&token)), "issued in the future");
    // Within the leeway (30 s) and the maximum: accepted.
    let fine = TokenSpec {
        issued_at_offset: 10,
        ttl: Duration::from_secs(1800),
        ..spec
    };
    let token = mint_with(&sign, Algorithm::EdDSA, &fine).unwrap();
    assert!(authn.check(&mut request(&token)).is_ok());
}

#[test]
fn a_single_use_issuers_token_is_refused_when_replayed() {
    let (sign, verify) = keys();
    let spec = TokenSpec::new("CB.H42.0001", "000.00.00.H42", &["receiver"]);
    let once = Authn::new(&auth_with(verify.clone(), |i| i.refuse_replay = true));
    let token = mint_with(&sign, Algorithm::EdDSA, &spec).unwrap();
    assert!(once.check(&mut request(&token)).is_ok());
    refused_because(once.check(&mut request(&token)), "used already");
    let fresh = mint_with(&sign, Algorithm::EdDSA, &spec).unwrap();
    assert!(once.check(&mut request(&fresh)).is_ok());
    // Issuers that do not ask for it keep tokens reusable for their lifetime.
    let reusable = Authn::new(&auth(verify));
    assert!(reusable.check(&mut request(&token)).is_ok());
    assert!(reusable.check(&mut request(&token)).is_ok());
}
