//! Live reconfiguration through the admin listener's `POST /reload`: a unit removed is refused
//! on its next call over the same connection, a procedure granted becomes usable, a broken file
//! changes nothing, limits of unchanged units keep their state, and every reload is recorded.

use crate::helpers::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

/// `POST /reload`: the status code and the body.
async fn reload(env: &TestEnv) -> (u16, String) {
    let addr = env.admin_addr.expect("an admin listener");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /reload HTTP/1.1\r\nHost: gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Rewrites the environment's gateway configuration.
fn edit(env: &TestEnv, change: impl FnOnce(String) -> String) {
    let path = env.dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = change(text.clone());
    assert_ne!(changed, text, "the edit changed nothing");
    std::fs::write(&path, changed).unwrap();
}

/// The text without the `[[units]]` block of `code`.
fn without_unit(text: &str, code: &str) -> String {
    let blocks: Vec<&str> = text.split("[[units]]").collect();
    let mut out = blocks[0].to_owned();
    for b in &blocks[1..] {
        if !b.trim_start().starts_with(&format!("code = \"{code}\"")) {
            out.push_str("[[units]]");
            out.push_str(b);
        }
    }
    out
}

async fn admin_env(overrides: &[(&str, &str)]) -> TestEnv {
    let mut all = vec![("ADMIN_LISTEN", "\"127.0.0.1:0\"")];
    all.extend_from_slice(overrides);
    spawn_env_with(&all).await
}

fn reloads(env: &TestEnv) -> Vec<lienthong_gateway::audit::record::Record> {
    records(env)
        .into_iter()
        .filter(|r| r.entry.method == lienthong_gateway::reload::RELOAD_METHOD)
        .collect()
}

#[tokio::test]
async fn a_unit_removed_by_a_reload_is_refused_on_its_next_call_over_the_same_connection() {
    let mut env = admin_env(&[]).await;
    let mut s = env.officer("CB.H56.0001").await;
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    edit(&env, |t| without_unit(&t, "000.00.00.H56"));
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("unit 000.00.00.H56 removed"), "{body}");
    // The same client, the same HTTP/2 connection.
    let refused = s
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::Unauthenticated, "UNKNOWN_UNIT");
    // Another unit is untouched.
    let mut other = env.officer("CB.H42.0001").await;
    other
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    let recorded = reloads(&env);
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0].entry;
    assert_eq!(r.outcome_code, 0);
    assert!(r.outcome_message.contains("000.00.00.H56 removed"), "{r:?}");
    assert!(r.peer_address.starts_with("admin listener"), "{r:?}");
    env.shutdown().await;
}

#[tokio::test]
async fn a_procedure_granted_by_a_reload_becomes_usable() {
    let mut env = admin_env(&[]).await;
    let mut s = env.officer("CB.XTS.0001").await;
    let before = s
        .lookup("1.002804", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&before, Code::PermissionDenied, "PROCEDURE_NOT_ALLOWED");
    edit(&env, |t| {
        t.replacen(
            r#"procedures = ["1.001193","#,
            r#"procedures = ["1.002804", "1.001193","#,
            1,
        )
    });
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("unit 001.01.42.H42: procedures +1.002804"),
        "{body}"
    );
    s.lookup("1.002804", persona("complete-adult"))
        .await
        .unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn a_broken_file_changes_nothing_and_says_what_is_wrong() {
    let mut env = admin_env(&[]).await;
    let path = env.dir.path().join("gateway.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    // A rate of zero, and H56 removed: nothing of it may take effect.
    edit(&env, |t| {
        without_unit(&t, "000.00.00.H56").replacen(
            "rate = { per_second = 100, burst = 200 }",
            "rate = { per_second = 0, burst = 200 }",
            1,
        )
    });
    let (status, body) = reload(&env).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("units[0] (000.00.00.H42).rate"), "{body}");
    assert!(
        body.contains("running configuration stays in force"),
        "{body}"
    );
    let mut s = env.officer("CB.H56.0001").await;
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    // A file that is not TOML at all.
    std::fs::write(&path, "units = [ this is not toml").unwrap();
    let (status, body) = reload(&env).await;
    assert_eq!(status, 422, "{body}");
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    // Put right, it reloads with no change.
    std::fs::write(&path, good).unwrap();
    let (status, body) = reload(&env).await;
    assert_eq!((status, body.as_str()), (200, "reloaded: no change\n"));
    let recorded = reloads(&env);
    let reasons: Vec<&str> = recorded
        .iter()
        .map(|r| r.entry.outcome_reason.as_str())
        .collect();
    assert_eq!(reasons, ["CONFIG_INVALID", "CONFIG_INVALID", ""]);
    env.shutdown().await;
}

#[tokio::test]
async fn the_limits_of_unchanged_units_keep_their_state_across_a_reload() {
    let mut env = admin_env(&[("UNITS__0__OFFICER_RATE__BURST", "2")]).await;
    let mut s = env.officer("CB.H42.0001").await;
    let id = persona("complete-adult");
    s.lookup("1.004222", id).await.unwrap();
    s.lookup("1.004222", id).await.unwrap();
    let limited = s.lookup("1.004222", id).await.unwrap_err();
    assert_refused(&limited, Code::ResourceExhausted, "RATE_LIMITED");
    // Another unit changes; H42's officer budget is still spent (the fake clock stands still).
    edit(&env, |t| without_unit(&t, "000.00.00.P01"));
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    let still = s.lookup("1.004222", id).await.unwrap_err();
    assert_refused(&still, Code::ResourceExhausted, "RATE_LIMITED");
    env.shutdown().await;
}
