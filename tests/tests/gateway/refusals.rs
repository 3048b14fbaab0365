//! Every refusal reason, with its code, its ErrorInfo reason and a Vietnamese message.

use crate::helpers::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use lienthong_devtool::pki::{DevCa, Validity};
use lienthong_devtool::sample;
use lienthong_devtool::tokens::{TokenSpec, mint, mint_with};
use lienthong_proto::gateway::v1 as pb;
use pb::citizen_gateway_client::CitizenGatewayClient;
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

async fn lookup_with(
    client: &mut CitizenGatewayClient<tonic::transport::Channel>,
    token: &str,
    procedure: &str,
) -> tonic::Status {
    client
        .lookup_citizen(authed(token, lookup(procedure, persona("complete-adult"))))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn certificates_identify_the_unit() {
    let env = spawn_env().await;
    let token = env.token("CB.H42.0001");

    // No client certificate: the handshake succeeds (for health checks), the call does not.
    let mut c = CitizenGatewayClient::new(env.channel(None).await);
    let s = lookup_with(&mut c, &token, "1.004222").await;
    assert_refused(&s, Code::Unauthenticated, "NO_CLIENT_CERTIFICATE");

    // A certificate from the right CA for a unit this gateway does not know.
    let mut c = CitizenGatewayClient::new(env.channel(Some(&env.pki.dev_client)).await);
    let s = lookup_with(&mut c, &token, "1.004222").await;
    assert_refused(&s, Code::Unauthenticated, "UNKNOWN_UNIT");
    assert!(s.message().contains("000.00.00.DEV"), "{}", s.message());

    // A certificate from another CA, and an expired one from the right CA: no handshake.
    let foreign = DevCa::create(&env.dir.path().join("foreign"), "Foreign CA").unwrap();
    let foreign_cert = foreign
        .unit_client("h42", "000.00.00.H42", "Impostor", Validity::Days(1))
        .unwrap();
    let ca = DevCa::open(&env.dir.path().join("pki")).unwrap();
    let expired = ca
        .unit_client("expired", "000.00.00.H42", "Hà Tĩnh", Validity::Expired)
        .unwrap();
    for identity in [foreign_cert, expired] {
        let channel = lienthong_devtool::client::mtls_channel(
            &format!("https://{}", env.addr),
            &env.pki.ca,
            Some(&identity),
        )
        .await;
        let refused = match channel {
            Err(_) => true,
            Ok(ch) => CitizenGatewayClient::new(ch)
                .lookup_citizen(authed(
                    &token,
                    lookup("1.004222", persona("complete-adult")),
                ))
                .await
                .is_err_and(|s| s.code() == Code::Unavailable || s.code() == Code::Unknown),
        };
        assert!(refused, "{} was served", identity.cert.display());
    }
}

#[tokio::test]
async fn tokens_are_checked_and_bound() {
    let env = spawn_env().await;
    let mut c = env.client_for_unit("ha-tinh").await;
    let h42_cert = env.unit_cert("ha-tinh").cert;
    let base = || {
        TokenSpec::new("CB.H42.0001", "000.00.00.H42", &["receiver"])
            .bound_to_file(&h42_cert)
            .unwrap()
    };
    let issuer_key = env.pki.issuer.key.clone();
    let signed = |spec: TokenSpec| mint(&issuer_key, &spec).unwrap();

    // Missing.
    let s = c
        .lookup_citizen(tonic::Request::new(lookup(
            "1.004222",
            persona("complete-adult"),
        )))
        .await
        .unwrap_err();
    assert_refused(&s, Code::Unauthenticated, "MISSING_TOKEN");

    // Malformed, foreign key, wrong algorithm (HMAC with the public key as secret), none.
    let other_issuer = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let forged = mint_with(
        &EncodingKey::from_ed_pem(other_issuer.serialize_pem().as_bytes()).unwrap(),
        Algorithm::EdDSA,
        &base(),
    )
    .unwrap();
    let public_key = std::fs::read(&env.pki.issuer.public_key).unwrap();
    let confused = mint_with(
        &EncodingKey::from_secret(&public_key),
        Algorithm::HS256,
        &base(),
    )
    .unwrap();
    let unsigned = {
        let real = signed(base());
        let mut parts = real.split('.');
        let (_, claims) = (parts.next(), parts.next().unwrap());
        // {"alg":"none","typ":"JWT"}
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.")
    };
    let cases: Vec<(String, &str, &str)> = vec![
        ("not-a-jwt".into(), "BAD_TOKEN", "not a JWT"),
        (forged, "BAD_TOKEN", "signature"),
        (confused, "BAD_TOKEN", "HS256"),
        (unsigned, "BAD_TOKEN", ""),
        (
            signed(TokenSpec {
                not_before_offset: -7200,
                ttl: Duration::from_secs(600),
                ..base()
            }),
            "TOKEN_EXPIRED",
            "expired",
        ),
        (
            signed(TokenSpec {
                not_before_offset: 3600,
                ..base()
            }),
            "TOKEN_NOT_YET_VALID",
            "not valid yet",
        ),
        (
            signed(TokenSpec {
                audience: "another-gateway".into(),
                ..base()
            }),
            "BAD_TOKEN",
            "audience",
        ),
        (
            signed(TokenSpec {
                issuer: "https://sso.elsewhere".into(),
                ..base()
            }),
            "BAD_TOKEN",
            "issuer",
        ),
        (
            signed(TokenSpec {
                roles: vec!["superuser".into()],
                ..base()
            }),
            "BAD_TOKEN",
            "superuser",
        ),
        (
            signed(TokenSpec {
                bound_to: None,
                ..base()
            }),
            "TOKEN_CERTIFICATE_MISMATCH",
            "cnf",
        ),
        (
            signed(
                base()
                    .bound_to_file(&env.unit_cert("thanh-hoa").cert)
                    .unwrap(),
            ),
            "TOKEN_CERTIFICATE_MISMATCH",
            "thumbprint",
        ),
    ];
    for (token, reason, says) in cases {
        let s = lookup_with(&mut c, &token, "1.004222").await;
        assert_refused(&s, Code::Unauthenticated, reason);
        assert!(s.message().contains(says), "{reason}: {}", s.message());
    }

    // A Thanh Hóa officer's token presented through the Hà Tĩnh system.
    let s = lookup_with(
        &mut c,
        &signed(
            TokenSpec::new("CB.H56.0001", "000.00.00.H56", &["receiver"])
                .bound_to_file(&h42_cert)
                .unwrap(),
        ),
        "1.004222",
    )
    .await;
    assert_refused(&s, Code::PermissionDenied, "UNIT_MISMATCH");
    assert!(s.message().contains("000.00.00.H56") && s.message().contains("000.00.00.H42"));

    // And the good token works, many times (served from the cache after the first).
    for _ in 0..3 {
        c.lookup_citizen(authed(
            &signed(base()),
            lookup("1.004222", persona("complete-adult")),
        ))
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn policy_refuses_with_the_rule_that_refused() {
    let env = spawn_env().await;
    let mut receiver = env.officer("CB.H42.0001").await;
    let mut commune = env.officer("CB.XTS.0001").await;
    let mut pending = env.officer("CB.P01.0001").await;

    // Unit not approved.
    let s = lookup_with(&mut pending.client, &pending.token, "1.004222").await;
    assert_refused(&s, Code::PermissionDenied, "UNIT_NOT_APPROVED");
    assert!(s.message().contains("pending"), "{}", s.message());

    // The commune counter does not issue criminal-record certificates.
    let s = lookup_with(&mut commune.client, &commune.token, "2.000488").await;
    assert_refused(&s, Code::PermissionDenied, "PROCEDURE_NOT_ALLOWED");

    // A receiver may not process criminal-record certificates.
    let s = lookup_with(&mut receiver.client, &receiver.token, "2.000488").await;
    assert_refused(&s, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    assert!(s.message().contains("processor"));

    // An auditor never sees citizen data.
    let mut auditor = env.officer("CB.H42.KT01").await;
    let s = lookup_with(&mut auditor.client, &auditor.token, "1.004222").await;
    assert_refused(&s, Code::PermissionDenied, "ROLE_NOT_ALLOWED");

    // Death registration does not need the phone.
    let mut req = lookup("1.000656", persona("deceased"));
    req.fields = vec!["full_name".into(), "phone".into(), "card".into()];
    let s = receiver
        .client
        .lookup_citizen(authed(&receiver.token, req))
        .await
        .unwrap_err();
    assert_refused(&s, Code::PermissionDenied, "FIELD_NOT_ALLOWED");
    assert!(s.message().contains("phone, card"), "{}", s.message());

    // Nor may a claim be verified outside the procedure's fields.
    let claims = [("phone", "0912345678")];
    let s = receiver
        .verify("1.000656", persona("deceased"), &claims)
        .await
        .unwrap_err();
    assert_refused(&s, Code::PermissionDenied, "FIELD_NOT_ALLOWED");

    // Marriage registration does not read households.
    let s = receiver
        .client
        .get_household(authed(
            &receiver.token,
            pb::GetHouseholdRequest {
                context: ctx("1.000894"),
                personal_id: persona("household-head").into(),
            },
        ))
        .await
        .unwrap_err();
    assert_refused(&s, Code::PermissionDenied, "HOUSEHOLD_NOT_ALLOWED");

    // Unknown procedure, missing dossier, malformed ID: INVALID_ARGUMENT naming the field.
    let s = lookup_with(&mut receiver.client, &receiver.token, "9.999999").await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("9.999999"));
    assert_eq!(
        s.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "context.procedure_code"
    );
    let mut req = lookup("1.004222", persona("complete-adult"));
    req.context.as_mut().unwrap().dossier_id.clear();
    let s = receiver
        .client
        .lookup_citizen(authed(&receiver.token, req))
        .await
        .unwrap_err();
    assert_refused(&s, Code::InvalidArgument, "INVALID_ARGUMENT");
    let violations = s
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .clone();
    assert_eq!(violations[0].field, "context.dossier_id");
    let s = receiver
        .lookup("1.004222", "04218899900")
        .await
        .unwrap_err();
    assert_refused(&s, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(
        s.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "personal_id"
    );

    // A well-formed number nobody holds.
    let s = receiver
        .lookup("1.004222", "042188000000")
        .await
        .unwrap_err();
    assert_refused(&s, Code::NotFound, "CITIZEN_NOT_FOUND");
}

#[tokio::test]
async fn a_production_gateway_refuses_sandbox_credentials() {
    let env = spawn_env_with(&[("ENVIRONMENT", "\"production\"")]).await;
    let mut sandbox = env.officer("CB.S01.0001").await;
    let s = lookup_with(&mut sandbox.client, &sandbox.token, "1.004222").await;
    assert_refused(&s, Code::PermissionDenied, "UNIT_NOT_APPROVED");
    assert!(s.message().contains("sandbox"), "{}", s.message());
    // While a production unit is served.
    let mut h42 = env.officer("CB.H42.0001").await;
    h42.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    // And the sandbox gateway serves the sandbox unit.
    let env = spawn_env().await;
    let mut sandbox = env.officer("CB.S01.0001").await;
    sandbox
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
}

#[tokio::test]
async fn rate_limits_name_the_limit_and_when_to_retry() {
    let env = spawn_env().await;
    // The commune counter: officers 2/s burst 5, the unit 5/s burst 10.
    let officer = sample::officer("CB.XTS.0001").unwrap();
    let mut a = env.officer(officer.code).await;
    let call = |s: &mut Session| {
        let mut client = s.client.clone();
        let token = s.token.clone();
        async move {
            client
                .lookup_citizen(authed(
                    &token,
                    lookup("1.004227", persona("complete-adult")),
                ))
                .await
        }
    };
    for _ in 0..5 {
        call(&mut a).await.unwrap();
    }
    let s = call(&mut a).await.unwrap_err();
    assert_refused(&s, Code::ResourceExhausted, "RATE_LIMITED");
    let d = s.get_error_details();
    assert_eq!(
        d.quota_failure().unwrap().violations[0].subject,
        "officer:CB.XTS.0001"
    );
    let retry = d.retry_info().unwrap().retry_delay.unwrap();
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(1),
        "{retry:?}"
    );

    // Two other officers of the same unit share what is left of its burst of 10.
    let mut others = Vec::new();
    for i in 2..=3 {
        let token = env.token_with(officer.code, |t| TokenSpec {
            officer: format!("CB.XTS.000{i}"),
            ..t
        });
        others.push(Session {
            client: a.client.clone(),
            token,
        });
    }
    let mut served = 0;
    let mut refusal = None;
    for i in 0..8 {
        match call(&mut others[i % 2]).await {
            Ok(_) => served += 1,
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    assert_eq!(served, 5);
    let s = refusal.unwrap();
    assert_refused(&s, Code::ResourceExhausted, "RATE_LIMITED");
    assert_eq!(
        s.get_error_details().quota_failure().unwrap().violations[0].subject,
        "unit:001.01.42.H42"
    );

    // Time passes (on the gateway's clock): the first officer is served again.
    env.clock.advance(retry);
    call(&mut a).await.unwrap();
}

#[tokio::test]
async fn the_global_limit_protects_the_database() {
    let env = spawn_env_with(&[("LIMITS__PER_SECOND", "1"), ("LIMITS__BURST", "2")]).await;
    let mut h42 = env.officer("CB.H42.0001").await;
    let mut h56 = env.officer("CB.H56.0001").await;
    h42.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    h56.lookup("1.004222", persona("thanh-hoa-adult"))
        .await
        .unwrap();
    let s = h56
        .lookup("1.004222", persona("thanh-hoa-adult"))
        .await
        .unwrap_err();
    assert_refused(&s, Code::ResourceExhausted, "RATE_LIMITED");
    assert_eq!(
        s.get_error_details().quota_failure().unwrap().violations[0].subject,
        "global:population database"
    );
}

#[tokio::test]
async fn bulk_verification_is_capped_per_unit() {
    let env = spawn_env_with(&[("UNITS__0__BATCH_MAX_ITEMS", "3")]).await;
    let item = |i: u32| pb::VerifyBatchRequest {
        old_id_number: String::new(),
        context: if i == 0 { ctx("1.004227") } else { None },
        item_id: format!("item-{i}"),
        personal_id: persona("complete-adult").into(),
        claims: vec![pb::Claim {
            field: "full_name".into(),
            value: "Trần Thị Minh Thư".into(),
        }],
    };
    // The commune counter may not verify in bulk at all.
    let mut commune = env.officer("CB.XTS.0001").await;
    let s = commune
        .client
        .verify_batch(authed(&commune.token, tokio_stream::iter((0..2).map(item))))
        .await
        .unwrap_err();
    assert_refused(&s, Code::PermissionDenied, "BULK_NOT_ALLOWED");

    // Hà Tĩnh (units[0]) is capped at 3 here: three answers, then RESOURCE_EXHAUSTED.
    let mut h42 = env.officer("CB.H42.0001").await;
    let mut out = h42
        .client
        .verify_batch(authed(&h42.token, tokio_stream::iter((0..5).map(item))))
        .await
        .unwrap()
        .into_inner();
    let mut answered = Vec::new();
    let end = loop {
        match out.message().await {
            Ok(Some(r)) => answered.push(r.item_id),
            Ok(None) => break None,
            Err(s) => break Some(s),
        }
    };
    assert_eq!(answered, ["item-0", "item-1", "item-2"]);
    let s = end.unwrap();
    assert_refused(&s, Code::ResourceExhausted, "BATCH_TOO_LARGE");
    assert!(s.get_error_details().quota_failure().is_some());
}
