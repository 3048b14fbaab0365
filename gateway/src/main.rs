//! `lienthong-gateway`: load the configuration, start the gateway, stop on Ctrl-C or SIGTERM,
//! reload the token issuers' keys on SIGHUP.

use clap::Parser;
use lienthong_gateway::{App, Config};
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc rather than glibc's malloc: chosen by measurement (BENCHMARKS.md). Under load glibc
/// spent a fifth of the gateway's CPU in malloc, free and consolidation.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The Liên Thông gateway.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The configuration file; `LIENTHONG_GATEWAY__<KEY>__<SUBKEY>` variables override its keys.
    #[arg(
        long,
        env = "LIENTHONG_GATEWAY_CONFIG",
        default_value = "deploy/gateway.toml"
    )]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs on stderr; stdout carries only the "listening on" line, for scripts.
    #[cfg(feature = "otlp")]
    let traces = lienthong_telemetry::init_with_traces("info", "lienthong-gateway");
    #[cfg(not(feature = "otlp"))]
    let traces: Option<Traces> = {
        lienthong_telemetry::init("info");
        None
    };
    let args = Args::parse();
    let config = match Config::load(&args.config, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let environment = config.environment;
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("the gateway cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %app.local_addr(), environment = environment.as_str(), "gateway listening");
    // For scripts and supervisors: the one line that says where it listens.
    // Listening for the stop signals before saying it listens.
    let stop = lienthong_telemetry::signals::stop_requested();
    println!("lienthong-gateway listening on {}", app.local_addr());
    tokio::spawn(reload_on_sighup(app.reloader()));
    let stopped = app.run_until_stopped(stop).await;
    if let Some(traces) = traces {
        // The spans still buffered are sent before the process ends.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("the gateway stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Without the `otlp` feature there is nothing to flush.
#[cfg(not(feature = "otlp"))]
struct Traces;

#[cfg(not(feature = "otlp"))]
impl Traces {
    fn shutdown(self) {}
}

async fn reload_on_sighup<C>(reloader: std::sync::Arc<lienthong_gateway::reload::Reloader<C>>)
where
    C: governor::clock::Clock + Clone + Send + Sync + 'static,
{
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            // The outcome is logged and recorded in the audit trail by the reloader.
            reloader.reload("signal SIGHUP").await;
        }
    }
    #[cfg(not(unix))]
    let _ = reloader;
}
