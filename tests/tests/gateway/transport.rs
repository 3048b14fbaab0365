//! The transport's limits, each crossed: a TLS handshake that never comes, more streams than a
//! connection may open, metadata over the header limit, a call over the gateway's request
//! timeout, and a VerifyBatch stream that goes quiet.

use crate::helpers::*;
use lienthong_proto::gateway::v1 as pb;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tonic::Code;

#[tokio::test]
async fn connections_that_never_finish_their_handshake_are_closed() {
    let mut env = spawn_env_with(&[("TRANSPORT__TLS_HANDSHAKE_TIMEOUT_MS", "300")]).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(env.addr).await.unwrap());
    }
    let started = Instant::now();
    for mut c in idle {
        let mut buf = [0u8; 16];
        // The server closes it: end of stream (or a reset), long before a minute.
        let closed = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("an idle connection was still open after 10 s");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // And the gateway still serves.
    let mut s = env.officer("CB.H42.0001").await;
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    // Each is in the trail: a few records of their own, the rest counted in a door summary.
    env.shutdown().await;
    let counted: u64 = records(&env)
        .iter()
        .filter(|r| r.entry.outcome_reason == "TLS_HANDSHAKE_TIMEOUT")
        .map(|r| {
            if r.entry.method == "(door summary)" {
                r.entry
                    .outcome_message
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            } else {
                assert_eq!(r.entry.method, "(TLS handshake)");
                1
            }
        })
        .sum();
    assert_eq!(counted, 20);
}

#[tokio::test]
async fn one_connection_has_at_most_its_streams_in_flight() {
    let env = spawn_env_with(&[("TRANSPORT__MAX_CONCURRENT_STREAMS", "1")]).await;
    env.slow_database(300).await;
    let s = env.officer("CB.H42.0001").await;
    let started = Instant::now();
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let mut client = s.client.clone();
            let token = s.token.clone();
            tokio::spawn(async move {
                client
                    .lookup_citizen(authed(
                        &token,
                        lookup("1.004222", persona("complete-adult")),
                    ))
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    // Each call is served one stream at a time, or refused (REFUSED_STREAM, UNAVAILABLE) when
    // it arrives while the one stream is taken: never two 300 ms lookups at once.
    let mut served = 0u32;
    for c in calls {
        match c.await.unwrap() {
            Ok(()) => served += 1,
            Err(e) => assert_eq!(e.code(), Code::Unavailable, "{e:?}"),
        }
    }
    assert!(served >= 1);
    assert!(
        started.elapsed() >= Duration::from_millis(300) * served,
        "{served} served in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn metadata_over_the_header_limit_is_refused() {
    let env = spawn_env_with(&[("TRANSPORT__MAX_HEADER_LIST_BYTES", "4096")]).await;
    let mut s = env.officer("CB.H42.0001").await;
    let mut req = authed(&s.token, lookup("1.004222", persona("complete-adult")));
    req.metadata_mut()
        .insert("x-padding", "p".repeat(8 * 1024).parse().unwrap());
    assert!(s.client.lookup_citizen(req).await.is_err());
    // The gateway goes on serving (a new connection).
    let mut s = env.officer("CB.H42.0001").await;
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_call_over_the_request_timeout_ends_and_is_recorded() {
    let mut env = spawn_env_with(&[("TRANSPORT__REQUEST_TIMEOUT_MS", "1000")]).await;
    let mut s = env.officer("CB.H42.0001").await;
    // The chaos-slow persona answers in 3 s, within the upstream deadline (5 s), past the
    // gateway's request timeout (1 s).
    let started = Instant::now();
    let e = s
        .lookup("1.004222", persona("chaos-slow"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(
        matches!(e.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{e:?}"
    );
    env.shutdown().await;
    let ended: Vec<_> = records(&env)
        .into_iter()
        .filter(|r| r.entry.outcome_reason == "REQUEST_TIMEOUT")
        .collect();
    assert_eq!(ended.len(), 1);
    assert!(!ended[0].entry.citizen_pseudonym.is_empty());
}

#[tokio::test]
async fn a_batch_stream_that_goes_quiet_is_closed_and_recorded() {
    let mut env = spawn_env_with(&[("TRANSPORT__BATCH_IDLE_TIMEOUT_MS", "300")]).await;
    let token = env.token("CB.H42.0001");
    let mut client = env.client_for_unit("ha-tinh").await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::VerifyBatchRequest {
        old_id_number: String::new(),
        context: ctx("1.004222"),
        item_id: "1".into(),
        personal_id: persona("complete-adult").into(),
        claims: vec![pb::Claim {
            field: "gender".into(),
            value: "Nữ".into(),
        }],
    })
    .await
    .unwrap();
    let mut replies = client
        .verify_batch(authed(
            &token,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(replies.message().await.unwrap().is_some());
    // Nothing more is sent, the stream stays open: closed by the gateway.
    let e = tokio::time::timeout(Duration::from_secs(10), replies.message())
        .await
        .expect("an idle batch was not closed")
        .unwrap_err();
    assert_refused(&e, Code::DeadlineExceeded, "BATCH_IDLE");
    drop(tx);
    env.shutdown().await;
    assert!(
        records(&env).iter().any(
            |r| r.entry.outcome_reason == "BATCH_IDLE" && r.entry.request_id.ends_with("#idle")
        )
    );
}
