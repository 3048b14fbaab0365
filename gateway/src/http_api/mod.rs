//! The HTTP/JSON API: the operations of `lienthong.gateway.v1.CitizenGateway` as
//! `POST /v1/<Operation>` with JSON bodies in the protobuf JSON mapping, on a listener of its
//! own (HTTP/1.1 and HTTP/2, mutual TLS). Each call is transcoded into the gRPC call and sent
//! through the same pipeline in process — door, identity, token, limits, policy, audit — so
//! it is authorised, limited and recorded exactly as the gRPC call is. Refusals are RFC 9457
//! problem documents; the audit receipt is in the response headers. `GET /openapi.json` is the
//! API's OpenAPI 3.1 document, generated from the contract.

pub mod openapi;
pub mod transcode;

use crate::audit::log::Receipt as LogReceipt;
use crate::pipeline::audit::{Auditor, Call};
use crate::pipeline::door::Door;
use crate::pipeline::rescue::Refusal;
use crate::tls::{PeerInfo, TlsConn};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::transport::server::Connected;
use tower::ServiceExt;
use transcode::{BATCH, OPERATIONS, Problem, Receipt, SERVICE};

/// What the API needs besides the pipeline.
#[derive(Clone)]
pub struct Settings {
    /// The largest request body, in bytes (a VerifyBatch array is one body).
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers (HTTP/1.1).
    pub header_timeout: Duration,
}

/// The API's state, shared by every connection.
#[derive(Clone)]
pub struct HttpApi<S> {
    /// The gateway's gRPC service behind the pipeline's layers.
    grpc: S,
    door: Door,
    auditor: Auditor,
    settings: Settings,
    openapi: Bytes,
}

/// The gRPC service the API calls: the pipeline and the gateway, in process.
pub trait Grpc:
    tower::Service<
        Request<tonic::body::Body>,
        Response = Response<tonic::body::Body>,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Grpc for S where
    S: tower::Service<
            Request<tonic::body::Body>,
            Response = Response<tonic::body::Body>,
            Error = Infallible,
            Future: Send,
        > + Clone
        + Send
        + 'static
{
}

type Reply = Response<Full<Bytes>>;

impl<S: Grpc> HttpApi<S> {
    pub fn new(grpc: S, door: Door, auditor: Auditor, settings: Settings) -> Self {
        Self {
            grpc,
            door,
            auditor,
            settings,
            openapi: Bytes::from(openapi::document().to_string()),
        }
    }

