//! Step 0, outermost: the audit record of every request. The layer puts an [`AuditSlot`] in the
//! request; every later step writes what it learnt into it (the unit, the officer, the procedure,
//! the citizen, the fields disclosed, the refusal). When the reply is ready the layer appends
//! the record and waits until it is on disk; only then is the reply released, with the receipt
//! (`x-audit-chain`, `x-audit-sequence`, `x-audit-hash`) in its trailers. If the record cannot be
//! written, the reply is replaced by UNAVAILABLE: no data leaves unaudited.

use super::Pseudonyms;
use super::log::{AuditLog, Receipt, timestamp_us};
use super::record::{Entry, hex};
use crate::pipeline::identity::peer_addr;
use crate::pipeline::is_open;
use crate::pipeline::rescue::Refusal;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame};
use lienthong_domain::{OldIdNumber, PersonalId};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// The citizen a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Personal(PersonalId),
    Old(OldIdNumber),
}

/// What the pipeline learnt about a request, for its record.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub unit_code: String,
    pub cert_fingerprint: String,
    pub officer_code: String,
    pub roles: Vec<String>,
    pub request_id: String,
    pub procedure_code: String,
    pub dossier_id: String,
    pub purpose: String,
    pub subject: Option<Subject>,
    pub fields: Vec<String>,
    pub refusal: Option<Refusal>,
}

/// The shared place a request's facts are written to.
#[derive(Debug, Clone, Default)]
pub struct AuditSlot(Arc<Mutex<Facts>>);

impl AuditSlot {
    /// Updates the facts.
    pub fn note(&self, f: impl FnOnce(&mut Facts)) {
        if let Ok(mut facts) = self.0.lock() {
            f(&mut facts);
        }
    }

    pub fn facts(&self) -> Facts {
        self.0.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

/// Notes facts in the slot of a request, if it has one.
pub fn note(extensions: &http::Extensions, f: impl FnOnce(&mut Facts)) {
    if let Some(slot) = extensions.get::<AuditSlot>() {
        slot.note(f);
    }
}

/// How a call ended, as the layer or a handler saw it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: &'a str,
    pub peer: &'a str,
    pub time_us: i64,
    pub latency_us: u64,
    /// gRPC status code; 0 for OK.
    pub code: i32,
}

/// Writes records; shared by the layer, the batch handler and the audit service.
#[derive(Clone)]
pub struct Auditor {
    pub log: AuditLog,
    pub pseudonyms: Pseudonyms,
}

impl Auditor {
    /// The record's entry from what was learnt and how the request ended.
    pub fn entry(&self, facts: &Facts, call: &Call<'_>) -> Entry {
        let Call {
            method,
            peer,
            time_us,
            latency_us,
            code,
        } = *call;
        let (pseudonym, masked) = match &facts.subject {
            Some(Subject::Personal(p)) => (self.pseudonyms.of(p), p.masked()),
            Some(Subject::Old(o)) => (self.pseudonyms.of_old(o), o.masked()),
            None => (String::new(), String::new()),
        };
        let (reason, message) = match &facts.refusal {
            Some(r) => (r.reason().to_owned(), r.messages().0),
            None => (String::new(), String::new()),
        };
        Entry {
            time_us,
            request_id: facts.request_id.clone(),
            unit_code: facts.unit_code.clone(),
            cert_fingerprint: facts.cert_fingerprint.clone(),
            peer_address: peer.to_owned(),
            officer_code: facts.officer_code.clone(),
            roles: facts.roles.clone(),
            method: method.to_owned(),
            procedure_code: facts.procedure_code.clone(),
            dossier_id: facts.dossier_id.clone(),
            purpose: facts.purpose.clone(),
            citizen_pseudonym: pseudonym,
            citizen_masked_id: masked,
            fields_disclosed: if code == 0 {
                facts.fields.clone()
            } else {
                Vec::new()
            },
            outcome_code: code,
            outcome_reason: reason,
            outcome_message: message,
            latency_us,
        }
    }
}

/// The receipt as metadata.
pub fn receipt_headers(r: &Receipt, into: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&r.chain_id) {
        into.insert("x-audit-chain", v);
    }
    into.insert("x-audit-sequence", HeaderValue::from(r.sequence));
    if let Ok(v) = HeaderValue::from_str(&hex(&r.hash)) {
        into.insert("x-audit-hash", v);
    }
}

/// The audit layer.
#[derive(Clone)]
pub struct AuditLayer {
    auditor: Auditor,
}

impl AuditLayer {
    pub fn new(auditor: Auditor) -> Self {
        Self { auditor }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditedService {
            inner,
            auditor: self.auditor.clone(),
        }
    }
}

/// The service the audit layer wraps around the pipeline.
#[derive(Clone)]
pub struct AuditedService<S> {
    inner: S,
    auditor: Auditor,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for AuditedService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if is_open(req.uri().path()) {
            return Box::pin(self.inner.call(req));
        }
        let started = Instant::now();
        let time_us = timestamp_us();
        let method = req.uri().path().to_owned();
        let peer = peer_addr(req.extensions())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let slot = AuditSlot::default();
        req.extensions_mut().insert(slot.clone());
        let auditor = self.auditor.clone();
        let response = self.inner.call(req);
        Box::pin(async move {
            let mut response = response.await?;
            let mut facts = slot.facts();
            let headers = response.headers();
            let code = headers
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .unwrap_or(0);
            // A refusal from tonic itself (a message over the size limit, a malformed frame):
            // recorded as such, and given the gateway's details unless it has some.
            if code != 0 && facts.refusal.is_none() {
                let message = headers
                    .get("grpc-message")
                    .and_then(|v| v.to_str().ok())
                    .map(percent_decode)
                    .unwrap_or_default();
                let has_details = headers.contains_key("grpc-status-details-bin");
                let refusal = Refusal::Transport {
                    code: tonic::Code::from_i32(code),
                    message,
                };
                if !has_details {
                    response = refusal.to_status().into_http();
                }
                facts.refusal = Some(refusal);
            }
            let latency = started.elapsed().as_micros() as u64;
            let entry = auditor.entry(
                &facts,
                &Call {
                    method: &method,
                    peer: &peer,
                    time_us,
                    latency_us: latency,
                    code,
                },
            );
            match auditor.log.append(entry).await {
                Ok(receipt) if code != 0 => {
                    // Trailers-only reply: the status is in the headers, so is the receipt.
                    receipt_headers(&receipt, response.headers_mut());
                    Ok(response)
                }
                Ok(receipt) => Ok(response.map(|body| {
                    tonic::body::Body::new(ReceiptBody {
                        inner: body,
                        receipt: Some(receipt),
                    })
                })),
                Err(e) => {
                    tracing::error!(error = %e, "request refused: its audit record cannot be written");
                    Ok(Refusal::AuditUnavailable.to_status().into_http())
                }
            }
        })
    }
}

/// grpc-message is percent-encoded on the wire.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let (b'%', Some(Ok(b))) = (bytes[i], hex.map(|h| u8::from_str_radix(h, 16))) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A reply body that adds the audit receipt to its trailers.
struct ReceiptBody<B> {
    inner: B,
    receipt: Option<Receipt>,
}

impl<B> Body for ReceiptBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                let mut trailers = frame.into_trailers().unwrap_or_default();
                if let Some(r) = this.receipt.take() {
                    receipt_headers(&r, &mut trailers);
                }
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
