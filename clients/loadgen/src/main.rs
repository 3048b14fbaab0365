//! `loadgen`: drives a Liên Thông server with concurrent calls and reports throughput and
//! latency percentiles (HdrHistogram). Bounded in calls and in time; it only ever targets the
//! endpoint it is given.
//!
//! `loadgen csdl` calls the mock population database's `GetCitizen` for citizens that exist: it
//! regenerates a prefix of the store from the same seed (the generator is deterministic), so the
//! IDs it asks for are real without reading the store.

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use lienthong_devtool::client::mtls_channel;
use lienthong_devtool::pki::CertFiles;
use lienthong_proto::csdl::v1 as pb;
use mock_csdl::cli::SpecArgs;
use mock_csdl::generator::Generator;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Load generator for Liên Thông servers"
)]
struct Cli {
    #[command(subcommand)]
    target: Target,
}

#[derive(Subcommand)]
enum Target {
    /// GetCitizen against the mock population database.
    Csdl {
        #[arg(long, default_value = "https://127.0.0.1:50061")]
        endpoint: String,
        /// Environment directory holding the development PKI.
        #[arg(long, default_value = ".lienthong")]
        dir: PathBuf,
        /// The served store's seed and province; `--citizens` is how many distinct citizens to
        /// ask for (at most the store's size).
        #[command(flatten)]
        sample: SpecArgs,
        /// Calls in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Total calls.
        #[arg(long, default_value_t = 100_000)]
        requests: u64,
        /// Stop after this many seconds even if calls remain.
        #[arg(long, default_value_t = 120)]
        max_seconds: u64,
        /// HTTP/2 connections to spread the load over.
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let Target::Csdl {
        endpoint,
        dir,
        sample,
        concurrency,
        requests,
        max_seconds,
        connections,
    } = cli.target;
    let ids: Vec<String> = Generator::new(sample.spec())?
        .map(|b| b.map(|b| b.citizens))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .map(|c| c.personal_id.as_str().to_owned())
        .collect();
    if ids.is_empty() {
        return Err("the sample is empty: pass --citizens 1 or more".into());
    }
    let ca = dir.join("pki/ca.pem");
    let identity = CertFiles {
        cert: dir.join("pki/dev-client.pem"),
        key: dir.join("pki/dev-client.key"),
    };
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        channels.push(mtls_channel(&endpoint, &ca, Some(&identity)).await?);
    }
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(max_seconds);
    let bar = indicatif::ProgressBar::new(requests);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency.max(1) {
        let mut client = pb::population_registry_client::PopulationRegistryClient::new(
            channels[w % channels.len()].clone(),
        );
        let (ids, next, bar) = (ids.clone(), next.clone(), bar.clone());
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .expect("static histogram bounds are valid");
            let mut errors = 0u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests || Instant::now() >= deadline {
                    break;
                }
                let id = ids[(n as usize * 7919) % ids.len()].clone();
                let t = Instant::now();
                let result = client
                    .get_citizen(pb::GetCitizenRequest {
                        key: Some(pb::get_citizen_request::Key::PersonalId(id)),
                        request_id: String::new(),
                    })
                    .await;
                let micros = t.elapsed().as_micros().min(60_000_000) as u64;
                let _ = hist.record(micros.max(1));
                if result.is_err() {
                    errors += 1;
                }
                bar.inc(1);
            }
            (hist, errors)
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for w in workers {
        let (h, e) = w.await?;
        total.add(h)?;
        errors += e;
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |q: f64| total.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "GetCitizen: {} calls ({} errors) in {:.1}s = {:.0} calls/s, concurrency {}, {} connections",
        total.len(),
        errors,
        elapsed,
        total.len() as f64 / elapsed,
        concurrency,
        connections
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        total.max() as f64 / 1000.0
    );
    Ok(())
}
