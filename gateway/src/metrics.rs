//! The gateway's Prometheus metrics: the families it keeps, where each is fed from, and the
//! admin listener that serves them (`GET /metrics`, OpenMetrics text, on `admin_listen`).
//!
//! Every label set is bounded: units and procedures are those of the configuration and the
//! catalog (anything else is `other`), methods those of the contract, codes the gRPC ones,
//! reasons the gateway's own refusal reasons.

use crate::audit::record::Entry;
use crate::pipeline::rescue::Refusal;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub rpc: String,
    pub code: String,
    pub reason: String,
    pub unit: String,
    pub procedure: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabel {
    pub rpc: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Latency buckets from 0.25 ms to about 16 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 17))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: &'static str,
}

/// The time each step of the pipeline takes (`lienthong_stage_duration_seconds{stage}`):
/// `door`, `identity`, `authn`, `limits` and `audit_append` (from handing a record to the
/// writer to its receipt, the fsync included). Unregistered until the app registers its own.
#[derive(Clone)]
pub struct StageTimes(Family<StageLabel, Histogram>);

impl Default for StageTimes {
    fn default() -> Self {
        Self(Family::new_with_constructor(
            fine_latency as fn() -> Histogram,
        ))
    }
}

impl StageTimes {
    pub fn observe(&self, stage: &'static str, took: Duration) {
        self.0
            .get_or_create(&StageLabel { stage })
            .observe(took.as_secs_f64());
    }
}

/// Latency buckets from 1 µs to about 16 ms, for steps that take microseconds.
fn fine_latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_001, 2.0, 15))
}

/// What the upstream client reports.
#[derive(Clone)]
pub struct UpstreamMetrics {
    pub duration: Histogram,
    pub errors: Family<CodeLabel, Counter>,
    /// 1 while the breaker refuses calls (open or probing), 0 when closed.
    pub breaker_open: Gauge,
    pub breaker_transitions: Family<StateLabel, Counter>,
}

impl Default for UpstreamMetrics {
    /// Unregistered: reported nowhere until the app registers its own.
    fn default() -> Self {
        Self {
            duration: latency(),
            errors: Family::default(),
            breaker_open: Gauge::default(),
            breaker_transitions: Family::default(),
        }
    }
}

impl UpstreamMetrics {
    fn new() -> Self {
        Self::default()
    }

    pub fn error(&self, code: tonic::Code) {
        self.errors
            .get_or_create(&CodeLabel {
                code: format!("{code:?}"),
            })
            .inc();
    }

    pub fn breaker(&self, to: &str) {
        self.breaker_open.set(i64::from(to != "closed"));
        self.breaker_transitions
            .get_or_create(&StateLabel { state: to.into() })
            .inc();
    }
}

/// What the audit writer reports.
#[derive(Clone)]
pub struct AuditMetrics {
    pub fsync_duration: Histogram,
    pub records_per_fsync: Histogram,
    pub trail_bytes: Gauge<u64, AtomicU64>,
    pub last_checkpoint_sequence: Gauge<u64, AtomicU64>,
    pub last_checkpoint_time: Gauge<u64, AtomicU64>,
}

impl AuditMetrics {
    fn new() -> Self {
        Self {
            fsync_duration: latency(),
            records_per_fsync: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            trail_bytes: Gauge::default(),
            last_checkpoint_sequence: Gauge::default(),
            last_checkpoint_time: Gauge::default(),
        }
    }

    /// One write and fsync of `records` records (and checkpoints) that took `took`, the trail
    /// now `len` bytes long.
    pub fn fsync(&self, records: usize, took: Duration, len: u64) {
        self.fsync_duration.observe(took.as_secs_f64());
        self.records_per_fsync.observe(records as f64);
        self.trail_bytes.set(len);
    }

    pub fn checkpoint(&self, sequence: u64, time_us: i64) {
        self.last_checkpoint_sequence.set(sequence);
        self.last_checkpoint_time
            .set(u64::try_from(time_us / 1_000_000).unwrap_or(0));
    }
}

