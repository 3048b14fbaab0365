//! `loadgen`: drives a Liên Thông server with concurrent calls and reports throughput and
//! latency percentiles (HdrHistogram). Bounded in calls and in time; it only ever targets the
//! endpoint it is given.
//!
//! `loadgen gateway` calls LookupCitizen through the gateway as the sample officers;
//! `loadgen audit` measures the audit trail alone (appends with fsync, query, verify).
//!
//! `loadgen csdl` calls the mock population database's `GetCitizen` for citizens that exist: it
//! regenerates a prefix of the store from the same seed (the generator is deterministic), so the
//! IDs it asks for are real without reading the store.

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use lienthong_devtool::call;
use lienthong_devtool::client::mtls_channel;
use lienthong_devtool::pki::CertFiles;
use lienthong_proto::csdl::v1 as pb;
use lienthong_proto::gateway::v1 as gw;
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
        #[command(flatten)]
        load: Load,
        /// HTTP/2 connections to spread the load over.
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
    /// LookupCitizen through the gateway (mutual TLS, tokens, limits, policy, audit with fsync),
    /// as the sample officers of `lienthong-dev up`. Raise the limits for a benchmark, e.g.
    /// LIENTHONG_GATEWAY__UNITS__0__OFFICER_RATE__PER_SECOND=1000000 when starting `up`.
    Gateway {
        #[arg(long, default_value = "https://127.0.0.1:50051")]
        endpoint: String,
        #[arg(long, default_value = ".lienthong")]
        dir: PathBuf,
        #[command(flatten)]
        sample: SpecArgs,
        #[command(flatten)]
        load: Load,
        /// Sample officers to act as, one connection each.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "CB.H42.0001,CB.H42.0002,CB.H42.0003"
        )]
        officers: Vec<String>,
    },
    /// The audit trail on its own, in-process: appends with fsync (group commit), then query by
    /// citizen and verification over the trail it wrote.
    Audit {
        /// Directory for the trail and its indexes (created; reused if it holds a trail).
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        load: Load,
        /// Distinct citizens the records are about.
        #[arg(long, default_value_t = 100_000)]
        citizens: u64,
        /// Queries by citizen to time afterwards.
        #[arg(long, default_value_t = 1000)]
        queries: u64,
    },
}

