//! The attack matrix: one row per attack — what is sent, the status and reason it must get,
//! and the audit record it must leave. The rows are run in order against one gateway; the
//! trail is then read back and every row's record checked. SECURITY.md lists the same rows.

use crate::helpers::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use lienthong_devtool::pki::{DevCa, Validity};
use lienthong_devtool::tokens::{TokenSpec, mint_with};
use lienthong_gateway::audit::record::Record;
use lienthong_proto::audit::v1 as audit;
use lienthong_proto::gateway::v1 as pb;
use std::time::Duration;
use tonic::Code;

/// What an attacker sends.
#[derive(Debug, Clone, Copy)]
enum Send {
    NoCertificate,
    UnknownUnitCertificate,
    ForeignCaCertificate,
    NoToken,
    AlgNone,
    HmacWithThePublicKey,
    ForeignSigningKey,
    ExpiredToken,
    TenYearToken,
    IssuedInTheFuture,
    TokenBoundToAnotherCertificate,
    TokenOfUnitAWithCertificateOfUnitB,
    UnapprovedUnit,
    ProcedureNotGrantedToTheUnit,
    WrongRole,
    FieldOutsideTheProcedure,
    HouseholdWithoutHouseholdAccess,
    BulkFromAUnitWithoutBulk,
    EightyThousandFields,
    TheSameClaimTwice,
    MalformedId,
    BirthYearInTheFuture,
    NoDossier,
    UnknownProcedure,
    OversizeMessage,
    UnknownPath,
    AuditorOfAnotherProvince,
    NonAuditorReadingTheTrail,
    PastTheOfficersBurst,
    GuessingABirthDate,
}

/// The record a row must leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaves {
    /// A record with the row's request id, naming the citizen and the dossier.
    Named,
    /// A record at the door: the reason and the peer, no officer, no request read.
    AtTheDoor,
    /// A record of a request the gateway could not read (no request id).
    Unread,
    /// A record of the reviewers' service.
    Review,
    /// No request was made: the TLS handshake failed; recorded at the door with the peer.
    Handshake,
}

struct Row {
    send: Send,
    code: Code,
    reason: &'static str,
    leaves: Leaves,
}

const fn row(send: Send, code: Code, reason: &'static str, leaves: Leaves) -> Row {
    Row {
        send,
        code,
        reason,
        leaves,
    }
}