/// What the fleet's shared rate limiter (Redis) reports.
#[derive(Clone, Default)]
pub struct SharedLimitMetrics {
    /// 1 while Redis answers, 0 while the failure policy decides.
    pub up: Gauge,
    /// Calls to Redis that failed or did not answer in time.
    pub failures: Counter,
    /// Calls decided without Redis, by policy (`fail_open`: the local share; `fail_closed`:
    /// refused).
    pub without_backend: Family<PolicyLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: &'static str,
}

/// What the shipper of the trail to the central store reports.
#[derive(Clone, Default)]
pub struct ShippingMetrics {
    /// Records of this chain the central store holds (the next sequence to ship).
    pub shipped: Gauge<u64, AtomicU64>,
    /// Acknowledged records not yet in the central store.
    pub lag_records: Gauge<u64, AtomicU64>,
    /// Age of the oldest acknowledged record not yet in the central store, 0 when none.
    pub lag_seconds: Gauge<f64, AtomicU64>,
    /// 1 while the central store answers, 0 while the backlog waits.
    pub up: Gauge,
    /// Shipping attempts that failed (the store unreachable or refusing the batch).
    pub failures: Counter,
    /// Records and checkpoints the store refused and kept aside (forged, reordered, conflicting).
    pub refused: Counter,
}

/// Every family, registered once.
pub struct Metrics {
    registry: Registry,
    /// The label values allowed for units and procedures (the configuration's; a reload
    /// replaces them).
    known: RwLock<(HashSet<String>, HashSet<String>)>,
    reloads: Family<ResultLabel, Counter>,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RpcLabel, Histogram>,
    pub in_flight: Gauge,
    rate_limited: Family<RuleLabel, Counter>,
    pub token_cache_hits: Counter,
    pub token_cache_misses: Counter,
    pub tls_handshakes: Counter,
    tls_failures: Family<ReasonLabel, Counter>,
    pub upstream: UpstreamMetrics,
    pub audit: AuditMetrics,
    pub stages: StageTimes,
    pub shared_limits: SharedLimitMetrics,
    pub shipping: ShippingMetrics,
}

