//! The token path: any bearer value through the authentication step, for a known unit's
//! certificate. Never panics, and never authenticates (no input can carry a valid signature
//! of the issuer's key, which exists only in this process).
#![no_main]

use jsonwebtoken::{Algorithm, DecodingKey};
use libfuzzer_sys::fuzz_target;
use lienthong_domain::UnitCode;
use lienthong_gateway::config::{Approval, AuditScope, Auth, Environment, Issuer, Rate, Unit};
use lienthong_gateway::pipeline::{Authn, Caller, Gate};
use lienthong_gateway::tls::CertificateIdentity;
use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

static AUTHN: LazyLock<Authn> = LazyLock::new(|| {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    Authn::new(&Auth {
        audience: "lienthong-gateway".into(),
        leeway: Duration::from_secs(30),
        cache_entries: 1000,
        issuers: vec![Issuer {
            issuer: "https://sso.lienthong.dev".into(),
            key_digest: String::new(),
            algorithm: Algorithm::EdDSA,
            key: lienthong_gateway::config::IssuerKey::Pem(
                DecodingKey::from_ed_pem(key.public_key_pem().as_bytes()).unwrap(),
            ),
            require_certificate_binding: true,
            max_lifetime: Duration::from_secs(12 * 3600),
            refuse_replay: true,
        }],
    })
});

static CALLER: LazyLock<Caller> = LazyLock::new(|| {
    let code = UnitCode::parse("000.00.00.H42").unwrap();
    let one = Rate {
        per_second: NonZeroU32::MIN,
        burst: NonZeroU32::MIN,
    };
    Caller {
        unit: Arc::new(Unit {
            code: code.clone(),
            name: "Hà Tĩnh".into(),
            environment: Environment::Production,
            approval: Approval::Approved,
            procedures: BTreeSet::new(),
            rate: one,
            officer_rate: one,
            batch_max_items: 0,
            audit_scope: AuditScope::National,
        }),
        catalog: Arc::default(),
        certificate: CertificateIdentity {
            unit: code,
            fingerprint: "00".repeat(32),
            thumbprint: "AA".into(),
        },
        peer: None,
    }
});

fuzz_target!(|token: &str| {
    for header in [format!("Bearer {token}"), token.to_owned()] {
        let Ok(value) = http::HeaderValue::from_str(&header) else {
            continue;
        };
        let (mut parts, ()) = http::Request::builder()
            .header("authorization", value)
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.insert(CALLER.clone());
        assert!(
            AUTHN.check(&mut parts).is_err(),
            "an unsigned input authenticated"
        );
    }
});
