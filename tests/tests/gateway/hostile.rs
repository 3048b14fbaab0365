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

#[tokio::test]
async fn a_call_that_ends_early_still_leaves_its_record() {
    let mut env = spawn_env().await;
    let slow = persona("chaos-slow");
    let mut s = env.officer("CB.H42.0001").await;
    for _ in 0..3 {
        let mut req = authed(&s.token, lookup("1.004222", slow));
        req.set_timeout(std::time::Duration::from_millis(500));
        let e = s.client.lookup_citizen(req).await.unwrap_err();
        assert!(
            matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{e:?}"
        );
    }
    env.shutdown().await;
    // The gateway's own timer for the caller's deadline usually ends the call first
    // (CLIENT_DEADLINE); on a loaded machine the caller's reset of the stream can come first
    // (CLIENT_CANCELLED). Either way, one record per call.
    let ended: Vec<_> = records(&env)
        .into_iter()
        .filter(|r| {
            ["CLIENT_DEADLINE", "CLIENT_CANCELLED"].contains(&r.entry.outcome_reason.as_str())
        })
        .collect();
    assert_eq!(ended.len(), 3, "one record per call the client gave up on");
    for r in &ended {
        let code = if r.entry.outcome_reason == "CLIENT_DEADLINE" {
            Code::DeadlineExceeded
        } else {
            Code::Cancelled
        };
        assert_eq!(r.entry.outcome_code, code as i32);
        assert_eq!(r.entry.officer_code, "CB.H42.0001");
        assert!(
            !r.entry.citizen_pseudonym.is_empty(),
            "the citizen is named"
        );
        assert!(r.entry.fields_disclosed.is_empty(), "nothing was sent");
    }
    assert_trail_verifies(&env);
}

#[tokio::test]
async fn a_call_the_caller_abandons_still_leaves_its_record() {
    let mut env = spawn_env().await;
    let s = env.officer("CB.H42.0001").await;
    let mut client = s.client.clone();
    let token = s.token.clone();
    // The caller goes away (the stream is reset) while the database is still answering.
    let call = tokio::spawn(async move {
        client
            .lookup_citizen(authed(&token, lookup("1.004222", persona("chaos-slow"))))
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    call.abort();
    let _ = call.await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    env.shutdown().await;
    let gone: Vec<_> = records(&env)
        .into_iter()
        .filter(|r| r.entry.outcome_reason == "CLIENT_CANCELLED")
        .collect();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].entry.outcome_code, Code::Cancelled as i32);
    assert!(!gone[0].entry.citizen_pseudonym.is_empty());
}