impl Metrics {
    /// The families, with the label values allowed for units and procedures.
    pub fn new<'a>(
        units: impl IntoIterator<Item = &'a str>,
        procedures: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut r = Registry::with_prefix("lienthong");
        let requests = Family::<RequestLabels, Counter>::default();
        r.register(
            "requests",
            "Requests that reached the pipeline, by method, gRPC status code, refusal reason, unit and procedure",
            requests.clone(),
        );
        let duration =
            Family::<RpcLabel, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        r.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its record being on disk",
            Unit::Seconds,
            duration.clone(),
        );
        let in_flight = Gauge::default();
        r.register(
            "calls_in_flight",
            "Calls started and not yet recorded",
            in_flight.clone(),
        );
        let rate_limited = Family::<RuleLabel, Counter>::default();
        r.register(
            "rate_limit_refusals",
            "Calls refused by a rate limit, by rule (officer, unit, global, peer, verification, batch)",
            rate_limited.clone(),
        );
        let token_cache_hits = Counter::default();
        r.register(
            "token_cache_hits",
            "Officer tokens found already verified in the cache",
            token_cache_hits.clone(),
        );
        let token_cache_misses = Counter::default();
        r.register(
            "token_cache_misses",
            "Officer tokens verified (not found in the cache)",
            token_cache_misses.clone(),
        );
        let tls_handshakes = Counter::default();
        r.register(
            "tls_handshakes",
            "TLS handshakes completed",
            tls_handshakes.clone(),
        );
        let tls_failures = Family::<ReasonLabel, Counter>::default();
        r.register(
            "tls_handshake_failures",
            "TLS handshakes that failed, by reason",
            tls_failures.clone(),
        );
        let upstream = UpstreamMetrics::new();
        r.register_with_unit(
            "upstream_duration",
            "Time of each call to the population database (each attempt)",
            Unit::Seconds,
            upstream.duration.clone(),
        );
        r.register(
            "upstream_errors",
            "Calls to the population database that failed, by gRPC code (timeouts as DeadlineExceeded)",
            upstream.errors.clone(),
        );
        r.register(
            "breaker_open",
            "1 while the breaker in front of the population database refuses calls",
            upstream.breaker_open.clone(),
        );
        r.register(
            "breaker_transitions",
            "Breaker state changes, by the state entered (open, closed)",
            upstream.breaker_transitions.clone(),
        );
        let audit = AuditMetrics::new();
        r.register_with_unit(
            "audit_fsync_duration",
            "Time of each write and fsync of the audit trail",
            Unit::Seconds,
            audit.fsync_duration.clone(),
        );
        r.register(
            "audit_records_per_fsync",
            "Records made durable by each fsync",
            audit.records_per_fsync.clone(),
        );
        r.register_with_unit(
            "audit_trail",
            "Size of the audit trail file",
            Unit::Bytes,
            audit.trail_bytes.clone(),
        );
        r.register(
            "audit_last_checkpoint_sequence",
            "Sequence covered by the last signed checkpoint",
            audit.last_checkpoint_sequence.clone(),
        );
        r.register_with_unit(
            "audit_last_checkpoint_timestamp",
            "When the last checkpoint was signed (Unix time)",
            Unit::Seconds,
            audit.last_checkpoint_time.clone(),
        );
        let stages = StageTimes::default();
        r.register_with_unit(
            "stage_duration",
            "Time of each pipeline step (door, identity, authn, limits, audit_append)",
            Unit::Seconds,
            stages.0.clone(),
        );
        let shared_limits = SharedLimitMetrics::default();
        r.register(
            "rate_limit_backend_up",
            "1 while the shared rate limiter (Redis) answers, 0 while its failure policy decides",
            shared_limits.up.clone(),
        );
        r.register(
            "rate_limit_backend_failures",
            "Calls to the shared rate limiter that failed or timed out",
            shared_limits.failures.clone(),
        );
        r.register(
            "rate_limit_backend_bypassed",
            "Calls decided without the shared rate limiter, by failure policy",
            shared_limits.without_backend.clone(),
        );
        let shipping = ShippingMetrics::default();
        r.register(
            "audit_shipped_sequence",
            "Records of this chain held by the central audit store",
            shipping.shipped.clone(),
        );
        r.register(
            "audit_ship_lag_records",
            "Acknowledged records not yet in the central audit store",
            shipping.lag_records.clone(),
        );
        r.register_with_unit(
            "audit_ship_lag",
            "Age of the oldest acknowledged record not yet in the central audit store",
            Unit::Seconds,
            shipping.lag_seconds.clone(),
        );
        r.register(
            "audit_central_up",
            "1 while the central audit store answers, 0 while records wait",
            shipping.up.clone(),
        );
        r.register(
            "audit_ship_failures",
            "Shipping attempts to the central audit store that failed",
            shipping.failures.clone(),
        );
        r.register(
            "audit_central_refused",
            "Records and checkpoints the central audit store refused and kept aside",
            shipping.refused.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        r.register(
            "config_reloads",
            "Configuration reloads, by result (applied, refused)",
            reloads.clone(),
        );
        Self {
            registry: r,
            known: RwLock::new((
                units.into_iter().map(str::to_owned).collect(),
                procedures.into_iter().map(str::to_owned).collect(),
            )),
            reloads,
            requests,
            duration,
            in_flight,
            rate_limited,
            token_cache_hits,
            token_cache_misses,
            tls_handshakes,
            tls_failures,
            upstream,
            audit,
            stages,
            shared_limits,
            shipping,
        }
    }

    /// Counts a request by its record (and the refusal, for the rate-limit rules).
    pub fn request(&self, e: &Entry, refusal: Option<&Refusal>) {
        let bounded = |v: &str, known: &HashSet<String>| {
            if v.is_empty() {
                String::new()
            } else if known.contains(v) {
                v.to_owned()
            } else {
                "other".into()
            }
        };
        let rpc = rpc_name(&e.method);
        let labels = {
            let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
            RequestLabels {
                rpc: rpc.clone(),
                code: format!("{:?}", tonic::Code::from_i32(e.outcome_code)),
                reason: refusal.map(Refusal::reason).unwrap_or("").to_owned(),
                unit: bounded(&e.unit_code, &known.0),
                procedure: bounded(&e.procedure_code, &known.1),
            }
        };
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&RpcLabel { rpc })
            .observe(e.latency_us as f64 / 1e6);
        if let Some(Refusal::RateLimited { kind, .. }) = refusal {
            self.rate_limited
                .get_or_create(&RuleLabel {
                    rule: kind.as_str().into(),
                })
                .inc();
        }
    }

    /// A reload's result.
    pub fn reload(&self, applied: bool) {
        self.reloads
            .get_or_create(&ResultLabel {
                result: if applied { "applied" } else { "refused" }.into(),
            })
            .inc();
    }

    /// The units and procedures a reload put in force, as label values from now on.
    pub fn set_known<'a>(
        &self,
        units: impl IntoIterator<Item = &'a str>,
        procedures: impl IntoIterator<Item = &'a str>,
    ) {
        *self.known.write().unwrap_or_else(PoisonError::into_inner) = (
            units.into_iter().map(str::to_owned).collect(),
            procedures.into_iter().map(str::to_owned).collect(),
        );
    }

    pub fn tls_failure(&self, reason: &'static str) {
        self.tls_failures
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// The exposition, OpenMetrics text.
    pub fn encode(&self) -> String {
        lienthong_telemetry::encode_metrics(&self.registry)
    }
}

