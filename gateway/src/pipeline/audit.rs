//! Step 0, outermost: the audit record of every request. The layer puts an [`AuditSlot`] in the
//! request; every later step writes what it learnt into it (the unit, the officer, the procedure,
//! the citizen, the fields disclosed, the refusal). When the reply is ready the layer appends
//! the record and waits until it is on disk; only then is the reply released, with the receipt
//! (`x-audit-chain`, `x-audit-sequence`, `x-audit-hash`) in its trailers. If the record cannot be
//! written, the reply is replaced by UNAVAILABLE: no data leaves unaudited.
//!
//! Whatever ends a call, its record is written: a call dropped before its reply (the client's
//! deadline, a reset stream) leaves a record from its guard, and a call cut by the shutdown
//! grace period is recorded by [`InFlight::abandon_all`] before the trail closes. Refusals made
//! before an officer is established (no certificate, a bad token…) go through the [`Door`]:
//! a few records per peer and reason in each window, then one summary record with the count.

use super::door::Door;
use super::identity::peer_addr;
use super::is_open;
use super::rescue::{CallEnd, Refusal};
use crate::audit::Pseudonyms;
use crate::audit::log::{AuditLog, Receipt, timestamp_us};
use crate::audit::record::{Entry, bound_str, hex};
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame};
use lienthong_domain::{OldIdNumber, PersonalId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
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
    pub metrics: Arc<crate::metrics::Metrics>,
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

impl Auditor {
    /// Appends a request's record, waits until it is on disk, and leaves the request's log line.
    pub async fn record(&self, entry: Entry) -> Result<Receipt, crate::audit::AuditError> {
        // The line is built only when it will be written (the log keeps request lines).
        let line =
            tracing::enabled!(target: lienthong_telemetry::REQUEST_TARGET, tracing::Level::INFO)
                .then(|| RequestLine::of(&entry));
        let started = Instant::now();
        let result = tracing::Instrument::instrument(
            self.log.append(entry),
            tracing::debug_span!(target: lienthong_telemetry::TRACE_TARGET, "audit_append"),
        )
        .await;
        self.metrics
            .stages
            .observe("audit_append", started.elapsed());
        if let Some(line) = line {
            line.emit(result.as_ref().ok().map(|r| r.sequence));
        }
        result
    }

    /// Appends a request's record without waiting (a call that ended with nobody to answer),
    /// and leaves its log line (without a sequence, which is not known yet).
    pub fn record_detached(&self, entry: Entry) {
        self.metrics.request(&entry, None);
        RequestLine::of(&entry).emit(None);
        self.log.append_detached(entry);
    }
}

/// The one log line a request leaves, at info on the target
/// [`lienthong_telemetry::REQUEST_TARGET`]: who asked, for what, how it ended and where its
/// record is. Its values come from the bounded record (no citizen at all: neither the
/// pseudonym nor the masked ID), and every run of nine or more digits in them is masked, so
/// that no personal ID reaches a log whatever field a caller put it in.
struct RequestLine {
    request_id: String,
    method: String,
    unit: String,
    officer: String,
    procedure: String,
    dossier: String,
    code: i32,
    reason: String,
    duration_ms: f64,
}

impl RequestLine {
    /// Each value bounded as in the record, then masked.
    fn of(e: &Entry) -> Self {
        let v = |s: &str| mask_digits(&bound_str(s, crate::audit::record::bounds::STR));
        Self {
            request_id: v(&e.request_id),
            method: v(&e.method),
            unit: v(&e.unit_code),
            officer: v(&e.officer_code),
            procedure: v(&e.procedure_code),
            dossier: v(&e.dossier_id),
            code: e.outcome_code,
            reason: v(&e.outcome_reason),
            duration_ms: e.latency_us as f64 / 1000.0,
        }
    }

    fn emit(&self, audit_sequence: Option<u64>) {
        tracing::info!(
            target: lienthong_telemetry::REQUEST_TARGET,
            request_id = %self.request_id,
            method = %self.method,
            unit = %self.unit,
            officer = %self.officer,
            procedure = %self.procedure,
            dossier = %self.dossier,
            outcome = if self.code == 0 { "served" } else { "refused" },
            code = ?tonic::Code::from_i32(self.code),
            reason = %self.reason,
            duration_ms = self.duration_ms,
            audit_sequence,
            "request"
        );
    }
}

/// `s` with every run of nine or more ASCII digits cut to its first and last three, the rest
/// replaced by `•`: the length of an old ID number (9) or a personal ID (12) never survives.
pub fn mask_digits(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if run >= 9 {
            out.push_str(&s[i..i + 3]);
            out.extend(std::iter::repeat_n('•', run - 6));
            out.push_str(&s[i + run - 3..i + run]);
            i += run;
        } else if run > 0 {
            out.push_str(&s[i..i + run]);
            i += run;
        } else {
            let ch = s[i..].chars().next().unwrap_or('?');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
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

/// The methods this gateway serves (read from the contract's descriptors); any other path is
/// recorded as `(unknown path)`, never verbatim.
static KNOWN_METHODS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    use prost::Message;
    let Ok(set) = prost_types::FileDescriptorSet::decode(lienthong_proto::FILE_DESCRIPTOR_SET)
    else {
        return Vec::new();
    };
    set.file
        .iter()
        .filter(|f| matches!(f.package(), "lienthong.gateway.v1" | "lienthong.audit.v1"))
        .flat_map(|f| {
            f.service.iter().flat_map(move |s| {
                s.method
                    .iter()
                    .map(move |m| format!("/{}.{}/{}", f.package(), s.name(), m.name()))
            })
        })
        .collect()
});

/// The method as recorded: a known method's path, or `(unknown path)`.
pub fn recorded_method(path: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|m| m.as_str() == path)
        .map(String::as_str)
        .unwrap_or("(unknown path)")
}

