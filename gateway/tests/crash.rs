//! Crash safety: the gateway binary is killed with SIGKILL in the middle of a load; after a
//! restart the chain verifies, and every request that had received an OK reply is in the trail
//! with the hash its receipt named.
#![allow(clippy::unwrap_used)]

mod common;

use common::{sequence, start_gateway};
use lienthong_devtool::call;
use lienthong_devtool::env::{DevPki, ensure_gateway_config, spawn_mock};
use lienthong_gateway::audit::frame::{FrameReader, Item};
use lienthong_gateway::audit::record::hex;
use lienthong_gateway::audit::verify::{Options, public_key_from_pem, verify};
use lienthong_proto::gateway::v1 as pb;
use std::collections::HashMap;
use std::io::BufReader;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, _) = DevPki::ensure(dir.path()).unwrap();
    let mock = spawn_mock(dir.path(), &pki, 3, 100).await.unwrap();
    let upstream = format!("https://{}", mock.addr);
    let config = ensure_gateway_config(dir.path()).unwrap();

    let (mut gateway, endpoint) = start_gateway(
        &config,
        &upstream,
        &[("RUST_LOG", "warn")],
        Stdio::inherit(),
    );
    // Acknowledged receipts: sequence → hash.
    let acked: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let mut load = Vec::new();
    for officer in ["CB.H42.0001", "CB.H42.0002", "CB.H56.0001", "CB.S01.0001"] {
        let mut caller = call::connect(dir.path(), &endpoint, officer).await.unwrap();
        let acked = acked.clone();
        load.push(tokio::spawn(async move {
            for i in 0.. {
                let req = caller.request(pb::LookupCitizenRequest {
                    context: call::context("1.004227", &format!("D-{i}")),
                    subject: Some(pb::lookup_citizen_request::Subject::PersonalId(
                        "042188999005".into(),
                    )),
                    fields: vec!["full_name".into()],
                });
                match caller.client.lookup_citizen(req).await {
                    Ok(reply) => {
                        let md = reply.metadata();
                        let seq = sequence(md);
                        let hash = md.get("x-audit-hash").unwrap().to_str().unwrap().to_owned();
                        acked.lock().unwrap().insert(seq, hash);
                    }
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => {}
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill it once a good number of replies are out.
    while acked.lock().unwrap().len() < 150 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.kill().unwrap();
    gateway.wait().unwrap();
    for task in load {
        let _ = task.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 150);

    // Restart: recovery checks the chain (cutting a torn tail) and the gateway serves again.
    let (mut gateway, endpoint) = start_gateway(
        &config,
        &upstream,
        &[("RUST_LOG", "warn")],
        Stdio::inherit(),
    );
    let mut caller = call::connect(dir.path(), &endpoint, "CB.H42.0003")
        .await
        .unwrap();
    let reply = caller
        .client
        .lookup_citizen(caller.request(pb::LookupCitizenRequest {
            context: call::context("1.004227", "D-after"),
            subject: Some(pb::lookup_citizen_request::Subject::PersonalId(
                "042188999005".into(),
            )),
            fields: vec![],
        }))
        .await
        .unwrap();
    let after = sequence(reply.metadata());
    assert!(after > *acked.keys().max().unwrap());
    gateway.kill().unwrap();
    gateway.wait().unwrap();

    let trail = dir.path().join("audit/gw-dev-1.trail");
    let file = std::fs::File::open(&trail).unwrap();
    let len = file.metadata().unwrap().len();
    let key = public_key_from_pem(&std::fs::read_to_string(&pki.audit_signing.public_key).unwrap())
        .unwrap();
    let frames: Vec<_> = FrameReader::new(BufReader::new(file), len)
        .unwrap()
        .collect();
    let mut on_disk = HashMap::new();
    for f in frames.iter().flatten() {
        if let (_, Item::Record(r)) = f {
            on_disk.insert(r.sequence, hex(&r.hash));
        }
    }
    // The second kill may have torn the last record; everything before it must verify.
    let report = verify(
        frames.into_iter().take_while(|f| f.is_ok()),
        &Options {
            keys: vec![key],
            from_genesis: true,
            to_sequence: None,
            anchor: None,
        },
    );
    assert!(report.ok(), "{report:?}");
    for (seq, hash) in &acked {
        assert_eq!(
            on_disk.get(seq),
            Some(hash),
            "acknowledged record {seq} missing or different"
        );
    }
}
