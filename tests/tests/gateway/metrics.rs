//! The admin listener's metrics, scraped after a known sequence of calls: every count exact,
//! every label bounded by the configuration.

use crate::helpers::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics` over plain HTTP/1.1: the status line and the body.
async fn scrape(addr: std::net::SocketAddr) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample whose line starts with `series` (name and labels, exactly).
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{body}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_counts_after_a_known_sequence_of_calls_are_exact() {
    let mut env = spawn_env_with(&[
        ("ADMIN_LISTEN", "\"127.0.0.1:0\""),
        ("UNITS__0__OFFICER_RATE__BURST", "3"),
    ])
    .await;
    let admin = env.admin_addr.expect("an admin listener");
    let id = persona("complete-adult");
    let mut officer = env.officer("CB.H42.0001").await;
    // Two served, one unknown procedure, then the officer's burst of 3 is spent: rate limited.
    officer.lookup("1.004222", id).await.unwrap();
    officer.lookup("1.004222", id).await.unwrap();
    let unknown = officer.lookup("9.999999", id).await.unwrap_err();
    assert_refused(&unknown, tonic::Code::InvalidArgument, "UNKNOWN_PROCEDURE");
    let limited = officer.lookup("1.004222", id).await.unwrap_err();
    assert_refused(&limited, tonic::Code::ResourceExhausted, "RATE_LIMITED");

    let (status, body) = scrape(admin).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let requests = |code: &str, reason: &str, procedure: &str| {
        value(
            &body,
            &format!(
                r#"lienthong_requests_total{{rpc="LookupCitizen",code="{code}",reason="{reason}",unit="000.00.00.H42",procedure="{procedure}"}}"#
            ),
        )
    };
    assert_eq!(requests("Ok", "", "1.004222"), 2.0);
    assert_eq!(
        requests("InvalidArgument", "UNKNOWN_PROCEDURE", "other"),
        1.0,
        "a procedure outside the catalog is labelled other"
    );
    assert_eq!(
        requests("ResourceExhausted", "RATE_LIMITED", "1.004222"),
        1.0
    );
    assert_eq!(
        value(
            &body,
            r#"lienthong_rate_limit_refusals_total{rule="officer"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &body,
            r#"lienthong_request_duration_seconds_count{rpc="LookupCitizen"}"#
        ),
        4.0
    );
    assert_eq!(value(&body, "lienthong_calls_in_flight"), 0.0);
    // Every call passed through every step (the refusals came at the limits and the policy).
    for stage in ["door", "identity", "authn", "limits", "audit_append"] {
        assert_eq!(
            value(
                &body,
                &format!(r#"lienthong_stage_duration_seconds_count{{stage="{stage}"}}"#)
            ),
            4.0,
            "{stage}"
        );
    }
    // Only the two served calls reached the database.
    assert_eq!(
        value(&body, "lienthong_upstream_duration_seconds_count"),
        2.0
    );
    assert_eq!(value(&body, "lienthong_breaker_open"), 0.0);
    // Four records, each made durable by an fsync before its reply.
    assert_eq!(value(&body, "lienthong_audit_records_per_fsync_sum"), 4.0);
    assert!(value(&body, "lienthong_audit_fsync_duration_seconds_count") >= 1.0);
    let trail = std::fs::metadata(env.trail()).unwrap().len();
    assert_eq!(value(&body, "lienthong_audit_trail_bytes"), trail as f64);
    // One token: verified once, then found in the cache.
    assert_eq!(value(&body, "lienthong_token_cache_misses_total"), 1.0);
    assert_eq!(value(&body, "lienthong_token_cache_hits_total"), 3.0);
    assert_eq!(value(&body, "lienthong_tls_handshakes_total"), 1.0);
    assert!(body.ends_with("# EOF\n"), "OpenMetrics text");
    env.shutdown().await;
}

#[tokio::test]
async fn the_log_capture_sees_every_test_and_would_catch_a_personal_id_or_a_token() {
    let env = spawn_env().await;
    let mut officer = env.officer("CB.H42.0001").await;
    let reply = officer
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    let seq = receipt_sequence(reply.metadata());
    let logs = captured_logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("\"target\":\"lienthong::request\"")
                && l.contains(&format!("\"audit_sequence\":{seq}"))),
        "the request line is captured"
    );
    assert_eq!(
        secret_in(r#"{"dossier":"HS-042188999005"}"#),
        Some("a personal ID")
    );
    assert_eq!(secret_in(r#"{"dossier":"HS-042••••••005"}"#), None);
    assert_eq!(
        secret_in("time 1795000000000000 µs"),
        None,
        "longer runs are not IDs"
    );
    assert_eq!(
        secret_in("Bearer eyJhbGciOiJFZERTQSJ9.x.y"),
        Some("a token")
    );
}
