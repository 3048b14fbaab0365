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

#[tokio::test]
async fn a_pending_unit_approved_by_a_reload_is_served() {
    let mut env = admin_env(&[]).await;
    let mut s = env.officer("CB.P01.0001").await;
    let before = s
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&before, Code::PermissionDenied, "UNIT_NOT_APPROVED");
    edit(&env, |t| {
        let blocks: Vec<&str> = t.split("[[units]]").collect();
        blocks
            .iter()
            .map(|b| {
                if b.trim_start().starts_with("code = \"000.00.00.P01\"") {
                    b.replacen("approval = \"pending\"", "approval = \"approved\"", 1)
                } else {
                    (*b).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("[[units]]")
    });
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("unit 000.00.00.P01: approval pending → approved"),
        "{body}"
    );
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn a_new_unit_and_a_new_officer_rate_take_effect() {
    let mut env = admin_env(&[]).await;
    // The development sandbox unit removed first, then added again by a reload.
    let path = env.dir.path().join("gateway.toml");
    let full = std::fs::read_to_string(&path).unwrap();
    edit(&env, |t| without_unit(&t, "000.00.00.S01"));
    assert_eq!(reload(&env).await.0, 200);
    let mut s = env.officer("CB.S01.0001").await;
    let gone = s
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&gone, Code::Unauthenticated, "UNKNOWN_UNIT");
    // Back, with an officer rate of 1 call at once.
    std::fs::write(
        &path,
        full.replacen(
            "officer_rate = { per_second = 5, burst = 10 }",
            "officer_rate = { per_second = 1, burst = 1 }",
            1,
        ),
    )
    .unwrap();
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("unit 000.00.00.S01 added"), "{body}");
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    let limited = s
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&limited, Code::ResourceExhausted, "RATE_LIMITED");
    env.shutdown().await;
}

#[tokio::test]
async fn a_procedure_added_to_the_catalog_and_new_issuer_keys_take_effect() {
    let mut env = admin_env(&[]).await;
    // A new procedure in the catalog: a copy of 1.004222 under another code.
    let catalog = env.dir.path().join("procedures.toml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    let start = text.find("[[procedure]]\ncode = \"1.004222\"").unwrap();
    let end = text[start + 1..]
        .find("[[procedure]]")
        .map_or(text.len(), |e| start + 1 + e);
    let copy = text[start..end].replacen("code = \"1.004222\"", "code = \"1.009999\"", 1);
    std::fs::write(&catalog, format!("{text}\n{copy}")).unwrap();
    // And a new key for the development issuer.
    let new_keys =
        lienthong_devtool::pki::issuer_keys(&env.dir.path().join("pki"), "issuer-2").unwrap();
    edit(&env, |t| {
        t.replacen("pki/issuer.pub.pem", "pki/issuer-2.pub.pem", 1)
    });
    let mut s = env.officer("CB.H42.0001").await;
    let unknown = s
        .lookup("1.009999", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&unknown, Code::InvalidArgument, "UNKNOWN_PROCEDURE");
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("procedure 1.009999 added to the catalog"),
        "{body}"
    );
    assert!(body.contains("token issuers"), "{body}");
    // The old key's token is refused now; one signed with the new key is served, and the new
    // procedure with it.
    let old = s
        .lookup("1.009999", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&old, Code::Unauthenticated, "BAD_TOKEN");
    let spec = lienthong_devtool::tokens::TokenSpec::new(
        "CB.H42.0001",
        "000.00.00.H42",
        &["receiver", "processor"],
    )
    .bound_to_file(&env.unit_cert("ha-tinh").cert)
    .unwrap();
    s.token = lienthong_devtool::tokens::mint(&new_keys.key, &spec).unwrap();
    s.lookup("1.009999", persona("complete-adult"))
        .await
        .unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn a_certificate_revoked_by_a_reload_is_refused_on_its_next_call_and_recorded() {
    let mut env = admin_env(&[]).await;
    let mut s = env.officer("CB.H56.0001").await;
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    // A fingerprint that is not one: the whole file is refused, naming the key.
    edit(&env, |t| {
        t.replacen(
            "revoked_certificates = []",
            "revoked_certificates = [\"ab:cd\"]",
            1,
        )
    });
    let (status, body) = reload(&env).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("revoked_certificates[0]"), "{body}");
    // Thanh Hóa's certificate, as `openssl x509 -fingerprint -sha256` prints it.
    let fingerprint =
        lienthong_devtool::units::fingerprint(&env.unit_cert("thanh-hoa").cert).unwrap();
    let hex: Vec<String> = fingerprint
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
        .collect();
    edit(&env, |t| {
        t.replacen("\"ab:cd\"", &format!("\"{}\"", hex.join(":")), 1)
    });
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("1 certificate(s) revoked"), "{body}");
    // The same client, the same connection.
    let refused = s
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::Unauthenticated, "CERTIFICATE_REVOKED");
    assert!(refused.message().contains(&fingerprint), "{refused:?}");
    // Another unit's certificate is untouched.
    let mut other = env.officer("CB.H42.0001").await;
    other
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    env.shutdown().await;
    let last = records(&env)
        .into_iter()
        .rfind(|r| r.entry.unit_code == "000.00.00.H56")
        .unwrap();
    assert_eq!(last.entry.outcome_reason, "CERTIFICATE_REVOKED");
    assert_eq!(last.entry.cert_fingerprint, fingerprint);
}
