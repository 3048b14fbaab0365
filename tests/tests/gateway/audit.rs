//! The audit trail end to end: receipts on every reply, a record for every refusal, a reviewer
//! finding a citizen's accesses by personal ID, auditors only, exports that verify offline, and
//! no data when the trail cannot be written.

use crate::helpers::*;
use audit::audit_service_client::AuditServiceClient;
use lienthong_devtool::tokens::TokenSpec;
use lienthong_gateway::audit::frame::{FrameError, Item};
use lienthong_gateway::audit::verify::{Options, verify as verify_trail, verify_file};
use lienthong_gateway::audit_service::{checkpoint_from_pb, record_from_pb};
use lienthong_proto::audit::v1 as audit;
use lienthong_proto::gateway::v1 as pb;
use std::collections::BTreeSet;
use tonic::Code;
use tonic::transport::Channel;

fn public_key(env: &TestEnv) -> ed25519_dalek::VerifyingKey {
    let pem = std::fs::read_to_string(&env.pki.audit_signing.public_key).unwrap();
    lienthong_gateway::audit::verify::public_key_from_pem(&pem).unwrap()
}

async fn auditor(env: &TestEnv) -> (AuditServiceClient<Channel>, String) {
    let channel = env.channel(Some(&env.unit_cert("ha-tinh"))).await;
    (AuditServiceClient::new(channel), env.token("CB.H42.KT01"))
}

/// Every record about one citizen, found by their personal ID.
async fn accesses_of(
    client: &mut AuditServiceClient<Channel>,
    token: &str,
    personal_id: &str,
) -> Vec<audit::AuditRecord> {
    query(
        client,
        token,
        audit::QueryRequest {
            personal_id: personal_id.into(),
            ..Default::default()
        },
    )
    .await
}

async fn query(
    client: &mut AuditServiceClient<Channel>,
    token: &str,
    q: audit::QueryRequest,
) -> Vec<audit::AuditRecord> {
    let mut stream = client.query(authed(token, q)).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.message().await.unwrap() {
        out.push(r);
    }
    out
}

#[tokio::test]
async fn every_reply_carries_its_receipt() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let ok = s
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    let md = ok.metadata();
    assert_eq!(md.get("x-audit-chain").unwrap(), "gw-dev-1");
    let first = receipt_sequence(md);
    assert_eq!(md.get("x-audit-hash").unwrap().to_str().unwrap().len(), 64);
    let refused = s
        .lookup("2.000488", persona("complete-adult"))
        .await
        .unwrap_err();
    let seq = receipt_sequence(refused.metadata());
    assert_eq!(seq, first + 1);
}

