//! Fairness and bulkheads: one unit's flood leaves another unit's calls alone, the calls in
//! flight to the database are capped per unit and in all (UPSTREAM_BUSY), and VerifyBatch
//! items may take only their share of the global rate, so single calls are never starved.

use crate::helpers::*;
use lienthong_proto::gateway::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn one_unit_flooding_does_not_stop_another() {
    // Thanh Hóa (units[1]): 3 calls at once, then 1 a second (the clock stands still).
    let env = spawn_env_with(&[
        ("UNITS__1__RATE__PER_SECOND", "1"),
        ("UNITS__1__RATE__BURST", "3"),
    ])
    .await;
    let mut flood = env.officer("CB.H56.0001").await;
    let mut refused = 0;
    for _ in 0..20 {
        match flood.lookup("1.004222", persona("thanh-hoa-adult")).await {
            Ok(_) => {}
            Err(s) => {
                assert_refused(&s, Code::ResourceExhausted, "RATE_LIMITED");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 17);
    let mut other = env.officer("CB.H42.0001").await;
    for _ in 0..10 {
        other
            .lookup("1.004222", persona("complete-adult"))
            .await
            .unwrap();
    }
}

/// A lookup by `officer` left running in the background.
async fn in_flight(
    env: &TestEnv,
    officer: &str,
    id: &'static str,
) -> tokio::task::JoinHandle<Result<(), tonic::Status>> {
    let mut s = env.officer(officer).await;
    tokio::spawn(async move { s.lookup("1.004222", id).await.map(|_| ()) })
}

#[tokio::test]
async fn calls_in_flight_are_capped_per_unit_and_in_all() {
    let env = spawn_env_with(&[
        ("UPSTREAM__MAX_IN_FLIGHT", "2"),
        ("UPSTREAM__MAX_IN_FLIGHT_PER_UNIT", "1"),
        ("UPSTREAM__TIMEOUT_MS", "5000"),
    ])
    .await;
    env.slow_database(800).await;
    // One Hà Tĩnh call and one Thanh Hóa call take the two slots…
    let h42 = in_flight(&env, "CB.H42.0001", persona("complete-adult")).await;
    let h56 = in_flight(&env, "CB.H56.0001", persona("thanh-hoa-adult")).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // …so a second Hà Tĩnh call meets its unit's share, and the sandbox unit the whole.
    let mut again = env.officer("CB.H42.0002").await;
    let s = again
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&s, Code::ResourceExhausted, "UPSTREAM_BUSY");
    let quota = s.get_error_details().quota_failure().unwrap().violations[0].clone();
    assert_eq!(quota.subject, "upstream_in_flight:unit");
    assert!(s.get_error_details().retry_info().is_some());
    let mut sandbox = env.officer("CB.S01.0001").await;
    let s = sandbox
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&s, Code::ResourceExhausted, "UPSTREAM_BUSY");
    assert_eq!(
        s.get_error_details().quota_failure().unwrap().violations[0].subject,
        "upstream_in_flight:total"
    );
    h42.await.unwrap().unwrap();
    h56.await.unwrap().unwrap();
    // The slots are given back with the answers.
    again
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
}

#[tokio::test]
async fn batches_take_only_their_share_of_the_global_rate() {
    // 10 calls at once in all, half of them for batches (the clock stands still).
    let env = spawn_env_with(&[("LIMITS__PER_SECOND", "10"), ("LIMITS__BURST", "10")]).await;
    let item = |i: u32| pb::VerifyBatchRequest {
        old_id_number: String::new(),
        context: if i == 0 { ctx("1.004227") } else { None },
        item_id: format!("item-{i}"),
        personal_id: persona("complete-adult").into(),
        claims: vec![pb::Claim {
            field: "gender".into(),
            value: "female".into(),
        }],
    };
    let mut h42 = env.officer("CB.H42.0001").await;
    let mut out = h42
        .client
        .verify_batch(authed(&h42.token, tokio_stream::iter((0..8).map(item))))
        .await
        .unwrap()
        .into_inner();
    let mut verified = 0;
    let mut limited = Vec::new();
    while let Some(r) = out.message().await.unwrap() {
        match r.outcome.unwrap() {
            pb::verify_batch_response::Outcome::Result(_) => verified += 1,
            pb::verify_batch_response::Outcome::Error(e) => limited.push(e),
        }
    }
    assert_eq!(verified, 5, "the batches' half of a burst of 10");
    assert_eq!(limited.len(), 3);
    assert!(
        limited.iter().all(|e| e.reason == "RATE_LIMITED"),
        "{limited:?}"
    );
    assert!(
        limited[0].message.contains("50% of the global rate"),
        "{limited:?}"
    );
    // The rest is still there for single calls: 4, the batch call itself having taken one.
    let mut single = env.officer("CB.H42.0002").await;
    for _ in 0..4 {
        single
            .lookup("1.004222", persona("complete-adult"))
            .await
            .unwrap();
    }
}