    /// Serves the connections of `incoming` until `stop` resolves, then lets the requests in
    /// progress finish (at most `grace`).
    pub async fn serve(
        self,
        mut incoming: impl tokio_stream::Stream<Item = Result<TlsConn, std::io::Error>> + Unpin,
        stop: impl std::future::Future<Output = ()>,
        grace: Duration,
    ) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.settings.header_timeout)
            .max_buf_size(64 * 1024);
        builder.http2().max_header_list_size(16 * 1024);
        tokio::pin!(stop);
        loop {
            let conn = tokio::select! {
                () = &mut stop => break,
                conn = incoming.next() => match conn {
                    Some(Ok(conn)) => conn,
                    Some(Err(_)) => continue,
                    None => break,
                },
            };
            let peer = conn.connect_info();
            let api = self.clone();
            let service = hyper::service::service_fn(move |req| {
                let api = api.clone();
                let peer = peer.clone();
                async move { Ok::<_, Infallible>(api.handle(req, peer).await) }
            });
            let connection = builder.serve_connection(TokioIo::new(conn), service);
            let connection = graceful.watch(connection.into_owned());
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
        let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
    }

    async fn handle(self, req: Request<hyper::body::Incoming>, peer: PeerInfo) -> Reply {
        let path = req.uri().path().to_owned();
        if path == "/openapi.json" {
            return match *req.method() {
                Method::GET | Method::HEAD => Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(self.openapi.clone()))
                    .unwrap_or_default(),
                _ => plain_problem(405, "METHOD_NOT_ALLOWED", "use GET", Some("GET")),
            };
        }
        let Some(operation) = path
            .strip_prefix("/v1/")
            .and_then(|op| OPERATIONS.iter().find(|o| **o == op))
            .copied()
        else {
            return plain_problem(
                404,
                "NOT_FOUND",
                "no such operation: the operations are POST /v1/LookupCitizen, /v1/VerifyCitizen, /v1/AutofillForm, /v1/GetHousehold, /v1/VerifyBatch and /v1/ListProcedures (see GET /openapi.json)",
                None,
            );
        };
        if req.method() != Method::POST {
            return plain_problem(
                405,
                "METHOD_NOT_ALLOWED",
                &format!("use POST /v1/{operation} with a JSON body"),
                Some("POST"),
            );
        }
        let (parts, body) = req.into_parts();
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            let refusal = Refusal::BadJson(
                "the body must be JSON: send `content-type: application/json`".into(),
            );
            return self.refuse_at_door(operation, &peer, refusal, 415).await;
        }
        let limit = self.settings.max_body_bytes;
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                let refusal = Refusal::MessageTooLarge { limit };
                return self.refuse_at_door(operation, &peer, refusal, 413).await;
            }
            Err(_) => {
                let refusal = Refusal::BadJson("the body could not be read".into());
                return self.refuse_at_door(operation, &peer, refusal, 400).await;
            }
        };
        let frames = match transcode::request_body(operation, &bytes) {
            Ok(frames) => frames,
            Err(why) => {
                return self
                    .refuse_at_door(operation, &peer, Refusal::BadJson(why), 400)
                    .await;
            }
        };
        self.call(operation, &parts.headers, peer, frames).await
    }

    /// The gRPC call through the pipeline, and its reply as JSON or a problem.
    async fn call(
        self,
        operation: &str,
        headers: &http::HeaderMap,
        peer: PeerInfo,
        frames: Bytes,
    ) -> Reply {
        let mut grpc_req = Request::builder()
            .method(Method::POST)
            .uri(format!("/{SERVICE}/{operation}"))
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers");
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            grpc_req = grpc_req.header(header::AUTHORIZATION, auth.clone());
        }
        let Ok(mut grpc_req) = grpc_req.body(tonic::body::Body::new(Full::new(frames))) else {
            return plain_problem(500, "INTERNAL", "the request could not be transcoded", None);
        };
        grpc_req.extensions_mut().insert(peer);
        let Ok(reply) = self.grpc.oneshot(grpc_req).await;
        let (parts, body) = reply.into_parts();
        let collected = match body.collect().await {
            Ok(c) => c,
            Err(e) => {
                let status =
                    tonic::Status::unavailable(format!("the reply was cut off: {e}; try again"));
                return problem_reply(Problem::from_status(&status), None);
            }
        };
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let data = collected.to_bytes();
        // A refusal without a body puts its status in the headers ("trailers only").
        let status = tonic::Status::from_header_map(&trailers)
            .or_else(|| tonic::Status::from_header_map(&parts.headers));
        let receipt =
            Receipt::from_trailers(&trailers).or_else(|| Receipt::from_trailers(&parts.headers));
        match status {
            Some(status) if status.code() != tonic::Code::Ok => {
                let mut problem = Problem::from_status(&status);
                problem.audit = receipt.clone();
                if operation == BATCH && !data.is_empty() {
                    problem.results = transcode::reply_json(operation, &data).ok();
                }
                problem_reply(problem, receipt.as_ref())
            }
            _ => match transcode::reply_json(operation, &data) {
                Ok(json) => {
                    let mut reply = Response::builder()
                        .status(StatusCode::OK)
                        .header(header::CONTENT_TYPE, "application/json");
                    if let Some(r) = &receipt {
                        reply = with_receipt(reply, r);
                    }
                    reply
                        .body(Full::new(Bytes::from(json.to_string())))
                        .unwrap_or_default()
                }
                Err(e) => {
                    tracing::error!(error = %e, operation, "a gateway reply could not be transcoded");
                    let status = tonic::Status::internal(
                        "the reply could not be written as JSON; the call was recorded",
                    );
                    let mut problem = Problem::from_status(&status);
                    problem.audit = receipt.clone();
                    problem_reply(problem, receipt.as_ref())
                }
            },
        }
    }

    /// A request refused before it could become a gRPC call (not JSON, too large): recorded
    /// at the door like any refusal before an officer is established (a few per peer and
    /// window, the rest counted in the door's summary records).
    async fn refuse_at_door(
        self,
        operation: &str,
        peer: &PeerInfo,
        refusal: Refusal,
        http: u16,
    ) -> Reply {
        let time_us = crate::audit::log::timestamp_us();
        let ip = peer
            .remote
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let status = refusal.to_status();
        let mut problem = Problem::from_status(&status);
        problem.status = http;
        let mut receipt = None;
        if self.door.admit(ip, &refusal, "", time_us) {
            let code = refusal.code() as i32;
            let facts = crate::pipeline::Facts {
                refusal: Some(refusal),
                ..Default::default()
            };
            let peer = peer.remote.map(|p| p.to_string()).unwrap_or_default();
            let method = format!("/{SERVICE}/{operation} (HTTP/JSON)");
            let entry = self.auditor.entry(
                &facts,
                &Call {
                    method: &method,
                    peer: &peer,
                    time_us,
                    latency_us: 0,
                    code,
                },
            );
            match self.auditor.log.append(entry).await {
                Ok(r) => receipt = Some(receipt_of(&r)),
                Err(_) => {
                    let status = tonic::Status::unavailable(
                        "the audit trail cannot be written, so nothing is served; try again later",
                    );
                    return problem_reply(Problem::from_status(&status), None);
                }
            }
        }
        problem.audit = receipt.clone();
        problem_reply(problem, receipt.as_ref())
    }
}