#[tokio::test]
async fn refusals_of_every_kind_are_recorded_and_a_reviewer_finds_a_citizens_accesses() {
    // A national auditor (Hà Tĩnh's made national here): every unit's records, and those of
    // callers no unit was established for.
    let env = spawn_env_with(&[
        ("UPSTREAM__TIMEOUT_MS", "300"),
        ("UNITS__0__AUDIT_SCOPE", "[\"*\"]"),
    ])
    .await;
    let adult = persona("complete-adult");
    let mut h42 = env.officer("CB.H42.0001").await;
    // Served.
    h42.lookup("1.004222", adult).await.unwrap();
    // Refused in each step of the pipeline.
    let mut no_cert =
        pb::citizen_gateway_client::CitizenGatewayClient::new(env.channel(None).await);
    let _ = no_cert
        .lookup_citizen(authed(&h42.token, lookup("1.004222", adult)))
        .await
        .unwrap_err();
    let _ = h42
        .client
        .lookup_citizen(authed("junk", lookup("1.004222", adult)))
        .await
        .unwrap_err();
    let thanh_hoa_token = env.token_with("CB.H42.0001", |t| TokenSpec {
        unit: "000.00.00.H56".into(),
        ..t
    });
    let _ = h42
        .client
        .lookup_citizen(authed(&thanh_hoa_token, lookup("1.004222", adult)))
        .await
        .unwrap_err();
    let _ = h42.lookup("2.000488", adult).await.unwrap_err();
    let mut too_much = lookup("1.000656", adult);
    too_much.fields = vec!["phone".into()];
    let _ = h42
        .client
        .lookup_citizen(authed(&h42.token, too_much))
        .await
        .unwrap_err();
    let _ = h42
        .lookup("1.004222", persona("chaos-fail"))
        .await
        .unwrap_err();
    let mut no_dossier = lookup("1.004222", adult);
    no_dossier.context.as_mut().unwrap().dossier_id.clear();
    let _ = h42
        .client
        .lookup_citizen(authed(&h42.token, no_dossier))
        .await
        .unwrap_err();
    let mut pending = env.officer("CB.P01.0001").await;
    let _ = pending.lookup("1.004222", adult).await.unwrap_err();
    // Rate limited: the commune officer's burst is 5.
    let mut commune = env.officer("CB.XTS.0001").await;
    let mut limited = false;
    for _ in 0..7 {
        if let Err(s) = commune.lookup("1.004227", adult).await {
            limited |= s.code() == Code::ResourceExhausted;
        }
    }
    assert!(limited);

    let (mut client, token) = auditor(&env).await;
    let refused = query(
        &mut client,
        &token,
        audit::QueryRequest {
            outcome: audit::OutcomeFilter::Refused as i32,
            ..Default::default()
        },
    )
    .await;
    let reasons: BTreeSet<&str> = refused
        .iter()
        .map(|r| r.outcome.as_ref().unwrap().reason.as_str())
        .collect();
    for expected in [
        "NO_CLIENT_CERTIFICATE",
        "BAD_TOKEN",
        "UNIT_MISMATCH",
        "ROLE_NOT_ALLOWED",
        "FIELD_NOT_ALLOWED",
        "UPSTREAM_UNAVAILABLE",
        "INVALID_ARGUMENT",
        "UNIT_NOT_APPROVED",
        "RATE_LIMITED",
    ] {
        assert!(
            reasons.contains(expected),
            "no {expected} record in {reasons:?}"
        );
    }
    let no_dossier = refused
        .iter()
        .find(|r| r.outcome.as_ref().unwrap().reason == "INVALID_ARGUMENT")
        .unwrap();
    assert_eq!(no_dossier.dossier_id, "");
    assert_eq!(no_dossier.officer_code, "CB.H42.0001");

    // Who looked at this citizen, when and why: by personal ID (the server hashes it).
    let accesses = accesses_of(&mut client, &token, adult).await;
    assert!(accesses.len() >= 5, "{}", accesses.len());
    let served: Vec<_> = accesses
        .iter()
        .filter(|r| r.outcome.as_ref().unwrap().code == 0)
        .collect();
    assert_eq!(
        served.len(),
        1 + 5,
        "the lookup and the commune officer's five"
    );
    let first = served[0];
    assert_eq!(first.officer_code, "CB.H42.0001");
    assert_eq!(first.unit_code, "000.00.00.H42");
    assert_eq!(first.procedure_code, "1.004222");
    assert_eq!(first.dossier_id, "H42.01-251123-0001");
    assert_eq!(first.citizen_masked_id, "042•••••••005");
    assert_eq!(first.cert_fingerprint.len(), 64);
    assert!(first.fields_disclosed.contains(&"full_name".to_owned()));
    assert!(!first.peer_address.is_empty());
    for r in &accesses {
        assert!(
            !format!("{r:?}").contains(adult),
            "a full personal ID in the trail"
        );
    }

    // The reviewer's own query is on the trail too, with the citizen it was about.
    let own = query(
        &mut client,
        &token,
        audit::QueryRequest {
            officer_code: "CB.H42.KT01".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(own.iter().any(|r| r.method.ends_with("AuditService/Query")
        && r.citizen_pseudonym == first.citizen_pseudonym));

    // Verify, checkpoints, export, and the export checked offline with the public key.
    let v = client
        .verify(authed(&token, audit::VerifyRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");
    assert!(v.records_checked >= 15);
    let mut export = client
        .export(authed(&token, audit::ExportRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut items: Vec<Result<(u64, Item), FrameError>> = Vec::new();
    while let Some(chunk) = export.message().await.unwrap() {
        items.push(Ok((
            0,
            match chunk.item.unwrap() {
                audit::export_chunk::Item::Record(r) => Item::Record(record_from_pb(&r).unwrap()),
                audit::export_chunk::Item::Checkpoint(c) => {
                    Item::Checkpoint(checkpoint_from_pb(&c).unwrap())
                }
            },
        )));
    }
    // No checkpoint yet (1,000 records or 60 s): the export says so by ending without one.
    let opts = Options {
        keys: vec![public_key(&env)],
        from_genesis: true,
        to_sequence: None,
        anchor: None,
    };
    let report = verify_trail(items, &opts);
    assert!(report.ok(), "{report:?}");
}

#[tokio::test]
async fn only_auditors_read_the_trail() {
    let env = spawn_env().await;
    let channel = env.channel(Some(&env.unit_cert("ha-tinh"))).await;
    let mut client = AuditServiceClient::new(channel);
    let s = client
        .query(authed(
            &env.token("CB.H42.0002"),
            audit::QueryRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_refused(&s, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let s = client
        .query(tonic::Request::new(audit::QueryRequest::default()))
        .await
        .unwrap_err();
    assert_refused(&s, Code::Unauthenticated, "MISSING_TOKEN");
}

#[tokio::test]
async fn auditors_read_their_own_province_and_the_decision_is_recorded() {
    let env = spawn_env().await;
    let adult = persona("complete-adult");
    // Hà Tĩnh's officer and commune counter, Thanh Hóa's officer: one access each.
    for officer in ["CB.H42.0001", "CB.XTS.0001", "CB.H56.0001"] {
        let procedure = if officer == "CB.XTS.0001" {
            "1.004227"
        } else {
            "1.004222"
        };
        env.officer(officer)
            .await
            .lookup(procedure, adult)
            .await
            .unwrap();
    }
    let (mut client, token) = auditor(&env).await;
    // By personal ID: the province's accesses only (its own unit and its commune).
    let found = accesses_of(&mut client, &token, adult).await;
    let units: BTreeSet<&str> = found
        .iter()
        .filter(|r| r.method.ends_with("/LookupCitizen"))
        .map(|r| r.unit_code.as_str())
        .collect();
    assert_eq!(units, BTreeSet::from(["000.00.00.H42", "001.01.42.H42"]));
    // A record asked for by its sequence: one in scope comes back; Thanh Hóa's (the access
    // written after the two in scope) does not.
    let own_seq = found[0].sequence;
    let by_sequence = |seq| audit::QueryRequest {
        sequence: Some(seq),
        ..Default::default()
    };
    let one = query(&mut client, &token, by_sequence(own_seq)).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].hash, found[0].hash);
    let other_seq = found.iter().map(|r| r.sequence).max().unwrap() + 1;
    assert!(
        query(&mut client, &token, by_sequence(other_seq))
            .await
            .is_empty()
    );
    // Another province by name: refused, and so is an export (it carries every unit).
    let s = client
        .query(authed(
            &token,
            audit::QueryRequest {
                unit_code: "000.00.00.H56".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_refused(&s, Code::PermissionDenied, "AUDIT_SCOPE");
    let s = client
        .export(authed(&token, audit::ExportRequest::default()))
        .await
        .unwrap_err();
    assert_refused(&s, Code::PermissionDenied, "AUDIT_SCOPE");
    // Each decision is on the trail: the scope the query ran with, and the refusals.
    let own = query(
        &mut client,
        &token,
        audit::QueryRequest {
            officer_code: "CB.H42.KT01".into(),
            ..Default::default()
        },
    )
    .await;
    let first = own.iter().find(|r| r.method.ends_with("/Query")).unwrap();
    assert_eq!(
        first.fields_disclosed,
        ["audit_scope:000.00.00.H42", "audit_scope:001.01.42.H42"]
    );
    let scope_refusals = own
        .iter()
        .filter(|r| r.outcome.as_ref().unwrap().reason == "AUDIT_SCOPE")
        .count();
    assert_eq!(scope_refusals, 2);
}

#[tokio::test]
async fn the_trail_on_disk_verifies_with_the_public_key_after_shutdown() {
    let mut env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    for _ in 0..3 {
        let claims = [("full_name", "Nguyễn Văn Hà")];
        s.verify("1.004222", persona("similar-name"), &claims)
            .await
            .unwrap();
    }
    env.shutdown().await;
    let opts = Options {
        keys: vec![public_key(&env)],
        from_genesis: true,
        to_sequence: None,
        anchor: None,
    };
    let report = verify_file(&env.trail(), &opts).unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.records_checked, 3);
    assert_eq!(report.checkpoints_checked, 1, "the closing checkpoint");
    assert_eq!(report.uncovered, 0);
}

#[tokio::test]
async fn with_a_full_disk_nothing_is_served() {
    // The trail is /dev/full: every write fails with ENOSPC, as on a full disk.
    let env = spawn_env_prepared(&[("HEALTH_LISTEN", "\"127.0.0.1:0\"")], |dir| {
        let audit = dir.join("audit");
        std::fs::create_dir_all(&audit).unwrap();
        std::os::unix::fs::symlink("/dev/full", audit.join("gw-dev-1.trail")).unwrap();
    })
    .await;
    let mut s = env.officer("CB.H42.0001").await;
    for _ in 0..2 {
        let e = s
            .lookup("1.004222", persona("complete-adult"))
            .await
            .unwrap_err();
        assert_refused(&e, Code::Unavailable, "AUDIT_UNAVAILABLE");
        assert!(!e.message().contains("Trần"), "{}", e.message());
    }
    // Refusals too: nothing is answered without its record.
    let e = s
        .client
        .lookup_citizen(authed(
            "junk",
            lookup("1.004222", persona("complete-adult")),
        ))
        .await
        .unwrap_err();
    assert_refused(&e, Code::Unavailable, "AUDIT_UNAVAILABLE");
    // And health says so, for the load balancer: the service and the server as a whole.
    let mut health = tonic_health::pb::health_client::HealthClient::new(env.channel(None).await);
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    for service in ["lienthong.gateway.v1.CitizenGateway", ""] {
        let mut status = 0;
        for _ in 0..100 {
            status = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            if status == not_serving {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(status, not_serving, "health of {service:?}");
    }
    // The same on the plaintext health port that Kubernetes probes.
    let plain =
        tonic::transport::Endpoint::from_shared(format!("http://{}", env.health_addr.unwrap()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let status = tonic_health::pb::health_client::HealthClient::new(plain)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, not_serving, "plaintext health");
}

#[tokio::test]
async fn reading_the_other_parents_record_is_found_under_their_id() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    // The mother declares the birth; the form reads the father's own record.
    s.autofill("LT.KHAISINH", persona("household-spouse"))
        .await
        .unwrap();
    let (mut client, token) = auditor(&env).await;
    let father = accesses_of(&mut client, &token, persona("household-head")).await;
    assert_eq!(father.len(), 1, "{father:?}");
    let r = &father[0];
    assert!(r.method.ends_with("/AutofillForm"));
    assert!(r.request_id.ends_with("#father"), "{}", r.request_id);
    assert_eq!(r.citizen_masked_id, "042•••••••001");
    assert!(
        r.fields_disclosed.contains(&"father.ethnicity".to_owned()),
        "{:?}",
        r.fields_disclosed
    );
    assert!(r.fields_disclosed.iter().all(|f| f.starts_with("father.")));
}

/// A citizen's household, read by Hà Tĩnh's receiver for a residence procedure.
async fn household_of(env: &TestEnv, personal_id: &str) -> lienthong_proto::csdl::v1::Household {
    let mut s = env.officer("CB.H42.0001").await;
    s.client
        .get_household(authed(
            &s.token,
            pb::GetHouseholdRequest {
                context: ctx("1.004222"),
                personal_id: personal_id.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .household
        .unwrap()
}

#[tokio::test]
async fn every_household_member_returned_is_found_under_their_own_id() {
    let env = spawn_env().await;
    let household = household_of(&env, persona("household-head")).await;
    let others: Vec<&str> = household
        .members
        .iter()
        .map(|m| m.personal_id.as_str())
        .filter(|id| *id != persona("household-head"))
        .collect();
    assert!(others.len() >= 2, "{others:?}");
    let (mut client, token) = auditor(&env).await;
    for id in others {
        let found = accesses_of(&mut client, &token, id).await;
        let found: Vec<_> = found
            .iter()
            .filter(|r| r.method.ends_with("/GetHousehold"))
            .collect();
        assert_eq!(found.len(), 1, "{id}: {found:?}");
        let r = &found[0];
        assert!(r.method.ends_with("/GetHousehold"));
        assert!(r.request_id.contains("#member-"), "{}", r.request_id);
        assert_eq!(r.officer_code, "CB.H42.0001");
        assert!(
            r.fields_disclosed
                .contains(&"household.member.date_of_birth".to_owned())
        );
    }
}

#[tokio::test]
async fn a_query_of_every_replica_needs_a_central_store_that_answers() {
    // No store configured: refused as a precondition, and recorded.
    let env = spawn_env().await;
    let (mut client, token) = auditor(&env).await;
    let all = audit::QueryRequest {
        personal_id: persona("complete-adult").into(),
        all_replicas: true,
        ..Default::default()
    };
    let s = client.query(authed(&token, all.clone())).await.unwrap_err();
    assert_refused(&s, Code::FailedPrecondition, "CENTRAL_STORE_NOT_CONFIGURED");
    let own = query(
        &mut client,
        &token,
        audit::QueryRequest {
            officer_code: "CB.H42.KT01".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        own.iter()
            .any(|r| r.outcome.as_ref().unwrap().reason == "CENTRAL_STORE_NOT_CONFIGURED"),
        "{own:?}"
    );

    // A store that cannot be reached (nothing listens there): unavailable, within the pool's
    // few seconds, and the gateway serves on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let env = spawn_env_with(&[(
        "AUDIT__CENTRAL__URL",
        &format!("\"postgres://postgres@127.0.0.1:{port}/test\""),
    )])
    .await;
    let (mut client, token) = auditor(&env).await;
    let asked = std::time::Instant::now();
    let s = client.query(authed(&token, all)).await.unwrap_err();
    assert_refused(&s, Code::Unavailable, "CENTRAL_STORE_UNAVAILABLE");
    assert!(asked.elapsed() < std::time::Duration::from_secs(10));
    let mut officer = env.officer("CB.H42.0001").await;
    officer
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_search_is_read_in_pages_each_continuing_after_the_last() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    for _ in 0..7 {
        s.lookup("1.004222", persona("complete-adult"))
            .await
            .unwrap();
    }
    let (mut client, token) = auditor(&env).await;
    let filters = audit::QueryRequest {
        officer_code: "CB.H42.0001".into(),
        ..Default::default()
    };
    let whole = query(&mut client, &token, filters.clone()).await;
    assert_eq!(whole.len(), 7);
    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let page = query(
            &mut client,
            &token,
            audit::QueryRequest {
                limit: 3,
                page_after: after.clone(),
                ..filters.clone()
            },
        )
        .await;
        let Some(last) = page.last() else { break };
        after = last.page_cursor.clone();
        assert!(
            !after.is_empty(),
            "each record of a page carries its cursor"
        );
        let full = page.len() == 3;
        paged.extend(page.iter().map(|r| r.sequence));
        if !full {
            break;
        }
    }
    let whole: Vec<u64> = whole.iter().map(|r| r.sequence).collect();
    assert_eq!(
        paged, whole,
        "three pages: 3 + 3 + 1, nothing lost or repeated"
    );

    // A cursor that is not one is refused, saying what to give.
    let status = client
        .query(authed(
            &token,
            audit::QueryRequest {
                page_after: "page 2".into(),
                ..filters
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("page_after"),
        "{}",
        status.message()
    );
}

/// A citizen's token, as VNeID would vouch for them to Hà Tĩnh's portal.
fn citizen_token(env: &TestEnv, personal_id: &str) -> String {
    env.token_with("CB.H42.0001", |t| TokenSpec {
        officer: personal_id.into(),
        roles: vec!["citizen".into()],
        ..t
    })
}

async fn my_accesses(
    client: &mut AuditServiceClient<Channel>,
    token: &str,
) -> Result<Vec<audit::CitizenAccess>, tonic::Status> {
    let mut stream = client
        .list_my_accesses(authed(token, audit::ListMyAccessesRequest::default()))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(a) = stream.message().await? {
        out.push(a);
    }
    Ok(out)
}

#[tokio::test]
async fn a_citizen_sees_every_access_to_their_own_data_and_nothing_else() {
    let env = spawn_env().await;
    let (adult, spouse) = (persona("complete-adult"), persona("complete-adult-spouse"));
    // Hà Tĩnh and Thanh Hóa look up the adult; Hà Tĩnh looks up her husband; a refused lookup.
    env.officer("CB.H42.0001")
        .await
        .lookup("1.004222", adult)
        .await
        .unwrap();
    env.officer("CB.H56.0001")
        .await
        .lookup("1.004222", adult)
        .await
        .unwrap();
    env.officer("CB.H42.0001")
        .await
        .lookup("1.004222", spouse)
        .await
        .unwrap();
    let refused = env
        .officer("CB.P01.0001")
        .await
        .lookup("1.004222", adult)
        .await
        .unwrap_err();
    let reason = tonic_types::StatusExt::get_error_details(&refused)
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap();

    let mut client = AuditServiceClient::new(env.channel(Some(&env.unit_cert("ha-tinh"))).await);
    let mine = my_accesses(&mut client, &citizen_token(&env, adult))
        .await
        .unwrap();
    let seen: Vec<(&str, &str, bool)> = mine
        .iter()
        .map(|a| (a.unit_code.as_str(), a.officer_code.as_str(), a.served))
        .collect();
    assert_eq!(
        seen,
        [
            ("000.00.00.H42", "CB.H42.0001", true),
            ("000.00.00.H56", "CB.H56.0001", true),
            ("000.00.00.P01", "CB.P01.0001", false),
        ],
        "every unit's accesses to her, none to her husband"
    );
    assert_eq!(mine[0].operation, "LookupCitizen");
    assert!(mine[0].fields_disclosed.contains(&"full_name".to_owned()));
    assert!(!mine[0].procedure_name.is_empty());
    assert_eq!(mine[2].refusal_reason, reason);
    assert!(mine[2].fields_disclosed.is_empty());
    // Asking again: her own reads are not listed as accesses.
    let again = my_accesses(&mut client, &citizen_token(&env, adult))
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    // Her husband sees his own, one access.
    let his = my_accesses(&mut client, &citizen_token(&env, spouse))
        .await
        .unwrap();
    assert_eq!(his.len(), 1);
    assert_eq!(his[0].sequence, 2);
    // A household read: each member other than the one asked about sees it as an access to
    // their own number, name and birth date.
    let household = household_of(&env, persona("household-head")).await;
    let member = household
        .members
        .iter()
        .find(|m| m.personal_id != persona("household-head"))
        .unwrap();
    let theirs = my_accesses(&mut client, &citizen_token(&env, &member.personal_id))
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0].operation, "GetHousehold");
    assert!(
        theirs[0]
            .fields_disclosed
            .iter()
            .all(|f| f.starts_with("household.member.")),
        "{:?}",
        theirs[0].fields_disclosed
    );

    // Officers and auditors have no history of their own to read here.
    for officer in ["CB.H42.0001", "CB.H42.KT01"] {
        let s = my_accesses(&mut client, &env.token(officer))
            .await
            .unwrap_err();
        assert_refused(&s, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    }
    // A citizen token reads nothing else: not the trail, not anyone's record.
    let s = client
        .query(authed(
            &citizen_token(&env, adult),
            audit::QueryRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_refused(&s, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let mut as_portal = Session {
        client: env.client_for_unit("ha-tinh").await,
        token: citizen_token(&env, adult),
    };
    let s = as_portal.lookup("1.004222", adult).await.unwrap_err();
    assert_refused(&s, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    // A citizen token is the citizen role alone, with a personal ID; the citizens' code is
    // no officer's.
    let mixed = env.token_with("CB.H42.0001", |t| TokenSpec {
        officer: adult.into(),
        roles: vec!["citizen".into(), "auditor".into()],
        ..t
    });
    let not_an_id = env.token_with("CB.H42.0001", |t| TokenSpec {
        roles: vec!["citizen".into()],
        ..t
    });
    let reserved = env.token_with("CB.H42.0001", |t| TokenSpec {
        officer: "CONGDAN".into(),
        ..t
    });
    for token in [mixed, not_an_id, reserved] {
        let s = my_accesses(&mut client, &token).await.unwrap_err();
        assert_refused(&s, Code::Unauthenticated, "BAD_TOKEN");
    }
    // Each reading of her history is on the trail, with her as its subject.
    let (mut auditor, token) = auditor(&env).await;
    let reads = query(
        &mut auditor,
        &token,
        audit::QueryRequest {
            officer_code: "CONGDAN".into(),
            outcome: audit::OutcomeFilter::Served as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        reads.len(),
        4,
        "two by her, one by her husband, one by a household member"
    );
    assert!(reads[0].method.ends_with("/ListMyAccesses"));
    assert_eq!(reads[0].citizen_masked_id, "042•••••••005");
}
