//! A hostile caller: requests built to break the trail, read a record through verification,
//! or slip past a limit. Each case names what it sends, the refusal it must get, and what the
//! trail must say afterwards.

use crate::helpers::*;
use lienthong_gateway::audit::verify::{Options, verify_file};
use lienthong_proto::gateway::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

fn public_key(env: &TestEnv) -> ed25519_dalek::VerifyingKey {
    let pem = std::fs::read_to_string(&env.pki.audit_signing.public_key).unwrap();
    lienthong_gateway::audit::verify::public_key_from_pem(&pem).unwrap()
}

/// The trail verifies from its first record to its last.
fn assert_trail_verifies(env: &TestEnv) {
    let report = verify_file(
        &env.trail(),
        &Options {
            keys: vec![public_key(env)],
            from_genesis: true,
            to_sequence: None,
            anchor: None,
        },
    )
    .unwrap();
    assert!(report.ok(), "{report:?}");
}

/// The BadRequest field violations of a refusal, as (field, description).
fn violations(s: &tonic::Status) -> Vec<(String, String)> {
    s.get_error_details()
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| (v.field.clone(), v.description.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn repeated_fields_and_claims_are_capped_at_the_edge_and_the_trail_stays_readable() {
    let mut env = spawn_env().await;
    let adult = persona("complete-adult");
    let mut s = env.officer("CB.H42.0001").await;

    // 80,000 junk field names (240 KB): refused as a whole, naming the field and the cap.
    let mut req = lookup("1.004222", adult);
    req.fields = vec!["x".into(); 80_000];
    let refused = s
        .client
        .lookup_citizen(authed(&s.token, req))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::InvalidArgument, "INVALID_ARGUMENT");
    let v = violations(&refused);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "fields");
    assert!(v[0].1.contains("at most 32"), "{v:?}");

    // A field named twice is disclosed once.
    let mut req = lookup("1.004222", adult);
    req.fields = vec!["full_name".into(), "full_name".into()];
    let served = s
        .client
        .lookup_citizen(authed(&s.token, req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(served.disclosed_fields, vec!["full_name"]);

    // One claim per field per request.
    let refused = s
        .verify(
            "1.004222",
            adult,
            &[("date_of_birth", "1988"), ("date_of_birth", "02/1988")],
        )
        .await
        .unwrap_err();
    assert_refused(&refused, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violations(&refused)[0].0, "claims[1].field");

    // A declared value far over the bound, and a name of 100 KB.
    let long = "Nguyễn ".repeat(20_000);
    let refused = s
        .verify("1.004222", adult, &[("full_name", long.as_str())])
        .await
        .unwrap_err();
    assert_eq!(violations(&refused)[0].0, "claims[0].value");
    let refused = s
        .verify("1.004222", adult, &[(long.as_str(), "x")])
        .await
        .unwrap_err();
    assert!(
        refused.message().len() < 2_000,
        "{}",
        refused.message().len()
    );

    env.shutdown().await;
    // Every record is small, and the whole trail reads back and verifies.
    let size = std::fs::metadata(env.trail()).unwrap().len();
    assert!(size < 64 * 1024, "trail of {size} bytes");
    assert_trail_verifies(&env);
}

#[tokio::test]
async fn every_malformed_request_is_refused_with_error_info_and_a_vietnamese_message() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let cases: Vec<(&str, pb::LookupCitizenRequest, &str, &str)> = vec![
        (
            "a birth year in the future (century digit 2, year 99)",
            lookup("1.004222", "042299999005"),
            "INVALID_ARGUMENT",
            "personal_id",
        ),
        (
            "a birth year in the 2190s",
            lookup("1.004222", "042490999005"),
            "INVALID_ARGUMENT",
            "personal_id",
        ),
        (
            "a letter in the number",
            lookup("1.004222", "04218899900A"),
            "INVALID_ARGUMENT",
            "personal_id",
        ),
        (
            "no context",
            pb::LookupCitizenRequest {
                context: None,
                ..lookup("1.004222", persona("complete-adult"))
            },
            "INVALID_ARGUMENT",
            "context",
        ),
        (
            "an unknown procedure",
            lookup("9.999999", persona("complete-adult")),
            "UNKNOWN_PROCEDURE",
            "context.procedure_code",
        ),
    ];
    for (what, req, reason, field) in cases {
        let refused = s
            .client
            .lookup_citizen(authed(&s.token, req))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        let d = refused.get_error_details();
        assert_eq!(
            d.error_info().map(|i| i.reason.as_str()),
            Some(reason),
            "{what}"
        );
        assert!(
            violations(&refused).iter().any(|(f, _)| f == field),
            "{what}: {refused:?}"
        );
        let vi = d.localized_message().unwrap().message.clone();
        for english in ["digits", "missing", "is not", "the ", " a "] {
            assert!(!vi.contains(english), "{what}: English in {vi:?}");
        }
    }
}