const MATRIX: &[Row] = &[
    row(
        Send::NoCertificate,
        Code::Unauthenticated,
        "NO_CLIENT_CERTIFICATE",
        Leaves::AtTheDoor,
    ),
    row(
        Send::UnknownUnitCertificate,
        Code::Unauthenticated,
        "UNKNOWN_UNIT",
        Leaves::AtTheDoor,
    ),
    row(
        Send::ForeignCaCertificate,
        Code::Unavailable,
        "TLS_HANDSHAKE_FAILED",
        Leaves::Handshake,
    ),
    row(
        Send::NoToken,
        Code::Unauthenticated,
        "MISSING_TOKEN",
        Leaves::Named,
    ),
    row(
        Send::AlgNone,
        Code::Unauthenticated,
        "BAD_TOKEN",
        Leaves::Named,
    ),
    row(
        Send::HmacWithThePublicKey,
        Code::Unauthenticated,
        "BAD_TOKEN",
        Leaves::Named,
    ),
    row(
        Send::ForeignSigningKey,
        Code::Unauthenticated,
        "BAD_TOKEN",
        Leaves::Named,
    ),
    row(
        Send::ExpiredToken,
        Code::Unauthenticated,
        "TOKEN_EXPIRED",
        Leaves::Named,
    ),
    row(
        Send::TenYearToken,
        Code::Unauthenticated,
        "BAD_TOKEN",
        Leaves::Named,
    ),
    row(
        Send::IssuedInTheFuture,
        Code::Unauthenticated,
        "BAD_TOKEN",
        Leaves::Named,
    ),
    row(
        Send::TokenBoundToAnotherCertificate,
        Code::Unauthenticated,
        "TOKEN_CERTIFICATE_MISMATCH",
        Leaves::Named,
    ),
    row(
        Send::TokenOfUnitAWithCertificateOfUnitB,
        Code::PermissionDenied,
        "UNIT_MISMATCH",
        Leaves::Named,
    ),
    row(
        Send::UnapprovedUnit,
        Code::PermissionDenied,
        "UNIT_NOT_APPROVED",
        Leaves::Named,
    ),
    row(
        Send::ProcedureNotGrantedToTheUnit,
        Code::PermissionDenied,
        "PROCEDURE_NOT_ALLOWED",
        Leaves::Named,
    ),
    row(
        Send::WrongRole,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
        Leaves::Named,
    ),
    row(
        Send::FieldOutsideTheProcedure,
        Code::PermissionDenied,
        "FIELD_NOT_ALLOWED",
        Leaves::Named,
    ),
    row(
        Send::HouseholdWithoutHouseholdAccess,
        Code::PermissionDenied,
        "HOUSEHOLD_NOT_ALLOWED",
        Leaves::Named,
    ),
    row(
        Send::BulkFromAUnitWithoutBulk,
        Code::PermissionDenied,
        "BULK_NOT_ALLOWED",
        Leaves::Named,
    ),
    row(
        Send::EightyThousandFields,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        Leaves::Named,
    ),
    row(
        Send::TheSameClaimTwice,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        Leaves::Named,
    ),
    row(
        Send::MalformedId,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        Leaves::Named,
    ),
    row(
        Send::BirthYearInTheFuture,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        Leaves::Named,
    ),
    row(
        Send::NoDossier,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        Leaves::Named,
    ),
    row(
        Send::UnknownProcedure,
        Code::InvalidArgument,
        "UNKNOWN_PROCEDURE",
        Leaves::Named,
    ),
    row(
        Send::OversizeMessage,
        Code::ResourceExhausted,
        "MESSAGE_TOO_LARGE",
        Leaves::Unread,
    ),
    row(
        Send::UnknownPath,
        Code::Unimplemented,
        "TRANSPORT",
        Leaves::Unread,
    ),
    row(
        Send::AuditorOfAnotherProvince,
        Code::PermissionDenied,
        "AUDIT_SCOPE",
        Leaves::Review,
    ),
    row(
        Send::NonAuditorReadingTheTrail,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
        Leaves::Review,
    ),
    row(
        Send::PastTheOfficersBurst,
        Code::ResourceExhausted,
        "RATE_LIMITED",
        Leaves::Named,
    ),
    row(
        Send::GuessingABirthDate,
        Code::ResourceExhausted,
        "RATE_LIMITED",
        Leaves::Named,
    ),
];

const ADULT: &str = "042188999005";

fn request_id(i: usize) -> String {
    format!("matrix-{i}")
}

fn lookup_as(i: usize, procedure: &str, id: &str) -> pb::LookupCitizenRequest {
    let mut r = lookup(procedure, id);
    r.context.as_mut().unwrap().request_id = request_id(i);
    r
}

