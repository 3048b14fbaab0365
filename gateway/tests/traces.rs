//! Traces, when a province runs a collector: the gateway binary with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set sends one span per request, with a child span per pipeline
//! step, to an OTLP/gRPC collector (here, one the test runs).
#![cfg(feature = "otlp")]
#![allow(clippy::unwrap_used)]

mod common;

use common::{sequence, start_gateway};
use lienthong_devtool::call;
use lienthong_devtool::env::{DevPki, ensure_gateway_config, spawn_mock};
use lienthong_proto::gateway::v1 as pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A collector that keeps every span it is sent.
struct Collector(mpsc::UnboundedSender<Span>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let _ = self.0.send(span);
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_one_trace_with_a_span_per_step() {
    let (tx, mut spans) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let (pki, _) = DevPki::ensure(dir.path()).unwrap();
    let mock = spawn_mock(dir.path(), &pki, 3, 100).await.unwrap();
    let config = ensure_gateway_config(dir.path()).unwrap();
    let otlp = format!("http://{collector}");
    let (mut gateway, endpoint) = start_gateway(
        &config,
        &format!("https://{}", mock.addr),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RUST_LOG", "warn"),
        ],
        Stdio::null(),
    );
    let mut caller = call::connect(dir.path(), &endpoint, "CB.H42.0001")
        .await
        .unwrap();
    let reply = caller
        .client
        .lookup_citizen(caller.request(pb::LookupCitizenRequest {
            context: call::context("1.004227", "D-1"),
            subject: Some(pb::lookup_citizen_request::Subject::PersonalId(
                "042188999005".into(),
            )),
            fields: vec!["full_name".into()],
        }))
        .await
        .unwrap();
    let sequence = i64::try_from(sequence(reply.metadata())).unwrap();

    // The request's span, and its children as they arrive.
    let method = "/lienthong.gateway.v1.CitizenGateway/LookupCitizen";
    let mut seen: Vec<Span> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let steps = [
        "door",
        "identity",
        "authn",
        "limits",
        "upstream",
        "audit_append",
    ];
    let complete = |seen: &[Span]| {
        let Some(root) = seen.iter().find(|s| s.name == method) else {
            return false;
        };
        steps.iter().all(|step| {
            seen.iter()
                .any(|s| s.name == *step && s.parent_span_id == root.span_id)
        })
    };
    while !complete(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, spans.recv()).await {
            Ok(Some(span)) => seen.push(span),
            _ => panic!(
                "the trace is incomplete: {:?}",
                seen.iter().map(|s| &s.name).collect::<Vec<_>>()
            ),
        }
    }
    let root = seen.iter().find(|s| s.name == method).unwrap();
    assert_eq!(
        attribute(root, "lienthong.audit_sequence"),
        Some(Value::IntValue(sequence))
    );
    assert_eq!(
        attribute(root, "lienthong.unit"),
        Some(Value::StringValue("000.00.00.H42".into()))
    );
    assert!(
        seen.iter()
            .filter(|s| steps.contains(&s.name.as_str()))
            .all(|s| s.trace_id == root.trace_id),
        "one trace"
    );
    gateway.kill().unwrap();
    gateway.wait().unwrap();
}
