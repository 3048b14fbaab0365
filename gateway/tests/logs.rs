//! The gateway binary's log, as an operator collects it from a file: one JSON object per line,
//! no colour codes, one line per request with who, what, how it ended and its audit sequence,
//! and never a full personal ID or a token, whatever field a caller put them in.
#![allow(clippy::unwrap_used)]

mod common;

use common::{sequence, start_gateway};
use lienthong_devtool::call;
use lienthong_devtool::env::{DevPki, ensure_gateway_config, spawn_mock};
use lienthong_proto::gateway::v1 as pb;
use std::process::{Command, Stdio};

const CITIZEN: &str = "042188999005";

fn lookup(request_id: &str, procedure: &str, dossier: &str, id: &str) -> pb::LookupCitizenRequest {
    pb::LookupCitizenRequest {
        context: Some(pb::RequestContext {
            request_id: request_id.into(),
            procedure_code: procedure.into(),
            dossier_id: dossier.into(),
            ..Default::default()
        }),
        subject: Some(pb::lookup_citizen_request::Subject::PersonalId(id.into())),
        fields: vec!["full_name".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_leaves_one_json_line_without_personal_ids_or_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, _) = DevPki::ensure(dir.path()).unwrap();
    let mock = spawn_mock(dir.path(), &pki, 3, 100).await.unwrap();
    let config = ensure_gateway_config(dir.path()).unwrap();
    let log = dir.path().join("gateway.log");
    // Standard error to a file: not a terminal.
    let (mut gateway, endpoint) = start_gateway(
        &config,
        &format!("https://{}", mock.addr),
        &[("RUST_LOG", "info")],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );

    let mut caller = call::connect(dir.path(), &endpoint, "CB.H42.0001")
        .await
        .unwrap();
    // (request id, outcome, receipt sequence) of each call.
    let mut calls: Vec<(String, &str, u64)> = Vec::new();
    for (rid, dossier) in [("log-served", "D-1"), ("log-dossier", "HS-042188999005")] {
        let reply = caller
            .client
            .lookup_citizen(caller.request(lookup(rid, "1.004227", dossier, CITIZEN)))
            .await
            .unwrap();
        calls.push((rid.into(), "served", sequence(reply.metadata())));
    }
    let refused = [
        lookup("log-procedure", "9.999999", "D-2", CITIZEN),
        lookup("log-malformed", "1.004227", "D-3", "04218899900X"),
    ];
    for request in refused {
        let rid = request.context.as_ref().unwrap().request_id.clone();
        let status = caller
            .client
            .lookup_citizen(caller.request(request))
            .await
            .unwrap_err();
        calls.push((rid, "refused", sequence(status.metadata())));
    }
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJDQi5INDIuMDAwMSJ9.Zm9yZ2Vk";
    let mut request = tonic::Request::new(lookup("log-token", "1.004227", "D-4", CITIZEN));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {forged}").parse().unwrap());
    let status = caller.client.lookup_citizen(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    calls.push(("log-token".into(), "refused", sequence(status.metadata())));

    // SIGHUP reads the configuration again: one line says so (and the trail records it).
    let hup = Command::new("kill")
        .args(["-HUP", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("configuration reloaded")
    {
        assert!(std::time::Instant::now() < deadline, "no reload line");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A line is written before its reply is released; the log is complete now.
    gateway.kill().unwrap();
    gateway.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file:\n{text}"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let requests: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "lienthong::request")
        .collect();
    assert_eq!(requests.len(), calls.len(), "one line per request:\n{text}");
    for (rid, outcome, seq) in &calls {
        let line = requests
            .iter()
            .find(|l| l["request_id"] == rid.as_str())
            .unwrap_or_else(|| panic!("no line for {rid}:\n{text}"));
        assert_eq!(line["outcome"], *outcome, "{line}");
        assert_eq!(line["audit_sequence"], *seq, "{line}");
        assert_eq!(
            line["method"],
            "/lienthong.gateway.v1.CitizenGateway/LookupCitizen"
        );
        assert!(line["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
        if *outcome == "refused" {
            assert!(!line["reason"].as_str().unwrap().is_empty(), "{line}");
        }
    }
    let served = requests
        .iter()
        .find(|l| l["request_id"] == "log-served")
        .unwrap();
    assert_eq!(served["unit"], "000.00.00.H42");
    assert_eq!(served["officer"], "CB.H42.0001");
    assert_eq!(served["procedure"], "1.004227");
    assert_eq!(served["dossier"], "D-1");
    let dossier = requests
        .iter()
        .find(|l| l["request_id"] == "log-dossier")
        .unwrap();
    assert_eq!(
        dossier["dossier"], "HS-042••••••005",
        "the ID in the dossier is masked"
    );
    let reloaded = lines
        .iter()
        .find(|l| l["message"] == "configuration reloaded")
        .unwrap();
    assert_eq!(reloaded["who"], "signal SIGHUP");
    assert_eq!(reloaded["changes"], "no change");
    for secret in [CITIZEN, forged, caller.token.as_str()] {
        assert!(!text.contains(secret), "{secret} in the log:\n{text}");
    }
}
