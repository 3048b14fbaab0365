//! Log output for every binary of the project: one JSON object per line when standard error
//! is not a terminal (a file, a pipe, a container's log collector), human text otherwise, with
//! colour only on a terminal. `LIENTHONG_LOG_FORMAT` (`json`, `text` or `auto`) chooses the
//! form explicitly; `RUST_LOG` chooses what is logged.

pub mod signals;

use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// The environment variable that chooses the log format.
pub const FORMAT_VAR: &str = "LIENTHONG_LOG_FORMAT";

/// The target of the one line each request leaves (`RUST_LOG=lienthong::request=info`).
pub const REQUEST_TARGET: &str = "lienthong::request";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, no colour.
    Json,
    /// Human text; `colour` only when writing to a terminal.
    Text { colour: bool },
}

impl Format {
    /// The format for a `LIENTHONG_LOG_FORMAT` value and whether the output is a terminal;
    /// an unknown value is an error that names the accepted ones.
    pub fn choose(setting: Option<&str>, terminal: bool) -> Result<Self, String> {
        match setting.map(str::trim).unwrap_or("auto") {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text { colour: terminal }),
            "auto" | "" if terminal => Ok(Self::Text { colour: true }),
            "auto" | "" => Ok(Self::Json),
            other => Err(format!(
                "{FORMAT_VAR}={other:?} is not a log format: use json, text or auto (JSON \
                 unless standard error is a terminal)"
            )),
        }
    }
}

/// Installs the process's log output on standard error: `RUST_LOG` or `default_filter` for
/// what, [`Format::choose`] for how. A bad `LIENTHONG_LOG_FORMAT` is reported on standard
/// error and the automatic choice is used.
pub fn init(default_filter: &str) {
    install(default_filter, None);
}

/// As [`init`], and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the spans of
/// [`TRACE_TARGET`] exported over OTLP/gRPC as `service` (off otherwise). Call it inside the
/// Tokio runtime; keep the returned [`Traces`] and shut it down at exit, which sends what is
/// still buffered.
#[cfg(feature = "otlp")]
pub fn init_with_traces(default_filter: &str, service: &str) -> Option<Traces> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty());
    let Some(endpoint) = endpoint else {
        install(default_filter, None);
        return None;
    };
    use opentelemetry::trace::TracerProvider as _;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            install(default_filter, None);
            tracing::error!(%endpoint, error = %e, "OTLP trace export could not start: traces are off");
            return None;
        }
    };
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("lienthong"))
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(TRACE_TARGET, tracing::Level::DEBUG),
        );
    install(default_filter, Some(Box::new(layer)));
    tracing::info!(%endpoint, "exporting traces over OTLP");
    Some(Traces(provider))
}

/// The trace export; [`Traces::shutdown`] sends what is still buffered.
#[cfg(feature = "otlp")]
pub struct Traces(opentelemetry_sdk::trace::SdkTracerProvider);

#[cfg(feature = "otlp")]
impl Traces {
    pub fn shutdown(self) {
        if let Err(e) = self.0.shutdown() {
            tracing::warn!(error = %e, "the last traces could not be sent");
        }
    }
}

/// The target of the spans a request makes (one per request, one per pipeline step), at
/// debug level: off, and free, unless traces are exported.
pub const TRACE_TARGET: &str = "lienthong::trace";

type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

fn install(default_filter: &str, traces: Option<Boxed>) {
    let terminal = std::io::stderr().is_terminal();
    let setting = std::env::var(FORMAT_VAR).ok();
    let (format, problem) = match Format::choose(setting.as_deref(), terminal) {
        Ok(f) => (f, None),
        Err(e) => (
            Format::choose(None, terminal).unwrap_or(Format::Json),
            Some(e),
        ),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let logs: Boxed = match format {
        Format::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        Format::Text { colour } => tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let mut layers = vec![logs];
    layers.extend(traces);
    let installed = tracing_subscriber::registry().with(layers).try_init();
    if installed.is_ok()
        && let Some(problem) = problem
    {
        tracing::warn!("{problem}");
    }
}

/// A registry's exposition, OpenMetrics text (an encoding error is logged, and what was
/// encoded is returned).
pub fn encode_metrics(registry: &prometheus_client::registry::Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(error = %e, "metrics could not be encoded");
    }
    out
}

/// A router answering `GET /metrics` with what `encode` returns, as OpenMetrics text.
pub fn metrics_router(encode: impl Fn() -> String + Clone + Send + Sync + 'static) -> axum::Router {
    use axum::http::header::CONTENT_TYPE;
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let encode = encode.clone();
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    encode(),
                )
            }
        }),
    )
}

/// Serves `router` (plain HTTP/1.1, the peer's address available to handlers) until the task
/// is aborted.
pub async fn serve_http(listener: tokio::net::TcpListener, router: axum::Router) {
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(e) = axum::serve(listener, service).await {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_unless_a_terminal_and_colour_only_on_one() {
        assert_eq!(Format::choose(None, false), Ok(Format::Json));
        assert_eq!(
            Format::choose(None, true),
            Ok(Format::Text { colour: true })
        );
        assert_eq!(
            Format::choose(Some("text"), false),
            Ok(Format::Text { colour: false })
        );
        assert_eq!(Format::choose(Some("json"), true), Ok(Format::Json));
        assert_eq!(Format::choose(Some(" auto "), false), Ok(Format::Json));
        let e = Format::choose(Some("yaml"), false).unwrap_err();
        assert!(e.contains("json, text or auto"), "{e}");
    }
}