/// The method's last path segment (`LookupCitizen`), or what the audit layer records for an
/// unknown path; a bounded set.
fn rpc_name(method: &str) -> String {
    match method.rsplit_once('/') {
        Some((_, name)) if method.starts_with('/') => name.to_owned(),
        _ => method.to_owned(),
    }
}

/// Serves the admin listener until the task is aborted: `GET /metrics`, and `POST /reload`
/// when `reload` is given (the configuration file read again; 200 with what changed, 422 with
/// every problem).
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    reload: Option<crate::reload::ReloadFn>,
) {
    use crate::reload::Outcome;
    use axum::extract::ConnectInfo;
    use axum::http::StatusCode;
    let mut app = lienthong_telemetry::metrics_router(move || metrics.encode());
    if let Some(reload) = reload {
        let handler = move |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
            // In a task of its own: a client that hangs up does not cut the reload between
            // putting the new configuration in force and writing its audit record.
            let Ok(outcome) = tokio::spawn(reload(format!("admin listener, from {peer}"))).await
            else {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the reload stopped unexpectedly; see the gateway's log\n".to_owned(),
                );
            };
            let said = outcome.said("\n");
            match outcome {
                Outcome::Applied { .. } => (StatusCode::OK, format!("reloaded: {said}\n")),
                Outcome::Refused { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("refused; the running configuration stays in force:\n{said}\n"),
                ),
            }
        };
        app = app.route("/reload", axum::routing::post(handler));
    }
    lienthong_telemetry::serve_http(listener, app).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_stay_within_the_configuration() {
        let m = Metrics::new(["000.00.00.H42"], ["1.004227"]);
        let e = |unit: &str, procedure: &str| Entry {
            method: "/lienthong.gateway.v1.CitizenGateway/LookupCitizen".into(),
            unit_code: unit.into(),
            procedure_code: procedure.into(),
            ..Entry::default()
        };
        m.request(&e("000.00.00.H42", "1.004227"), None);
        m.request(&e("000.00.00.X99", "evil\"procedure"), None);
        let text = m.encode();
        assert!(
            text.contains(r#"lienthong_requests_total{rpc="LookupCitizen",code="Ok",reason="",unit="000.00.00.H42",procedure="1.004227"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"unit="other",procedure="other"} 1"#),
            "{text}"
        );
        assert!(!text.contains("X99") && !text.contains("evil"));
    }
}