/// A call that has started and not yet been recorded.
struct Pending {
    slot: AuditSlot,
    method: &'static str,
    peer: String,
    time_us: i64,
    started: Instant,
    /// The client's deadline (grpc-timeout), if it sent one.
    deadline: Option<Duration>,
}

impl Pending {
    /// The record of a call that ended without a reply, for `refusal`.
    fn ended(self, auditor: &Auditor, refusal: Refusal) -> Entry {
        let mut facts = self.slot.facts();
        let code = refusal.code() as i32;
        facts.refusal = Some(refusal);
        auditor.entry(
            &facts,
            &Call {
                method: self.method,
                peer: &self.peer,
                time_us: self.time_us,
                latency_us: self.started.elapsed().as_micros() as u64,
                code,
            },
        )
    }
}

/// The calls in flight, so that every one of them is recorded whatever ends it.
#[derive(Clone, Default)]
pub struct InFlight {
    calls: Arc<Mutex<HashMap<u64, Pending>>>,
    next: Arc<AtomicU64>,
    /// How many there are, for the metrics.
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl InFlight {
    /// Calls in flight counted on `gauge`.
    pub fn counted(gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        Self {
            gauge,
            ..Self::default()
        }
    }

    fn start(&self, pending: Pending) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut calls) = self.calls.lock() {
            calls.insert(id, pending);
            self.gauge.inc();
        }
        id
    }

    fn take(&self, id: u64) -> Option<Pending> {
        let taken = self.calls.lock().ok().and_then(|mut c| c.remove(&id));
        if taken.is_some() {
            self.gauge.dec();
        }
        taken
    }

    /// Records every call still in flight as cut by the shutdown (UNAVAILABLE,
    /// `SHUTTING_DOWN`); their replies, if they come later, find the trail closed and release
    /// nothing. Returns how many were recorded.
    pub fn abandon_all(&self, auditor: &Auditor) -> usize {
        let pending: Vec<Pending> = match self.calls.lock() {
            Ok(mut c) => c.drain().map(|(_, p)| p).collect(),
            Err(_) => return 0,
        };
        let n = pending.len();
        self.gauge.dec_by(n as i64);
        for p in pending {
            auditor.record_detached(p.ended(auditor, Refusal::ShuttingDown { answered: 0 }));
        }
        n
    }
}

/// Records a call that is dropped before the layer recorded it.
struct Guard {
    id: u64,
    inflight: InFlight,
    auditor: Auditor,
    /// The gateway's own request timeout (`transport.request_timeout_ms`).
    request_timeout: Duration,
}

impl Guard {
    /// The call reached its reply: the layer records it. None when the shutdown already did.
    fn finish(&self) -> Option<Pending> {
        self.inflight.take(self.id)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.inflight.take(self.id) {
            let passed = |d: Duration| p.started.elapsed() + Duration::from_millis(5) >= d;
            let by = if p.deadline.is_some_and(passed) {
                CallEnd::ClientDeadline
            } else if passed(self.request_timeout) {
                CallEnd::RequestTimeout
            } else {
                CallEnd::ClientCancelled
            };
            let refusal = Refusal::CallAbandoned { by };
            self.auditor
                .record_detached(p.ended(&self.auditor, refusal));
        }
    }
}

/// Parses a `grpc-timeout` header value (`<digits><H|M|S|m|u|n>`).
fn grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The audit layer.
#[derive(Clone)]
pub struct AuditLayer {
    auditor: Auditor,
    inflight: InFlight,
    door: Door,
    /// The largest request accepted, named when one is refused for its size.
    max_message_bytes: usize,
    request_timeout: Duration,
}

