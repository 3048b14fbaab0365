//! The mock database's Prometheus metrics: requests by method and gRPC status, their latency,
//! and fault activations by rule, served as OpenMetrics text on `GET /metrics` of its own
//! plain-HTTP listener (`--metrics-listen`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Every family, registered once.
pub struct Metrics {
    registry: Registry,
    requests: Family<CallLabels, Counter>,
    duration: Family<MethodLabel, Histogram>,
    /// Calls a fault rule delayed or failed, by the rule's id.
    pub fault_activations: Family<RuleLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::with_prefix("mock_csdl");
        let requests = Family::<CallLabels, Counter>::default();
        r.register(
            "requests",
            "Calls answered, by method and gRPC status code",
            requests.clone(),
        );
        let duration =
            Family::<MethodLabel, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        r.register_with_unit(
            "request_duration",
            "Time to answer a call, injected delays included",
            Unit::Seconds,
            duration.clone(),
        );
        let fault_activations = Family::<RuleLabel, Counter>::default();
        r.register(
            "fault_activations",
            "Calls a fault rule delayed or failed, by rule id",
            fault_activations.clone(),
        );
        Self {
            registry: r,
            requests,
            duration,
            fault_activations,
        }
    }
}

impl Metrics {
    /// The exposition, OpenMetrics text.
    pub fn encode(&self) -> String {
        lienthong_telemetry::encode_metrics(&self.registry)
    }
}

/// The methods of the contract's two services, the only values the `method` label takes.
fn method_of(path: &str) -> String {
    const KNOWN: [&str; 2] = [
        "/lienthong.csdl.v1.PopulationRegistry/",
        "/lienthong.csdl.v1.RegistryAdmin/",
    ];
    match path.rsplit_once('/') {
        Some((service, name))
            if KNOWN.iter().any(|k| k.trim_end_matches('/') == service)
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            name.to_owned()
        }
        _ => "other".to_owned(),
    }
}

/// Counts and times every call of the service it wraps.
#[derive(Clone)]
pub struct MetricsLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, RB> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = method_of(req.uri().path());
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            // An error is a trailers-only reply: its status is in the headers. A reply
            // without one carries data, and its status (OK) in the trailers.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .unwrap_or(0);
            metrics
                .requests
                .get_or_create(&CallLabels {
                    method: method.clone(),
                    code: format!("{:?}", tonic::Code::from_i32(code)),
                })
                .inc();
            metrics
                .duration
                .get_or_create(&MethodLabel { method })
                .observe(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let router = lienthong_telemetry::metrics_router(move || metrics.encode());
    lienthong_telemetry::serve_http(listener, router).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contracts_methods_become_labels() {
        assert_eq!(
            method_of("/lienthong.csdl.v1.PopulationRegistry/GetCitizen"),
            "GetCitizen"
        );
        assert_eq!(
            method_of("/lienthong.csdl.v1.RegistryAdmin/SetFault"),
            "SetFault"
        );
        assert_eq!(method_of("/evil.Service/GetCitizen"), "other");
        assert_eq!(
            method_of("/lienthong.csdl.v1.PopulationRegistry/Get\"Citizen"),
            "other"
        );
    }
}