/// Sends one row's attack; the status it got.
async fn send(env: &TestEnv, i: usize, what: Send) -> tonic::Status {
    let h42 = env.unit_cert("ha-tinh").cert;
    let good = || {
        TokenSpec::new("CB.H42.0001", "000.00.00.H42", &["receiver"])
            .bound_to_file(&h42)
            .unwrap()
    };
    let sign =
        |spec: &TokenSpec| lienthong_devtool::tokens::mint(&env.pki.issuer.key, spec).unwrap();
    let other_key = || {
        let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        EncodingKey::from_ed_pem(k.serialize_pem().as_bytes()).unwrap()
    };
    let mut h42_client = env.client_for_unit("ha-tinh").await;
    let as_h42 = |token: String, req: pb::LookupCitizenRequest| {
        let mut c = h42_client.clone();
        async move { c.lookup_citizen(authed(&token, req)).await.unwrap_err() }
    };
    let req = |procedure: &str| lookup_as(i, procedure, ADULT);
    match what {
        Send::NoCertificate => {
            let mut c =
                pb::citizen_gateway_client::CitizenGatewayClient::new(env.channel(None).await);
            c.lookup_citizen(authed(&sign(&good()), req("1.004222")))
                .await
                .unwrap_err()
        }
        Send::UnknownUnitCertificate => {
            let mut c = pb::citizen_gateway_client::CitizenGatewayClient::new(
                env.channel(Some(&env.pki.dev_client)).await,
            );
            c.lookup_citizen(authed(&sign(&good()), req("1.004222")))
                .await
                .unwrap_err()
        }
        Send::ForeignCaCertificate => {
            let foreign = DevCa::create(&env.dir.path().join("foreign"), "Foreign CA").unwrap();
            let cert = foreign
                .unit_client("h42", "000.00.00.H42", "Impostor", Validity::Days(1))
                .unwrap();
            match lienthong_devtool::client::mtls_channel(
                &format!("https://{}", env.addr),
                &env.pki.ca,
                Some(&cert),
            )
            .await
            {
                Err(e) => tonic::Status::unavailable(e.to_string()),
                Ok(ch) => pb::citizen_gateway_client::CitizenGatewayClient::new(ch)
                    .lookup_citizen(authed(&sign(&good()), req("1.004222")))
                    .await
                    .unwrap_err(),
            }
        }
        Send::NoToken => h42_client
            .lookup_citizen(tonic::Request::new(req("1.004222")))
            .await
            .unwrap_err(),
        Send::AlgNone => {
            let real = sign(&good());
            let claims = real.split('.').nth(1).unwrap().to_owned();
            as_h42(
                format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}."),
                req("1.004222"),
            )
            .await
        }
        Send::HmacWithThePublicKey => {
            let public = std::fs::read(&env.pki.issuer.public_key).unwrap();
            let t = mint_with(
                &EncodingKey::from_secret(&public),
                Algorithm::HS256,
                &good(),
            )
            .unwrap();
            as_h42(t, req("1.004222")).await
        }
        Send::ForeignSigningKey => {
            as_h42(
                mint_with(&other_key(), Algorithm::EdDSA, &good()).unwrap(),
                req("1.004222"),
            )
            .await
        }
        Send::ExpiredToken => {
            let spec = TokenSpec {
                not_before_offset: -7200,
                ttl: Duration::from_secs(600),
                ..good()
            };
            as_h42(sign(&spec), req("1.004222")).await
        }
        Send::TenYearToken => {
            let spec = TokenSpec {
                ttl: Duration::from_secs(10 * 365 * 86_400),
                ..good()
            };
            as_h42(sign(&spec), req("1.004222")).await
        }
        Send::IssuedInTheFuture => {
            let spec = TokenSpec {
                issued_at_offset: 3600,
                ..good()
            };
            as_h42(sign(&spec), req("1.004222")).await
        }
        Send::TokenBoundToAnotherCertificate => {
            let spec = good()
                .bound_to_file(&env.unit_cert("thanh-hoa").cert)
                .unwrap();
            as_h42(sign(&spec), req("1.004222")).await
        }
        Send::TokenOfUnitAWithCertificateOfUnitB => {
            let spec = TokenSpec::new("CB.H56.0001", "000.00.00.H56", &["receiver"])
                .bound_to_file(&h42)
                .unwrap();
            as_h42(sign(&spec), req("1.004222")).await
        }
        Send::UnapprovedUnit => {
            let mut s = env.officer("CB.P01.0001").await;
            s.client
                .lookup_citizen(authed(&s.token, req("1.004222")))
                .await
                .unwrap_err()
        }
        Send::ProcedureNotGrantedToTheUnit => {
            let mut s = env.officer("CB.XTS.0001").await;
            s.client
                .lookup_citizen(authed(&s.token, req("2.000488")))
                .await
                .unwrap_err()
        }
        Send::WrongRole => as_h42(sign(&good()), req("2.000488")).await,
        Send::FieldOutsideTheProcedure => {
            let mut r = req("1.000656");
            r.fields = vec!["phone".into()];
            as_h42(sign(&good()), r).await
        }
        Send::HouseholdWithoutHouseholdAccess => h42_client
            .get_household(authed(
                &sign(&good()),
                pb::GetHouseholdRequest {
                    context: req("1.000894").context,
                    personal_id: ADULT.into(),
                },
            ))
            .await
            .unwrap_err(),
        Send::BulkFromAUnitWithoutBulk => {
            let s = env.officer("CB.XTS.0001").await;
            let item = pb::VerifyBatchRequest {
                old_id_number: String::new(),
                context: req("1.004227").context,
                item_id: "1".into(),
                personal_id: ADULT.into(),
                claims: vec![pb::Claim {
                    field: "gender".into(),
                    value: "Nữ".into(),
                }],
            };
            let mut c = s.client.clone();
            match c
                .verify_batch(authed(&s.token, tokio_stream::iter(vec![item])))
                .await
            {
                Err(e) => e,
                Ok(r) => r.into_inner().message().await.unwrap_err(),
            }
        }
        Send::EightyThousandFields => {
            let mut r = req("1.004222");
            r.fields = vec!["x".into(); 80_000];
            as_h42(sign(&good()), r).await
        }
        Send::TheSameClaimTwice => {
            let mut v = verify(
                "1.004222",
                ADULT,
                &[("date_of_birth", "1988"), ("date_of_birth", "1989")],
            );
            v.context = req("1.004222").context;
            h42_client
                .verify_citizen(authed(&sign(&good()), v))
                .await
                .unwrap_err()
        }
        Send::MalformedId => as_h42(sign(&good()), lookup_as(i, "1.004222", "04218899900A")).await,
        Send::BirthYearInTheFuture => {
            as_h42(sign(&good()), lookup_as(i, "1.004222", "042299999005")).await
        }
        Send::NoDossier => {
            let mut r = req("1.004222");
            r.context.as_mut().unwrap().dossier_id.clear();
            as_h42(sign(&good()), r).await
        }
        Send::UnknownProcedure => as_h42(sign(&good()), req("9.999999")).await,
        Send::OversizeMessage => {
            let mut r = req("1.004222");
            r.context.as_mut().unwrap().dossier_id = "D".repeat(300 * 1024);
            as_h42(sign(&good()), r).await
        }
        Send::UnknownPath => {
            let mut grpc =
                tonic::client::Grpc::new(env.channel(Some(&env.unit_cert("ha-tinh"))).await);
            grpc.ready().await.unwrap();
            grpc.unary::<_, pb::LookupCitizenResponse, _>(
                authed(&sign(&good()), req("1.004222")),
                http::uri::PathAndQuery::from_static(
                    "/lienthong.gateway.v1.CitizenGateway/DumpEveryone",
                ),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap_err()
        }
        Send::AuditorOfAnotherProvince | Send::NonAuditorReadingTheTrail => {
            let officer = if matches!(what, Send::AuditorOfAnotherProvince) {
                "CB.H42.KT01"
            } else {
                "CB.H42.0001"
            };
            let mut c = audit::audit_service_client::AuditServiceClient::new(
                env.channel(Some(&env.unit_cert("ha-tinh"))).await,
            );
            let q = audit::QueryRequest {
                unit_code: "000.00.00.H56".into(),
                ..Default::default()
            };
            c.query(authed(&env.token(officer), q)).await.unwrap_err()
        }
        Send::PastTheOfficersBurst => {
            // The commune counter's officer may make 5 calls in a burst (on the fake clock).
            let mut s = env.officer("CB.XTS.0001").await;
            loop {
                if let Err(e) = s
                    .client
                    .lookup_citizen(authed(&s.token, req("1.004227")))
                    .await
                {
                    break e;
                }
            }
        }
        Send::GuessingABirthDate => {
            env.clock.advance(Duration::from_secs(60));
            let token = sign(&good());
            let mut n = 0;
            loop {
                n += 1;
                let mut v = verify(
                    "1.004222",
                    ADULT,
                    &[("date_of_birth", &format!("{n:02}/03/1988"))],
                );
                v.context = req("1.004222").context;
                if let Err(e) = h42_client.verify_citizen(authed(&token, v)).await {
                    assert_eq!(n, 6, "the sixth guess of the day is refused");
                    break e;
                }
            }
        }
    }
}