impl AuditLayer {
    pub fn new(
        auditor: Auditor,
        inflight: InFlight,
        door: Door,
        max_message_bytes: usize,
        request_timeout: Duration,
    ) -> Self {
        Self {
            auditor,
            inflight,
            door,
            max_message_bytes,
            request_timeout,
        }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditedService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service the audit layer wraps around the pipeline.
#[derive(Clone)]
pub struct AuditedService<S> {
    inner: S,
    layer: AuditLayer,
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
        let slot = AuditSlot::default();
        req.extensions_mut().insert(slot.clone());
        let peer = peer_addr(req.extensions());
        let pending = Pending {
            slot: slot.clone(),
            method: recorded_method(req.uri().path()),
            peer: peer.map(|a| a.to_string()).unwrap_or_default(),
            time_us: timestamp_us(),
            started: Instant::now(),
            deadline: req
                .headers()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(grpc_timeout),
        };
        let layer = self.layer.clone();
        // The request's span (exported when traces are on): every step's span is its child.
        let span = tracing::debug_span!(
            target: lienthong_telemetry::TRACE_TARGET,
            "request",
            otel.name = pending.method,
            rpc.system = "grpc",
            rpc.method = pending.method,
            rpc.grpc.status_code = tracing::field::Empty,
            lienthong.unit = tracing::field::Empty,
            lienthong.procedure = tracing::field::Empty,
            lienthong.audit_sequence = tracing::field::Empty,
        );
        let guard = Guard {
            id: layer.inflight.start(pending),
            inflight: layer.inflight.clone(),
            auditor: layer.auditor.clone(),
            request_timeout: layer.request_timeout,
        };
        let response = span.in_scope(|| self.inner.call(req));
        let in_span = span.clone();
        Box::pin(tracing::Instrument::instrument(
            async move {
                let span = in_span;
                let mut response = response.await?;
                let Some(pending) = guard.finish() else {
                    // Recorded already, as cut by the shutdown: nothing leaves.
                    return Ok(Refusal::ShuttingDown { answered: 0 }
                        .to_status()
                        .into_http());
                };
                let mut facts = slot.facts();
                let headers = response.headers();
                let mut code = headers
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(0);
                // A refusal from tonic itself (a message over the size limit, a malformed frame):
                // recorded as such, and given the gateway's code and details.
                if code != 0 && facts.refusal.is_none() {
                    let message = headers
                        .get("grpc-message")
                        .and_then(|v| v.to_str().ok())
                        .map(percent_decode)
                        .unwrap_or_default();
                    let refusal = Refusal::from_transport(
                        tonic::Code::from_i32(code),
                        &message,
                        layer.max_message_bytes,
                    );
                    code = refusal.code() as i32;
                    response = refusal.to_status().into_http();
                    facts.refusal = Some(refusal);
                }
                let auditor = &layer.auditor;
                let entry = auditor.entry(
                    &facts,
                    &Call {
                        method: pending.method,
                        peer: &pending.peer,
                        time_us: pending.time_us,
                        latency_us: pending.started.elapsed().as_micros() as u64,
                        code,
                    },
                );
                auditor.metrics.request(&entry, facts.refusal.as_ref());
                // Refused before anyone was established: counted at the door, recorded only up to
                // its bound per peer and window.
                if facts.officer_code.is_empty()
                    && let (Some(refusal), Some(peer)) = (&facts.refusal, peer)
                    && !layer
                        .door
                        .admit(peer.ip(), refusal, &facts.unit_code, entry.time_us)
                {
                    return Ok(response);
                }
                span.record("rpc.grpc.status_code", code);
                span.record("lienthong.unit", entry.unit_code.as_str());
                span.record("lienthong.procedure", entry.procedure_code.as_str());
                let recorded = auditor.record(entry).await;
                if let Ok(r) = &recorded {
                    // As a signed integer, which trace backends take as a number.
                    span.record(
                        "lienthong.audit_sequence",
                        i64::try_from(r.sequence).unwrap_or(i64::MAX),
                    );
                }
                match recorded {
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
                        tracing::error!(error = %e, request_id = %mask_digits(&facts.request_id), "request refused: its audit record cannot be written");
                        Ok(Refusal::AuditUnavailable.to_status().into_http())
                    }
                }
            },
            span,
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_digit_runs_are_masked_wherever_they_are() {
        assert_eq!(mask_digits("D-042188999005"), "D-042••••••005");
        assert_eq!(mask_digits("123456789"), "123•••789");
        assert_eq!(
            mask_digits("12345678 and 1.004222"),
            "12345678 and 1.004222"
        );
        assert_eq!(
            mask_digits("Hồ sơ 001234567890/HS và 987654321"),
            "Hồ sơ 001••••••890/HS và 987•••321"
        );
        assert_eq!(mask_digits(""), "");
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(grpc_timeout("500m"), Some(Duration::from_millis(500)));
        assert_eq!(grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(grpc_timeout("m"), None);
        assert_eq!(grpc_timeout("123456789m"), None);
        assert_eq!(grpc_timeout("5x"), None);
        assert_eq!(grpc_timeout(""), None);
    }

    #[test]
    fn unknown_paths_are_never_recorded_verbatim() {
        assert_eq!(
            recorded_method("/lienthong.gateway.v1.CitizenGateway/LookupCitizen"),
            "/lienthong.gateway.v1.CitizenGateway/LookupCitizen"
        );
        assert_eq!(recorded_method(&"/x".repeat(5000)), "(unknown path)");
        assert_eq!(
            recorded_method("/lienthong.gateway.v1.CitizenGateway/LookupCitizenX"),
            "(unknown path)"
        );
        assert_eq!(KNOWN_METHODS.len(), 16, "{:?}", *KNOWN_METHODS);
        assert!(KNOWN_METHODS.contains(&"/lienthong.audit.v1.AuditService/ListCheckpoints".into()));
    }
}
