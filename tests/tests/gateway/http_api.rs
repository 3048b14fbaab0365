//! The HTTP/JSON API against a live gateway: served calls with their receipts, refusals as
//! problem documents carrying the gRPC refusal's details, rate limits with Retry-After,
//! batches as arrays, bodies that are not JSON, too large or of another type refused and
//! recorded, over HTTP/1.1 and HTTP/2, and the OpenAPI document.

use crate::helpers::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use lienthong_devtool::pki::CertFiles;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use std::sync::Arc;

/// A reply: status, headers, body as JSON (Null when it is not JSON).
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    json: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// One request over a new mutual-TLS connection, HTTP/2 or HTTP/1.1.
async fn send(
    env: &TestEnv,
    identity: Option<&CertFiles>,
    h2: bool,
    request: http::Request<Full<Bytes>>,
) -> Reply {
    let addr = env.http_addr.expect("the HTTP/JSON API is on");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&env.pki.ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut tls = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(&id.cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(&id.key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![if h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let io = TokioIo::new(stream);
    let response = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await.unwrap()
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

fn post(
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> http::Request<Full<Bytes>> {
    let mut r = http::Request::builder()
        .method("POST")
        .uri(format!("https://localhost{path}"))
        .header("host", "localhost")
        .header("content-type", content_type);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Full::new(Bytes::from(body))).unwrap()
}

fn json_post(path: &str, token: &str, body: &Value) -> http::Request<Full<Bytes>> {
    post(
        path,
        Some(token),
        "application/json",
        body.to_string().into_bytes(),
    )
}

fn context(procedure: &str) -> Value {
    json!({"requestId": "http-1", "procedureCode": procedure, "dossierId": "H42.01-0001"})
}

async fn http_env(overrides: &[(&str, &str)]) -> TestEnv {
    let mut all = vec![("HTTP_LISTEN", "\"127.0.0.1:0\"")];
    all.extend_from_slice(overrides);
    spawn_env_with(&all).await
}

#[tokio::test]
async fn a_lookup_over_http_json_is_served_and_recorded_like_the_grpc_call() {
    let mut env = http_env(&[]).await;
    let unit = env.unit_cert("ha-tinh");
    let token = env.token("CB.H42.0001");
    for h2 in [false, true] {
        let reply = send(
            &env,
            Some(&unit),
            h2,
            json_post(
                "/v1/LookupCitizen",
                &token,
                &json!({"context": context("1.004222"), "personalId": persona("complete-adult"), "fields": ["full_name", "date_of_birth"]}),
            ),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(reply.json["citizen"]["fullName"], "Trần Thị Minh Thư");
        assert_eq!(
            reply.json["disclosedFields"],
            json!(["full_name", "date_of_birth"])
        );
        assert!(
            reply.json["citizen"].get("phone").is_none(),
            "{}",
            reply.json
        );
        assert_eq!(reply.header("x-audit-chain"), "gw-dev-1");
    }
    env.shutdown().await;
    // Both calls' records, with the same method as over gRPC.
    let lookups: Vec<_> = records(&env)
        .into_iter()
        .filter(|r| r.entry.method == "/lienthong.gateway.v1.CitizenGateway/LookupCitizen")
        .collect();
    assert_eq!(lookups.len(), 2);
    for r in &lookups {
        let mut fields = r.entry.fields_disclosed.clone();
        fields.sort();
        assert_eq!(r.entry.outcome_code, 0);
        assert_eq!(fields, ["date_of_birth", "full_name"], "{r:?}");
        assert_eq!(r.entry.officer_code, "CB.H42.0001");
    }
}

#[tokio::test]
async fn refusals_are_problem_documents_with_the_same_reason_details_and_receipt() {
    let mut env = http_env(&[]).await;
    let unit = env.unit_cert("ha-tinh");
    let token = env.token("CB.H42.0001");
    // A procedure the officer's role may not use.
    let refused = send(
        &env,
        Some(&unit),
        false,
        json_post(
            "/v1/LookupCitizen",
            &token,
            &json!({"context": context("2.000488"), "personalId": persona("complete-adult")}),
        ),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("content-type"), "application/problem+json");
    let p = &refused.json;
    assert_eq!(p["type"], "urn:lienthong:problem:ROLE_NOT_ALLOWED");
    assert_eq!(p["code"], "PERMISSION_DENIED");
    assert_eq!(p["reason"], "ROLE_NOT_ALLOWED");
    assert!(p["message_vi"].as_str().unwrap().contains("vai trò"), "{p}");
    assert_eq!(p["audit"]["sequence"], refused.header("x-audit-sequence"));
    // A malformed ID: the field violation is carried over.
    let bad = send(
        &env,
        Some(&unit),
        true,
        json_post(
            "/v1/LookupCitizen",
            &token,
            &json!({"context": context("1.004222"), "personalId": "04218899"}),
        ),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.json);
    assert_eq!(bad.json["field_violations"][0]["field"], "personal_id");
    // No certificate: 401 with the challenge.
    let anonymous = send(
        &env,
        None,
        false,
        json_post("/v1/ListProcedures", &token, &json!({})),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json["reason"], "NO_CLIENT_CERTIFICATE");
    assert_eq!(anonymous.header("www-authenticate"), "Bearer");
    // No token.
    let untokened = send(
        &env,
        Some(&unit),
        false,
        post(
            "/v1/ListProcedures",
            None,
            "application/json",
            b"{}".to_vec(),
        ),
    )
    .await;
    assert_eq!(untokened.status, 401);
    assert_eq!(untokened.json["reason"], "MISSING_TOKEN");
    env.shutdown().await;
    let sequence: u64 = refused.header("x-audit-sequence").parse().unwrap();
    let record = records(&env)
        .into_iter()
        .find(|r| r.sequence == sequence)
        .unwrap();
    assert_eq!(record.entry.outcome_reason, "ROLE_NOT_ALLOWED");
}

#[tokio::test]
async fn a_rate_limit_says_when_to_retry_in_the_problem_and_in_retry_after() {
    let env = http_env(&[]).await;
    // The commune counter's officer: 2 calls a second, a burst of 5.
    let unit = env.unit_cert("thanh-sen");
    let token = env.token("CB.XTS.0001");
    let mut limited = None;
    for _ in 0..8 {
        let reply = send(
            &env,
            Some(&unit),
            false,
            json_post("/v1/ListProcedures", &token, &json!({})),
        )
        .await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
        assert_eq!(reply.status, 200, "{}", reply.json);
    }
    let limited = limited.expect("the officer's limit was reached");
    assert_eq!(limited.json["reason"], "RATE_LIMITED");
    assert!(limited.json["retry_after_ms"].as_u64().unwrap() > 0);
    assert!(limited.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(
        limited.json["quota_violations"][0]["subject"],
        "officer:CB.XTS.0001"
    );
}

#[tokio::test]
async fn a_batch_is_an_array_in_and_out_and_bounded_like_the_stream() {
    let env = http_env(&[]).await;
    let token = env.token("CB.H42.0001");
    let item = |id: &str, name: &str| {
        json!({"context": context("1.004227"), "itemId": id, "personalId": persona("complete-adult"),
               "claims": [{"field": "full_name", "value": name}]})
    };
    let reply = send(
        &env,
        Some(&env.unit_cert("ha-tinh")),
        true,
        json_post(
            "/v1/VerifyBatch",
            &token,
            &json!([item("a", "Trần Thị Minh Thư"), item("b", "Trần Thị Minh")]),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json[0]["itemId"], "a");
    assert_eq!(reply.json[0]["result"]["result"], "OVERALL_RESULT_MATCH");
    assert_eq!(reply.json[1]["result"]["result"], "OVERALL_RESULT_MISMATCH");
    // The commune counter may not verify in bulk.
    let refused = send(
        &env,
        Some(&env.unit_cert("thanh-sen")),
        false,
        json_post(
            "/v1/VerifyBatch",
            &env.token("CB.XTS.0001"),
            &json!([item("a", "x")]),
        ),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.json);
    assert_eq!(refused.json["reason"], "BULK_NOT_ALLOWED");
}

#[tokio::test]
async fn bodies_that_are_not_json_too_large_or_of_another_type_are_refused_and_recorded() {
    let mut env = http_env(&[("HTTP_MAX_BODY_BYTES", "2048")]).await;
    let unit = env.unit_cert("ha-tinh");
    let token = env.token("CB.H42.0001");
    let malformed = send(
        &env,
        Some(&unit),
        false,
        post(
            "/v1/LookupCitizen",
            Some(&token),
            "application/json",
            br#"{"context": "#.to_vec(),
        ),
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json["reason"], "INVALID_JSON");
    assert!(
        malformed.json["detail"].as_str().unwrap().contains("EOF"),
        "{}",
        malformed.json
    );
    let unknown = send(
        &env,
        Some(&unit),
        true,
        json_post(
            "/v1/LookupCitizen",
            &token,
            &json!({"personalID": "042188999005"}),
        ),
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json["detail"]
            .as_str()
            .unwrap()
            .contains("personalID"),
        "{}",
        unknown.json
    );
    let form = send(
        &env,
        Some(&unit),
        false,
        post(
            "/v1/LookupCitizen",
            Some(&token),
            "application/x-www-form-urlencoded",
            b"a=1".to_vec(),
        ),
    )
    .await;
    assert_eq!(form.status, 415);
    assert_eq!(form.json["reason"], "INVALID_JSON");
    // One byte over the limit.
    let mut big = json!({"context": context("1.004222"), "personalId": "042188999005"}).to_string();
    big.push_str(&" ".repeat(2049 - big.len()));
    assert_eq!(big.len(), 2049);
    let large = send(
        &env,
        Some(&unit),
        true,
        post(
            "/v1/LookupCitizen",
            Some(&token),
            "application/json",
            big.into_bytes(),
        ),
    )
    .await;
    assert_eq!(large.status, 413, "{}", large.json);
    assert_eq!(large.json["reason"], "MESSAGE_TOO_LARGE");
    env.shutdown().await;
    let recorded: Vec<_> = records(&env)
        .into_iter()
        .filter(|r| r.entry.method.ends_with("(HTTP/JSON)"))
        .map(|r| r.entry.outcome_reason)
        .collect();
    assert_eq!(
        recorded,
        [
            "INVALID_JSON",
            "INVALID_JSON",
            "INVALID_JSON",
            "MESSAGE_TOO_LARGE"
        ]
    );
}

#[tokio::test]
async fn the_openapi_document_is_served_and_other_paths_say_what_exists() {
    let env = http_env(&[]).await;
    let get = |path: &str| {
        http::Request::builder()
            .method("GET")
            .uri(format!("https://localhost{path}"))
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let doc = send(&env, None, false, get("/openapi.json")).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json["openapi"], "3.1.0");
    assert!(doc.json["paths"]["/v1/VerifyBatch"]["post"].is_object());
    let missing = send(&env, None, true, get("/v1/DeleteCitizen")).await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.json["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/LookupCitizen")
    );
    let wrong_method = send(&env, None, false, get("/v1/LookupCitizen")).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), "POST");
}