fn check_record(i: usize, r: &Row, rs: &[Record]) {
    let name = format!("{:?}", r.send);
    let by_reason = |rec: &&Record| rec.entry.outcome_reason == r.reason;
    match r.leaves {
        Leaves::Named => {
            let rec = rs
                .iter()
                .filter(by_reason)
                .find(|rec| rec.entry.request_id == request_id(i))
                .unwrap_or_else(|| panic!("{name}: no record with its request id"));
            assert_eq!(rec.entry.outcome_code, r.code as i32, "{name}");
            assert!(
                !rec.entry.dossier_id.is_empty() || r.send as u8 == Send::NoDossier as u8,
                "{name}: no dossier"
            );
            if !matches!(r.send, Send::MalformedId | Send::BirthYearInTheFuture) {
                assert_eq!(
                    rec.entry.citizen_masked_id, "042•••••••005",
                    "{name}: no citizen"
                );
            }
            assert!(
                rec.entry
                    .fields_disclosed
                    .iter()
                    .all(|f| !f.contains(":MATCH")),
                "{name}"
            );
        }
        Leaves::AtTheDoor => {
            let rec = rs
                .iter()
                .find(by_reason)
                .unwrap_or_else(|| panic!("{name}: no record"));
            assert!(
                rec.entry.officer_code.is_empty() && rec.entry.request_id.is_empty(),
                "{name}"
            );
            assert!(rec.entry.peer_address.starts_with("127.0.0.1"), "{name}");
        }
        Leaves::Unread => {
            let rec = rs
                .iter()
                .find(by_reason)
                .unwrap_or_else(|| panic!("{name}: no record"));
            assert_eq!(rec.entry.officer_code, "CB.H42.0001", "{name}");
            if matches!(r.send, Send::UnknownPath) {
                assert_eq!(rec.entry.method, "(unknown path)");
            }
        }
        Leaves::Review => {
            assert!(
                rs.iter()
                    .filter(by_reason)
                    .any(|rec| rec.entry.method.ends_with("AuditService/Query")),
                "{name}: no record"
            );
        }
        Leaves::Handshake => {
            let rec = rs
                .iter()
                .find(by_reason)
                .unwrap_or_else(|| panic!("{name}: no record"));
            assert_eq!(rec.entry.method, "(TLS handshake)", "{name}");
            assert_eq!(
                rec.entry.outcome_code,
                Code::Unauthenticated as i32,
                "{name}"
            );
            assert!(rec.entry.peer_address.starts_with("127.0.0.1:"), "{name}");
        }
    }
}

#[tokio::test]
async fn the_attack_matrix() {
    let mut env = spawn_env().await;
    for (i, r) in MATRIX.iter().enumerate() {
        let status = send(&env, i, r.send).await;
        let name = format!("{:?}", r.send);
        if r.leaves == Leaves::Handshake {
            // No gRPC exchange happened: the handshake itself failed.
            assert!(
                matches!(status.code(), Code::Unavailable | Code::Unknown),
                "{name}: {status:?}"
            );
            continue;
        }
        assert_eq!(status.code(), r.code, "{name}: {status:?}");
        assert_refused(&status, r.code, r.reason);
        assert!(
            !format!("{status:?}").contains(ADULT),
            "{name}: a full personal ID in the refusal"
        );
    }
    env.shutdown().await;
    let rs = records(&env);
    for (i, r) in MATRIX.iter().enumerate() {
        check_record(i, r, &rs);
    }
    assert!(
        !rs.iter().any(|r| format!("{:?}", r.entry).contains(ADULT)),
        "a full personal ID in the trail"
    );
}