/// How much load.
#[derive(clap::Args, Clone, Copy)]
struct Load {
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Total calls.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Stop after this many seconds even if calls remain.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
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

/// Runs `load.requests` calls, `load.concurrency` at a time; each worker gets its own `call`
/// (given the worker index), which makes call number n and says whether it succeeded.
async fn drive<C, F, Fut>(
    name: &str,
    load: Load,
    mut make: C,
) -> Result<Histogram<u64>, Box<dyn std::error::Error>>
where
    C: FnMut(usize) -> F,
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(load.max_seconds);
    let bar = indicatif::ProgressBar::new(load.requests);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..load.concurrency.max(1) {
        let mut call = make(w);
        let (next, bar) = (next.clone(), bar.clone());
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .expect("static histogram bounds are valid");
            let mut errors = 0u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= load.requests || Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                let ok = call(n).await;
                let micros = t.elapsed().as_micros().min(60_000_000) as u64;
                let _ = hist.record(micros.max(1));
                if !ok {
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
    println!(
        "{name}: {} calls ({} errors) in {:.1}s = {:.0} calls/s, concurrency {}",
        total.len(),
        errors,
        elapsed,
        total.len() as f64 / elapsed,
        load.concurrency,
    );
    print_latency(&total);
    Ok(total)
}

fn print_latency(h: &Histogram<u64>) {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
}

fn sample_ids(sample: &SpecArgs) -> Result<Arc<Vec<String>>, Box<dyn std::error::Error>> {
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
    Ok(Arc::new(ids))
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.target {
        Target::Csdl {
            endpoint,
            dir,
            sample,
            load,
            connections,
        } => {
            let ids = sample_ids(&sample)?;
            let ca = dir.join("pki/ca.pem");
            let identity = CertFiles {
                cert: dir.join("pki/dev-client.pem"),
                key: dir.join("pki/dev-client.key"),
            };
            let mut channels = Vec::new();
            for _ in 0..connections.max(1) {
                channels.push(mtls_channel(&endpoint, &ca, Some(&identity)).await?);
            }
            drive("GetCitizen", load, |w| {
                let client = pb::population_registry_client::PopulationRegistryClient::new(
                    channels[w % channels.len()].clone(),
                );
                let ids = ids.clone();
                move |n| {
                    let mut client = client.clone();
                    let id = ids[(n as usize * 7919) % ids.len()].clone();
                    async move {
                        client
                            .get_citizen(pb::GetCitizenRequest {
                                key: Some(pb::get_citizen_request::Key::PersonalId(id)),
                                request_id: String::new(),
                            })
                            .await
                            .is_ok()
                    }
                }
            })
            .await?;
        }
        Target::Gateway {
            endpoint,
            dir,
            sample,
            load,
            officers,
        } => {
            let ids = sample_ids(&sample)?;
            let mut callers = Vec::new();
            for o in &officers {
                callers.push(Arc::new(call::connect(&dir, &endpoint, o).await?));
            }
            let refused = Arc::new(AtomicU64::new(0));
            let r = refused.clone();
            drive("LookupCitizen via the gateway", load, |w| {
                let caller = callers[w % callers.len()].clone();
                let ids = ids.clone();
                let refused = r.clone();
                move |n| {
                    let caller = caller.clone();
                    let id = ids[(n as usize * 7919) % ids.len()].clone();
                    let refused = refused.clone();
                    async move {
                        let mut client = caller.client.clone();
                        let req = caller.request(gw::LookupCitizenRequest {
                            context: call::context("1.004227", "LOADGEN-0001"),
                            subject: Some(gw::lookup_citizen_request::Subject::PersonalId(id)),
                            fields: vec![],
                        });
                        match client.lookup_citizen(req).await {
                            Ok(_) => true,
                            Err(s) => {
                                if refused.fetch_add(1, Ordering::Relaxed) == 0 {
                                    eprintln!("first error: {}", call::describe(&s));
                                }
                                false
                            }
                        }
                    }
                }
            })
            .await?;
        }
        Target::Audit {
            dir,
            load,
            citizens,
            queries,
        } => audit(&dir, load, citizens, queries).await?,
    }
    Ok(())
}

/// Appends, then queries by citizen, then verifies.
async fn audit(
    dir: &std::path::Path,
    load: Load,
    citizens: u64,
    queries: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    use lienthong_gateway::audit::index::Filter;
    use lienthong_gateway::audit::log::{AuditLog, Settings};
    use lienthong_gateway::audit::record::Entry;
    use lienthong_gateway::audit::verify::{Options, verify_file};
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let settings = Settings {
        dir: dir.to_owned(),
        chain_id: "loadgen".into(),
        signing_key: key.clone(),
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(60),
        max_batch: 512,
    };
    let log = AuditLog::open(settings.clone())?;
    let pseudonym = |i: u64| format!("{:064x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let l = log.clone();
    drive("audit append (fsync per batch)", load, |_| {
        let log = l.clone();
        move |n| {
            let log = log.clone();
            async move {
                let entry = Entry {
                    time_us: lienthong_gateway::audit::log::timestamp_us(),
                    request_id: format!("lg-{n}"),
                    unit_code: "000.00.00.H42".into(),
                    cert_fingerprint: "ab".repeat(32),
                    peer_address: "10.0.0.1:50000".into(),
                    officer_code: format!("CB.H42.{:04}", n % 200),
                    roles: vec!["receiver".into()],
                    method: "/lienthong.gateway.v1.CitizenGateway/LookupCitizen".into(),
                    procedure_code: "1.004222".into(),
                    dossier_id: format!("H42.01-{n}"),
                    purpose: "administrative_procedure".into(),
                    citizen_pseudonym: pseudonym(n % citizens),
                    citizen_masked_id: "042•••••••005".into(),
                    fields_disclosed: vec!["full_name".into(), "date_of_birth".into()],
                    latency_us: 900,
                    ..Entry::default()
                };
                log.append(entry).await.is_ok()
            }
        }
    })
    .await?;
    // Query by citizen, one at a time.
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut found = 0;
    for q in 0..queries {
        let filter = Filter {
            citizen_pseudonym: pseudonym((q * 7919) % citizens),
            ..Filter::default()
        };
        let t = Instant::now();
        found += log.query(&filter, 1000)?.len();
        hist.record((t.elapsed().as_micros() as u64).max(1))?;
    }
    println!("query by citizen: {queries} queries, {found} records found");
    print_latency(&hist);
    log.close().await;
    // Verify, single thread, from the file.
    let started = Instant::now();
    let report = verify_file(
        log.path(),
        &Options {
            keys: vec![key.verifying_key()],
            from_genesis: true,
            to_sequence: None,
            anchor: None,
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "verify: {} records, {} checkpoints in {:.2}s = {:.0} records/s ({})",
        report.records_checked,
        report.checkpoints_checked,
        secs,
        report.records_checked as f64 / secs,
        if report.ok() { "ok" } else { "BAD" }
    );
    // Start again on the same trail with its indexes intact: the chain checked, every index
    // counted against it.
    drop((log, l));
    let started = Instant::now();
    let reopened = tokio::task::spawn_blocking(move || AuditLog::open(settings)).await??;
    println!(
        "start with intact indexes (chain check + index counts): {:.2}s",
        started.elapsed().as_secs_f64()
    );
    reopened.close().await;
    Ok(())
}
