//! `auditctl` as a reviewer runs it: against a live gateway (query, checkpoints, export) and
//! offline (verify, report), through the binary itself.
#![allow(clippy::unwrap_used)]

mod common;

use lienthong_devtool::call;
use lienthong_devtool::env::{DevPki, bind_gateway, ensure_gateway_config, spawn_mock};
use lienthong_proto::gateway::v1 as pb;
use std::process::{Command, Output};

fn auditctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditctl"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_queries_exports_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pki, _) = DevPki::ensure(d).unwrap();
    let mock = spawn_mock(d, &pki, 2, 50).await.unwrap();
    let mock_addr = mock.addr;
    let config = ensure_gateway_config(d).unwrap();
    let start = || async {
        let gateway = bind_gateway(&config, "127.0.0.1:0".parse().unwrap(), mock_addr)
            .await
            .unwrap();
        let endpoint = format!("https://{}", gateway.local_addr());
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(gateway.run_until_stopped(async {
            let _ = rx.await;
        }));
        (endpoint, stop, running)
    };

    let (endpoint, stop, running) = start().await;
    let mut caller = call::connect(d, &endpoint, "CB.H42.0001").await.unwrap();
    for dossier in ["D-1", "D-2"] {
        caller
            .client
            .lookup_citizen(caller.request(pb::LookupCitizenRequest {
                context: call::context("1.004222", dossier),
                subject: Some(pb::lookup_citizen_request::Subject::PersonalId(
                    "042188999005".into(),
                )),
                fields: vec![],
            }))
            .await
            .unwrap();
    }
    let dev = d.to_str().unwrap();
    let q = auditctl(&[
        "query",
        "--endpoint",
        &endpoint,
        "--dev-dir",
        dev,
        "--personal-id",
        "042188999005",
        "--format",
        "csv",
    ]);
    assert!(q.status.success(), "{}", text(&q));
    let csv = String::from_utf8_lossy(&q.stdout);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.contains("\"D-2\"") && csv.contains("042•••••••005") && !csv.contains("042188999005")
    );
    let table = auditctl(&[
        "query",
        "--endpoint",
        &endpoint,
        "--dev-dir",
        dev,
        "--officer",
        "CB.H42.0001",
    ]);
    assert!(text(&table).contains("LookupCitizen"), "{}", text(&table));
    // A graceful stop signs a closing checkpoint over everything so far.
    let _ = stop.send(());
    running.await.unwrap().unwrap();

    // After a restart: export with its covering checkpoint, keep the checkpoint as an anchor.
    let (endpoint, stop, running) = start().await;
    let export = d.join("export.jsonl");
    let anchor = d.join("anchor.json");
    // A provincial auditor may not export (a range carries every unit); the national one may.
    let refused = auditctl(&[
        "export",
        "--endpoint",
        &endpoint,
        "--dev-dir",
        dev,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert!(
        !refused.status.success() && text(&refused).contains("AUDIT_SCOPE"),
        "{}",
        text(&refused)
    );
    let e = auditctl(&[
        "export",
        "--endpoint",
        &endpoint,
        "--dev-dir",
        dev,
        "--as-officer",
        "CB.C06.KT01",
        "--out",
        export.to_str().unwrap(),
    ]);
    assert!(
        text(&e).contains("covered by the checkpoint at 3"),
        "{}",
        text(&e)
    );
    let c = auditctl(&[
        "checkpoints",
        "--endpoint",
        &endpoint,
        "--dev-dir",
        dev,
        "--save",
        anchor.to_str().unwrap(),
    ]);
    assert!(c.status.success(), "{}", text(&c));
    let _ = stop.send(());
    running.await.unwrap().unwrap();

    let trail = d.join("audit/gw-dev-1.trail");
    let key = pki.audit_signing.public_key.to_str().unwrap().to_owned();
    let verify = |args: &[&str]| {
        let mut all = vec!["verify", "--public-key", &key];
        all.extend_from_slice(args);
        auditctl(&all)
    };
    let t = trail.to_str().unwrap();
    let a = anchor.to_str().unwrap();
    let v = verify(&["--export", export.to_str().unwrap()]);
    assert!(v.status.success(), "{}", text(&v));
    let v = verify(&["--trail", t, "--anchor", a]);
    assert!(text(&v).contains("OK: the chain holds"), "{}", text(&v));
    // The wrong public key: said so, with its own exit code, not taken for tampering.
    let other = d.join("other.pub.pem");
    std::fs::write(
        &other,
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .unwrap()
            .public_key_pem(),
    )
    .unwrap();
    let v = auditctl(&[
        "verify",
        "--public-key",
        other.to_str().unwrap(),
        "--trail",
        t,
    ]);
    assert_eq!(v.status.code(), Some(3), "{}", text(&v));
    assert!(
        text(&v).contains("WRONG KEY") && !text(&v).contains("BAD"),
        "{}",
        text(&v)
    );

    let r = auditctl(&["report", "--trail", t]);
    assert!(
        r.status.success() && text(&r).contains("records read"),
        "{}",
        text(&r)
    );

    let original = std::fs::read(&trail).unwrap();
    let second = original.windows(3).position(|w| w == b"D-2").unwrap();
    // Edit one byte of the second lookup's dossier: exit code 1, its sequence named.
    let mut edited = original.clone();
    edited[second + 2] = b'9';
    std::fs::write(&trail, &edited).unwrap();
    let v = verify(&["--trail", t]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(text(&v).contains("BAD at sequence 1"), "{}", text(&v));

    // A frame damaged in the middle: the report covers what it could read, says where it
    // stopped, and exits non-zero.
    let mut damaged = original.clone();
    damaged[second + 2] = b'9';
    std::fs::write(&trail, &damaged).unwrap();
    let r = auditctl(&["report", "--trail", t]);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    assert!(
        text(&r).contains("INCOMPLETE") && text(&r).contains("checksum mismatch"),
        "{}",
        text(&r)
    );
}

/// `verify --central` against the machine's PostgreSQL (a schema of its own, dropped after):
/// complete and verified, then a gap (exit 4), then a record edited in the database by someone
/// with write access (exit 1) — the reviewer verifies with the public key, not by trusting the
/// store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_verifies_every_chain_of_the_central_store() {
    use lienthong_gateway::audit::record::{Entry, Record};
    let Some(store) = common::Store::open("auditctl").await else {
        return;
    };
    let (url, schema, pool) = (&store.url, &store.schema, &store.pool);
    let dir = tempfile::tempdir().unwrap();
    let (key, pem) = common::signing_key(dir.path(), 5);
    let records = common::chain("gw-c", 13);
    store.ingest("gw-c", &records[..10]).await;
    store.checkpoint(&key, "gw-c", 9, records[9].hash).await;
    let verify = || {
        auditctl(&[
            "verify",
            "--central",
            url,
            "--schema",
            schema,
            "--public-key",
            pem.to_str().unwrap(),
        ])
    };
    let out = verify();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("gw-c: complete and verified to sequence 9 (10 records, 1 checkpoint signatures; signed up to 9)"),
        "{}",
        text(&out)
    );

    store.ingest("gw-c", &records[12..]).await;
    let out = verify();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("gw-c: GAP at sequence 10: 1 later record(s) wait for it"),
        "{}",
        text(&out)
    );

    sqlx::query("UPDATE records SET officer_code = 'x', canonical = $1 WHERE seq = 3")
        .bind(Record::canonical("gw-c", 3, &Entry::default()))
        .execute(pool)
        .await
        .unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("gw-c: BAD at sequence 3"),
        "{}",
        text(&out)
    );

    store.drop_schema().await;
}
