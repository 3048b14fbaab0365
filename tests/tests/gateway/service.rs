//! The gateway as a service: health and reflection without credentials, the catalog as each
//! caller sees it, households, batches, and a failing population database.

use crate::helpers::*;
use lienthong_proto::gateway::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn health_and_reflection_need_no_credentials() {
    let env = spawn_env().await;
    let channel = env.channel(None).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let r = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "lienthong.gateway.v1.CitizenGateway".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Reflection, v1 and v1alpha: exactly what this port serves.
    let mut expected = vec![
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "lienthong.audit.v1.AuditService",
        "lienthong.gateway.v1.CitizenGateway",
    ];
    expected.sort();
    assert_eq!(
        lienthong_e2e::reflected_services(channel.clone(), false).await,
        expected
    );
    assert_eq!(
        lienthong_e2e::reflected_services(channel, true).await,
        expected
    );
}

#[tokio::test]
async fn each_caller_sees_the_procedures_it_may_use() {
    let env = spawn_env().await;
    let list = |s: &mut Session, include_unavailable: bool| {
        let mut client = s.client.clone();
        let token = s.token.clone();
        async move {
            client
                .list_procedures(authed(
                    &token,
                    pb::ListProceduresRequest {
                        include_unavailable,
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .procedures
        }
    };
    let mut commune = env.officer("CB.XTS.0001").await;
    let usable = list(&mut commune, false).await;
    assert_eq!(usable.len(), 10);
    assert!(usable.iter().all(|p| p.available));
    assert!(!usable.iter().any(|p| p.code == "2.000488"));
    let all = list(&mut commune, true).await;
    assert!(all.iter().any(|p| p.code == "2.000488" && !p.available));
    let bundle = all.iter().find(|p| p.code == "LT.KHAISINH").unwrap();
    assert_eq!(bundle.bundle, ["1.001193", "1.004222", "1.011456"]);

    let mut pending = env.officer("CB.P01.0001").await;
    assert!(list(&mut pending, false).await.is_empty());
}

#[tokio::test]
async fn households_for_residence_procedures() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let h = s
        .client
        .get_household(authed(
            &s.token,
            pb::GetHouseholdRequest {
                context: ctx("1.004227"),
                personal_id: persona("child-under-6").into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .household
        .unwrap();
    assert_eq!(h.head_personal_id, persona("household-head"));
    assert_eq!(h.members.len(), 4);
}

#[tokio::test]
async fn a_batch_answers_every_item_in_order_and_an_item_error_does_not_stop_it() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let items = [
        (persona("complete-adult"), "Trần Thị Minh Thư"),
        ("04218899900X", "x"),
        ("042188000000", "Không Có"),
        (persona("similar-name"), "Nguyễn Văn Hà"),
    ];
    let requests: Vec<pb::VerifyBatchRequest> = items
        .iter()
        .enumerate()
        .map(|(i, (id, name))| pb::VerifyBatchRequest {
            old_id_number: String::new(),
            context: if i == 0 { ctx("1.004227") } else { None },
            item_id: format!("row-{i}"),
            personal_id: (*id).into(),
            claims: vec![pb::Claim {
                field: "full_name".into(),
                value: (*name).into(),
            }],
        })
        .collect();
    let mut out = s
        .client
        .verify_batch(authed(&s.token, tokio_stream::iter(requests)))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(r) = out.message().await.unwrap() {
        got.push(r);
    }
    let ids: Vec<&str> = got.iter().map(|r| r.item_id.as_str()).collect();
    assert_eq!(ids, ["row-0", "row-1", "row-2", "row-3"]);
    use pb::verify_batch_response::Outcome;
    let summary: Vec<String> = got
        .iter()
        .map(|r| match r.outcome.as_ref().unwrap() {
            Outcome::Result(v) => format!("result {}", v.result),
            Outcome::Error(e) => format!("error {} {}", e.code, e.reason),
        })
        .collect();
    assert_eq!(
        summary,
        [
            format!("result {}", pb::OverallResult::Match as i32),
            format!("error {} MALFORMED_ITEM", Code::InvalidArgument as i32),
            format!("error {} CITIZEN_NOT_FOUND", Code::NotFound as i32),
            format!("result {}", pb::OverallResult::NeedsReview as i32),
        ]
    );
}

#[tokio::test]
async fn a_failing_database_is_unavailable_a_flaky_one_is_retried_a_hanging_one_times_out() {
    let env = spawn_env_with(&[("UPSTREAM__TIMEOUT_MS", "300")]).await;
    let s = env.officer("CB.H42.0001").await;
    let call = |key: &str| {
        let mut client = s.client.clone();
        let req = authed(&s.token, lookup("1.004222", persona(key)));
        async move { client.lookup_citizen(req).await }
    };
    let e = call("chaos-fail").await.unwrap_err();
    assert_refused(&e, Code::Unavailable, "UPSTREAM_UNAVAILABLE");
    // Every other call fails upstream; the one retry makes each lookup succeed.
    for _ in 0..3 {
        call("chaos-flaky").await.unwrap();
    }
    let e = call("chaos-timeout").await.unwrap_err();
    assert_refused(&e, Code::DeadlineExceeded, "UPSTREAM_TIMEOUT");
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_says_when_to_retry() {
    let env = spawn_env_with(&[
        ("UPSTREAM__BREAKER_FAILURES", "2"),
        ("UPSTREAM__BREAKER_OPEN_MS", "60000"),
    ])
    .await;
    let mut s = env.officer("CB.H42.0001").await;
    for _ in 0..2 {
        let e = s
            .lookup("1.004222", persona("chaos-fail"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
    }
    // Now even a healthy citizen's lookup fails fast, without reaching the database.
    let e = s
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&e, Code::Unavailable, "UPSTREAM_CIRCUIT_OPEN");
    use tonic_types::StatusExt;
    assert!(e.get_error_details().retry_info().is_some());
}

#[tokio::test]
async fn a_batch_open_at_shutdown_ends_saying_how_far_it_got() {
    let mut env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let (items, rx) = tokio::sync::mpsc::channel(4);
    items
        .send(pb::VerifyBatchRequest {
            old_id_number: String::new(),
            context: ctx("1.004227"),
            item_id: "row-0".into(),
            personal_id: persona("complete-adult").into(),
            claims: vec![pb::Claim {
                field: "full_name".into(),
                value: "Trần Thị Minh Thư".into(),
            }],
        })
        .await
        .unwrap();
    let mut out = s
        .client
        .verify_batch(authed(
            &s.token,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.message().await.unwrap().unwrap().item_id, "row-0");
    // The caller keeps the stream open; the gateway is told to stop.
    let (ended, _) = tokio::join!(out.message(), env.shutdown());
    let e = ended.unwrap_err();
    assert_refused(&e, Code::Unavailable, "SHUTTING_DOWN");
    assert!(
        e.message().contains("1 items were answered"),
        "{}",
        e.message()
    );
    drop(items);
}