#[tokio::test]
async fn calls_cut_by_the_shutdown_are_recorded() {
    let mut env = spawn_env_with(&[("SHUTDOWN_GRACE_MS", "200")]).await;
    let mut s = env.officer("CB.H42.0001").await;
    let call = tokio::spawn(async move {
        s.lookup("1.004222", persona("chaos-slow"))
            .await
            .map(|_| ())
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    env.shutdown().await;
    let cut: Vec<_> = records(&env)
        .into_iter()
        .filter(|r| r.entry.outcome_reason == "SHUTTING_DOWN")
        .collect();
    assert_eq!(
        cut.len(),
        1,
        "the call in flight at the end of the grace period"
    );
    assert!(!cut[0].entry.citizen_pseudonym.is_empty());
    // Whatever the caller got, it was no citizen data.
    assert!(call.await.unwrap().is_err());
    assert_trail_verifies(&env);
}

#[tokio::test]
async fn a_flood_without_a_certificate_leaves_a_bounded_trail_that_still_counts_it() {
    let mut env = spawn_env().await;
    let token = env.token("CB.H42.0001");
    let mut anonymous =
        pb::citizen_gateway_client::CitizenGatewayClient::new(env.channel(None).await);
    let mut limited = 0;
    let calls = 200;
    for i in 0..calls {
        let mut req = lookup("1.004222", persona("complete-adult"));
        // A path-sized request id: never written verbatim.
        req.context.as_mut().unwrap().request_id = format!("{i}-{}", "z".repeat(5_000));
        let e = anonymous
            .lookup_citizen(authed(&token, req))
            .await
            .unwrap_err();
        match e.code() {
            Code::Unauthenticated => assert_refused(&e, e.code(), "NO_CLIENT_CERTIFICATE"),
            Code::ResourceExhausted => {
                assert_refused(&e, e.code(), "RATE_LIMITED");
                limited += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        limited > 100,
        "the peer limit (5/s, burst 20) refused {limited}"
    );
    env.shutdown().await;
    let rs = records(&env);
    let door: Vec<_> = rs
        .iter()
        .filter(|r| r.entry.officer_code.is_empty())
        .collect();
    assert!(door.len() <= 12, "{} records", door.len());
    let counted: u64 = door
        .iter()
        .map(|r| {
            if r.entry.method == "(door summary)" {
                r.entry
                    .outcome_message
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            } else {
                1
            }
        })
        .sum();
    assert_eq!(
        counted, calls,
        "every call is in the trail, one by one or counted"
    );
    let size = std::fs::metadata(env.trail()).unwrap().len();
    assert!(size < 16 * 1024, "trail of {size} bytes");
    assert_trail_verifies(&env);
}

#[tokio::test]
async fn an_oversize_request_is_resource_exhausted_and_recorded() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let mut req = lookup("1.004222", persona("complete-adult"));
    req.context.as_mut().unwrap().dossier_id = "D".repeat(300 * 1024);
    let e = s
        .client
        .lookup_citizen(authed(&s.token, req))
        .await
        .unwrap_err();
    assert_refused(&e, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");
    let quota = e.get_error_details().quota_failure().unwrap().clone();
    assert_eq!(quota.violations[0].subject, "max_message_bytes");
    assert!(e.metadata().get("x-audit-sequence").is_some(), "recorded");
}

#[tokio::test]
async fn an_unknown_path_is_recorded_without_its_name() {
    let mut env = spawn_env().await;
    let token = env.token("CB.H42.0001");
    let mut grpc = tonic::client::Grpc::new(env.channel(Some(&env.unit_cert("ha-tinh"))).await);
    grpc.ready().await.unwrap();
    let path = format!("/lienthong.gateway.v1.CitizenGateway/{}", "X".repeat(4_000));
    let e = grpc
        .unary::<_, pb::ListProceduresResponse, _>(
            authed(&token, pb::ListProceduresRequest::default()),
            http::uri::PathAndQuery::try_from(path).unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    env.shutdown().await;
    let rs = records(&env);
    let last = rs.last().unwrap();
    assert_eq!(last.entry.method, "(unknown path)");
    assert!(!rs.iter().any(|r| r.entry.method.contains("XXXX")));
}

async fn claim(
    s: &mut Session,
    personal_id: &str,
    value: String,
) -> Result<pb::VerifyCitizenResponse, tonic::Status> {
    s.verify("1.004222", personal_id, &[("date_of_birth", &value)])
        .await
}

/// What a verification reply shows of one claim, everything a caller can see.
fn seen(r: &pb::VerifyCitizenResponse) -> String {
    format!("{:?} {:?}", r.result, r.fields)
}

#[tokio::test]
async fn verification_cannot_be_used_to_read_a_birth_date() {
    use lienthong_domain::PartialDate;
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let records = mock_csdl::personas::batch().citizens;
    let mut attacked = 0;
    for p in mock_csdl::personas::PERSONAS {
        if p.key.starts_with("chaos-") {
            continue;
        }
        let record = records
            .iter()
            .find(|r| r.personal_id.as_str() == p.personal_id)
            .unwrap();
        let PartialDate::Full(..) = record.date_of_birth else {
            continue;
        };
        let (y, m, _) = record.date_of_birth.to_parts();
        // The officer's rate is not what this test is about.
        env.clock.advance(std::time::Duration::from_secs(10));
        // Year, then month: the right answer and a wrong one look the same.
        let right = claim(&mut s, p.personal_id, format!("{y}")).await.unwrap();
        let wrong = claim(&mut s, p.personal_id, format!("{}", y + 1))
            .await
            .unwrap();
        assert_eq!(seen(&right), seen(&wrong), "{}: the year leaks", p.key);
        let right = claim(&mut s, p.personal_id, format!("{m:02}/{y}"))
            .await
            .unwrap();
        let wrong = claim(&mut s, p.personal_id, format!("{:02}/{y}", m % 12 + 1))
            .await
            .unwrap();
        assert_eq!(seen(&right), seen(&wrong), "{}: the month leaks", p.key);
        // One guess at the full date is left; then the budget is spent for the day.
        claim(&mut s, p.personal_id, format!("15/{m:02}/{y}"))
            .await
            .unwrap();
        let refused = claim(&mut s, p.personal_id, format!("16/{m:02}/{y}"))
            .await
            .unwrap_err();
        assert_refused(&refused, Code::ResourceExhausted, "RATE_LIMITED");
        let quota = refused.get_error_details().quota_failure().unwrap().clone();
        assert!(
            quota.violations[0]
                .subject
                .starts_with("verification:CB.H42.0001:")
                && quota.violations[0].subject.ends_with(":date_of_birth"),
            "{quota:?}"
        );
        assert!(!format!("{refused:?}").contains(p.personal_id));
        attacked += 1;
    }
    assert!(attacked >= 10, "{attacked} personas");
}

#[tokio::test]
async fn batch_items_are_charged_like_single_calls() {
    let env = spawn_env().await;
    let token = env.token("CB.H42.0001");
    let mut client = env.client_for_unit("ha-tinh").await;
    let targets: Vec<&str> = mock_csdl::personas::PERSONAS
        .iter()
        .filter(|p| !p.key.starts_with("chaos-"))
        .map(|p| p.personal_id)
        .take(8)
        .collect();
    // Six claims on one citizen's name, then one each on the others: 13 items.
    let mut items: Vec<pb::VerifyBatchRequest> = Vec::new();
    for (i, id) in std::iter::repeat_n(targets[0], 6)
        .chain(targets[1..].iter().copied())
        .enumerate()
    {
        items.push(pb::VerifyBatchRequest {
            old_id_number: String::new(),
            context: if i == 0 { ctx("1.004222") } else { None },
            item_id: format!("item-{i}"),
            personal_id: id.to_owned(),
            claims: vec![pb::Claim {
                field: "full_name".into(),
                value: "Nguyễn Văn An".into(),
            }],
        });
    }
    // And enough further items to pass the officer's burst (30 a fake-clock second).
    for i in 0..30 {
        items.push(pb::VerifyBatchRequest {
            old_id_number: String::new(),
            context: None,
            item_id: format!("more-{i}"),
            personal_id: targets[1 + i % 7].to_owned(),
            claims: vec![pb::Claim {
                field: "gender".into(),
                value: "Nam".into(),
            }],
        });
    }
    let n = items.len();
    let mut replies = client
        .verify_batch(authed(&token, tokio_stream::iter(items)))
        .await
        .unwrap()
        .into_inner();
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut answered = 0;
    while let Some(r) = replies.message().await.unwrap() {
        answered += 1;
        if let Some(pb::verify_batch_response::Outcome::Error(e)) = r.outcome {
            errors.push((r.item_id, e.message));
        }
    }
    assert_eq!(answered, n);
    // The sixth claim on the first citizen's name is over the verification budget.
    assert!(
        errors
            .iter()
            .any(|(id, m)| id == "item-5" && m.contains("verification")),
        "{errors:?}"
    );
    assert!(
        !errors
            .iter()
            .any(|(id, _)| id.as_str() < "item-5" && id.starts_with("item-"))
    );
    // The officer's burst (30: the call itself took one, each item one, also the item the
    // budget refused) ends the rest.
    let officer_limited = errors.iter().filter(|(_, m)| m.contains("officer")).count();
    assert_eq!(officer_limited, n - 29, "{errors:?}");
}

#[tokio::test]
async fn the_record_of_a_refused_attempt_names_what_it_was_for() {
    use lienthong_devtool::tokens::TokenSpec;
    let mut env = spawn_env().await;
    let adult = persona("complete-adult");
    let mut receiver = env.officer("CB.H42.0001").await;
    let mut commune = env.officer("CB.XTS.0001").await;
    let mut pending = env.officer("CB.P01.0001").await;
    let mut auditor = env.officer("CB.H42.KT01").await;
    let wrong_unit = env.token_with("CB.H42.0001", |t| TokenSpec {
        unit: "000.00.00.H56".into(),
        ..t
    });
    let attempts: Vec<(&str, &mut Session, Option<String>, &str)> = vec![
        ("UNIT_NOT_APPROVED", &mut pending, None, "1.004222"),
        ("PROCEDURE_NOT_ALLOWED", &mut commune, None, "2.000488"),
        ("ROLE_NOT_ALLOWED", &mut auditor, None, "1.004222"),
        ("UNIT_MISMATCH", &mut receiver, Some(wrong_unit), "1.004222"),
    ];
    for (reason, s, token, procedure) in attempts {
        let token = token.unwrap_or_else(|| s.token.clone());
        let e = s
            .client
            .lookup_citizen(authed(&token, lookup(procedure, adult)))
            .await
            .unwrap_err();
        assert_refused(&e, e.code(), reason);
    }
    // Past the officer's burst (30 on the fake clock).
    let mut limited = false;
    for _ in 0..40 {
        if let Err(e) = receiver.lookup("1.004222", adult).await {
            assert_refused(&e, Code::ResourceExhausted, "RATE_LIMITED");
            limited = true;
            break;
        }
    }
    assert!(limited);
    env.shutdown().await;
    let rs = records(&env);
    for reason in [
        "UNIT_NOT_APPROVED",
        "PROCEDURE_NOT_ALLOWED",
        "ROLE_NOT_ALLOWED",
        "UNIT_MISMATCH",
        "RATE_LIMITED",
    ] {
        let r = rs
            .iter()
            .find(|r| r.entry.outcome_reason == reason)
            .unwrap_or_else(|| panic!("no record of {reason}"));
        assert_eq!(r.entry.citizen_masked_id, "042•••••••005", "{reason}");
        assert!(!r.entry.citizen_pseudonym.is_empty(), "{reason}");
        assert_eq!(r.entry.dossier_id, "H42.01-251123-0001", "{reason}");
        assert!(!r.entry.procedure_code.is_empty(), "{reason}");
        assert!(r.entry.request_id.starts_with("req-"), "{reason}");
    }
}

#[tokio::test]
async fn the_population_databases_own_words_never_reach_the_caller_or_the_trail() {
    use lienthong_proto::csdl::v1 as csdl;
    let mut env = spawn_env().await;
    let mut admin = env.mock_admin().await;
    let injected = format!("EVIL <script> call 0900000000 {}", "!".repeat(10_000));
    for (key, code) in [("complete-adult", 14), ("no-phone", 13)] {
        admin
            .set_fault(csdl::SetFaultRequest {
                fault: Some(csdl::Fault {
                    scope: Some(csdl::FaultScope {
                        method: String::new(),
                        personal_id: persona(key).into(),
                    }),
                    effect: Some(csdl::fault::Effect::Error(csdl::ErrorFault {
                        rate: 1.0,
                        code,
                        message: injected.clone(),
                    })),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let mut s = env.officer("CB.H42.0001").await;
    for key in ["complete-adult", "no-phone"] {
        let e = s.lookup("1.004222", persona(key)).await.unwrap_err();
        assert_refused(&e, Code::Unavailable, "UPSTREAM_UNAVAILABLE");
        assert!(!format!("{e:?}").contains("EVIL"), "{e:?}");
    }
    env.shutdown().await;
    assert!(
        !records(&env)
            .iter()
            .any(|r| r.entry.outcome_message.contains("EVIL")),
        "upstream text in the trail"
    );
}

#[test]
fn development_keys_are_private_and_a_production_gateway_refuses_readable_ones() {
    use lienthong_devtool::env::{DevPki, ensure_gateway_config};
    use lienthong_gateway::Config;
    use lienthong_gateway::config::ENV_PREFIX;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (pki, _) = DevPki::ensure(dir.path()).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("pki")), 0o700);
    for key in [
        dir.path().join("pki/ca.key"),
        pki.issuer.key.clone(),
        pki.audit_signing.key.clone(),
        pki.audit_pseudonym.clone(),
        pki.gateway.key.clone(),
        pki.unit(lienthong_devtool::sample::unit("ha-tinh").unwrap())
            .key,
    ] {
        assert_eq!(mode(&key), 0o600, "{}", key.display());
    }
    let config = ensure_gateway_config(dir.path()).unwrap();
    std::fs::set_permissions(&pki.gateway.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let production = [(
        format!("{ENV_PREFIX}ENVIRONMENT"),
        "\"production\"".to_owned(),
    )];
    let e = Config::load(&config, production).unwrap_err().to_string();
    assert!(
        e.contains("tls.key") && e.contains("readable by others") && e.contains("chmod 600"),
        "{e}"
    );
    // The development environment warns and starts.
    assert!(Config::load(&config, []).is_ok());
    // An environment made before keys were private is tightened when it is opened again.
    DevPki::ensure(dir.path()).unwrap();
    assert_eq!(mode(&pki.gateway.key), 0o600);
}