fn receipt_of(r: &LogReceipt) -> Receipt {
    Receipt {
        chain: r.chain_id.to_string(),
        sequence: r.sequence.to_string(),
        hash: crate::audit::record::hex(&r.hash),
    }
}

fn with_receipt(reply: http::response::Builder, r: &Receipt) -> http::response::Builder {
    reply
        .header("x-audit-chain", &r.chain)
        .header("x-audit-sequence", &r.sequence)
        .header("x-audit-hash", &r.hash)
}

/// A problem document as the reply, with its receipt and retry headers.
fn problem_reply(problem: Problem, receipt: Option<&Receipt>) -> Reply {
    let mut reply = Response::builder()
        .status(problem.status)
        .header(header::CONTENT_TYPE, "application/problem+json");
    if let Some(ms) = problem.retry_after_ms {
        reply = reply.header(header::RETRY_AFTER, ms.div_ceil(1000).max(1));
    }
    if problem.status == 401 {
        reply = reply.header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(r) = receipt {
        reply = with_receipt(reply, r);
    }
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    reply.body(Full::new(Bytes::from(body))).unwrap_or_default()
}

/// A problem about the HTTP request itself (path, method), which reaches no operation.
fn plain_problem(status: u16, title: &str, detail: &str, allow: Option<&str>) -> Reply {
    let problem = serde_json::json!({
        "type": format!("urn:lienthong:problem:{title}"),
        "title": title,
        "status": status,
        "detail": detail,
    });
    let mut reply = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/problem+json");
    if let Some(allow) = allow {
        reply = reply.header(header::ALLOW, allow);
    }
    reply
        .body(Full::new(Bytes::from(problem.to_string())))
        .unwrap_or_default()
}

/// The TLS settings of the API's listener: the gateway's, offering HTTP/2 and HTTP/1.1.
pub fn tls_config(grpc: &Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    let mut tls = (**grpc).clone();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(tls)
}
