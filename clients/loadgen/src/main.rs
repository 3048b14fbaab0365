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
        /// Ask for the household with every member. By default only the household link is
        /// asked for, as the gateway asks (`household_link_only`), so that paths in front of
        /// the database move the same replies.
        #[arg(long)]
        full_household: bool,
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
        /// Sample officers to act as, taken in turn by the connections.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "CB.H42.0001,CB.H42.0002,CB.H42.0003"
        )]
        officers: Vec<String>,
        /// HTTP/2 connections to spread the load over (at least one per officer).
        #[arg(long, default_value_t = 0)]
        connections: usize,
        /// The methods called, with weights: lookup, verify (VerifyCitizen, one true claim),
        /// autofill, batch (a VerifyBatch stream of 10 items, counted as one call).
        #[arg(long, default_value = "lookup=100", value_parser = parse_mix)]
        mix: Mix,
        /// Percent of calls about the documented personas (the chaos personas left out) rather
        /// than generated citizens.
        #[arg(long, default_value_t = 0)]
        personas: u8,
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
    /// Calls in flight at once (closed loop: each worker sends its next call when the last one
    /// is answered). With `--rate`, the most calls in flight; a call that finds them all busy
    /// waits, and its wait counts in its latency.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Open loop: send this many calls a second, on a fixed schedule that does not wait for
    /// replies; latency is measured from each call's scheduled time (no coordinated omission).
    #[arg(long)]
    rate: Option<f64>,
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
/// (given the worker index), which makes call number n and says whether it succeeded. Closed
/// loop by default; with `load.rate`, calls are scheduled at that rate and timed from their
/// scheduled start.
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
    let deadline = Instant::now() + Duration::from_secs(load.max_seconds);
    let bar = indicatif::ProgressBar::new(load.requests);
    let started = Instant::now();
    let tickets = Tickets::start(load, started, deadline);
    let mut workers = Vec::new();
    for w in 0..load.concurrency.max(1) {
        let mut call = make(w);
        let (tickets, bar) = (tickets.clone(), bar.clone());
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .expect("static histogram bounds are valid");
            let mut errors = 0u64;
            while let Some((n, scheduled)) = tickets.next().await {
                let ok = call(n).await;
                let micros = scheduled.elapsed().as_micros().min(60_000_000) as u64;
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
    let pacing = match load.rate {
        Some(r) => format!(
            "open loop at {r:.0}/s, at most {} in flight",
            load.concurrency
        ),
        None => format!("closed loop, concurrency {}", load.concurrency),
    };
    println!(
        "{name}: {} calls ({} errors) in {:.1}s = {:.0} calls/s, {pacing}",
        total.len(),
        errors,
        elapsed,
        total.len() as f64 / elapsed,
    );
    print_latency(&total);
    Ok(total)
}

/// Where workers take their next call from: a shared counter (closed loop), or a schedule at a
/// fixed rate (open loop), each call with the time it should have started.
#[derive(Clone)]
enum Tickets {
    Closed {
        next: Arc<AtomicU64>,
        requests: u64,
        deadline: Instant,
    },
    Open(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<(u64, Instant)>>>),
}

impl Tickets {
    fn start(load: Load, started: Instant, deadline: Instant) -> Self {
        let Some(rate) = load.rate.filter(|r| *r > 0.0) else {
            return Self::Closed {
                next: Arc::new(AtomicU64::new(0)),
                requests: load.requests,
                deadline,
            };
        };
        // The schedule runs ahead of the workers by at most a second's worth of calls.
        let (tx, rx) = tokio::sync::mpsc::channel((rate as usize).max(1));
        tokio::spawn(async move {
            for n in 0..load.requests {
                let at = started + Duration::from_secs_f64(n as f64 / rate);
                if at >= deadline {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                if tx.send((n, at)).await.is_err() {
                    break;
                }
            }
        });
        Self::Open(Arc::new(tokio::sync::Mutex::new(rx)))
    }

    async fn next(&self) -> Option<(u64, Instant)> {
        match self {
            Self::Closed {
                next,
                requests,
                deadline,
            } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                (n < *requests && now < *deadline).then_some((n, now))
            }
            Self::Open(rx) => rx.lock().await.recv().await,
        }
    }
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

/// The citizens a gateway run asks about: generated ones (ID and name, so verification claims
/// are true) and, for `personas` percent of calls, the documented non-chaos personas.
struct Citizens {
    generated: Vec<(String, String)>,
    personas: Vec<(String, String)>,
    persona_percent: u64,
}

impl Citizens {
    /// The citizen of call `n`. Verifications keep to generated citizens: the personas are few,
    /// and the verification budget (5 claims per officer, citizen and field a day) would refuse
    /// repeated claims about them.
    fn pick(&self, n: u64, method: Method) -> (String, String) {
        let spread = (n as usize).wrapping_mul(7919);
        let personas_allowed = matches!(method, Method::Lookup | Method::Autofill);
        let pool = if personas_allowed
            && !self.personas.is_empty()
            && (n * 37) % 100 < self.persona_percent
        {
            &self.personas
        } else {
            &self.generated
        };
        pool[spread % pool.len()].clone()
    }
}

fn sample_citizens(
    sample: &SpecArgs,
    persona_percent: u8,
) -> Result<Arc<Citizens>, Box<dyn std::error::Error>> {
    let generated: Vec<(String, String)> = Generator::new(sample.spec())?
        .map(|b| b.map(|b| b.citizens))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .map(|c| (c.personal_id.as_str().to_owned(), c.full_name))
        .collect();
    if generated.is_empty() {
        return Err("the sample is empty: pass --citizens 1 or more".into());
    }
    let personas = mock_csdl::personas::PERSONAS
        .iter()
        .filter(|p| !p.key.starts_with("chaos-"))
        .map(|p| (p.personal_id.to_owned(), p.full_name.to_owned()))
        .collect();
    Ok(Arc::new(Citizens {
        generated,
        personas,
        persona_percent: u64::from(persona_percent.min(100)),
    }))
}

/// A gateway method in a mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Lookup,
    Verify,
    Autofill,
    Batch,
}

/// Methods with weights; call n gets a method spread evenly by weight.
#[derive(Clone, Debug)]
struct Mix(Vec<(Method, u64)>);

fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected method=weight, e.g. lookup=70"))?;
        let method = match name.trim() {
            "lookup" => Method::Lookup,
            "verify" => Method::Verify,
            "autofill" => Method::Autofill,
            "batch" => Method::Batch,
            other => {
                return Err(format!(
                    "{other:?} is not a method: use lookup, verify, autofill or batch"
                ));
            }
        };
        let weight: u64 = weight
            .trim()
            .parse()
            .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
        if weight > 0 {
            out.push((method, weight));
        }
    }
    if out.is_empty() {
        return Err("the mix names no method with a weight above 0".into());
    }
    Ok(Mix(out))
}

impl Mix {
    fn pick(&self, n: u64) -> Method {
        let total: u64 = self.0.iter().map(|(_, w)| w).sum();
        let mut at = n.wrapping_mul(0x9E37_79B9) % total;
        for (m, w) in &self.0 {
            if at < *w {
                return *m;
            }
            at -= w;
        }
        self.0[0].0
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(m, w)| format!("{m:?}={w}").to_lowercase())
            .collect();
        parts.join(",")
    }
}

/// One call of the mix as the permanent-residence procedure (1.004227), which every sample
/// counter officer may use and whose form any adult's record fills.
async fn gateway_call(
    caller: &call::Caller,
    method: Method,
    subjects: Vec<(String, String)>,
) -> Result<(), tonic::Status> {
    const PROCEDURE: &str = "1.004227";
    let context = || call::context(PROCEDURE, "LOADGEN-0001");
    let claims = |name: &str| {
        vec![gw::Claim {
            field: "full_name".into(),
            value: name.to_owned(),
        }]
    };
    let mut client = caller.client.clone();
    let (id, name) = subjects.first().cloned().unwrap_or_default();
    match method {
        Method::Lookup => {
            client
                .lookup_citizen(caller.request(gw::LookupCitizenRequest {
                    context: context(),
                    subject: Some(gw::lookup_citizen_request::Subject::PersonalId(id)),
                    fields: vec![],
                }))
                .await?;
        }
        Method::Verify => {
            client
                .verify_citizen(caller.request(gw::VerifyCitizenRequest {
                    old_id_number: String::new(),
                    context: context(),
                    personal_id: id,
                    claims: claims(&name),
                }))
                .await?;
        }
        Method::Autofill => {
            client
                .autofill_form(caller.request(gw::AutofillFormRequest {
                    context: context(),
                    subject: Some(gw::autofill_form_request::Subject::PersonalId(id)),
                }))
                .await?;
        }
        Method::Batch => {
            let items: Vec<gw::VerifyBatchRequest> = subjects
                .iter()
                .enumerate()
                .map(|(i, (id, name))| gw::VerifyBatchRequest {
                    old_id_number: String::new(),
                    context: if i == 0 { context() } else { None },
                    item_id: format!("item-{i}"),
                    personal_id: id.clone(),
                    claims: claims(name),
                })
                .collect();
            let mut replies = client
                .verify_batch(caller.request(tokio_stream::iter(items)))
                .await?
                .into_inner();
            while let Some(reply) = replies.message().await? {
                if let Some(gw::verify_batch_response::Outcome::Error(e)) = reply.outcome {
                    return Err(tonic::Status::new(e.code.into(), e.message));
                }
            }
        }
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.target {
        Target::Csdl {
            full_household,
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
            let failed = Arc::new(AtomicU64::new(0));
            drive("GetCitizen", load, |w| {
                let client = pb::population_registry_client::PopulationRegistryClient::new(
                    channels[w % channels.len()].clone(),
                );
                let (ids, failed) = (ids.clone(), failed.clone());
                move |n| {
                    let mut client = client.clone();
                    let id = ids[(n as usize * 7919) % ids.len()].clone();
                    let failed = failed.clone();
                    async move {
                        let reply = client
                            .get_citizen(pb::GetCitizenRequest {
                                key: Some(pb::get_citizen_request::Key::PersonalId(id)),
                                request_id: String::new(),
                                household_link_only: !full_household,
                            })
                            .await;
                        if let Err(s) = &reply
                            && failed.fetch_add(1, Ordering::Relaxed) == 0
                        {
                            eprintln!("first error: {:?}: {}", s.code(), s.message());
                        }
                        reply.is_ok()
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
            connections,
            mix,
            personas,
        } => {
            let citizens = sample_citizens(&sample, personas)?;
            let mut callers = Vec::new();
            for c in 0..connections.max(officers.len()).max(1) {
                let officer = officers
                    .get(c % officers.len().max(1))
                    .ok_or("name an officer")?;
                callers.push(Arc::new(call::connect(&dir, &endpoint, officer).await?));
            }
            let refused = Arc::new(AtomicU64::new(0));
            let mix = Arc::new(mix);
            drive(&format!("gateway ({})", mix.describe()), load, |w| {
                let caller = callers[w % callers.len()].clone();
                let (citizens, refused, mix) = (citizens.clone(), refused.clone(), mix.clone());
                move |n| {
                    let (caller, refused) = (caller.clone(), refused.clone());
                    let method = mix.pick(n);
                    // A batch asks about ten different citizens.
                    let subjects: Vec<(String, String)> = match method {
                        Method::Batch => {
                            (0..10).map(|i| citizens.pick(n * 10 + i, method)).collect()
                        }
                        _ => vec![citizens.pick(n, method)],
                    };
                    async move {
                        match gateway_call(&caller, method, subjects).await {
                            Ok(()) => true,
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
    let again = settings.clone();
    let reopened = tokio::task::spawn_blocking(move || AuditLog::open(again)).await??;
    println!(
        "start with intact indexes (chain check, every run checked whole): {:.2}s",
        started.elapsed().as_secs_f64()
    );
    reopened.close().await;
    drop(reopened);
    // And with the indexes deleted: the chain checked and every index rebuilt.
    std::fs::remove_dir_all(dir.join("index"))?;
    let started = Instant::now();
    let rebuilt = tokio::task::spawn_blocking(move || AuditLog::open(settings)).await??;
    println!(
        "start with the indexes deleted (chain check + full rebuild): {:.2}s",
        started.elapsed().as_secs_f64()
    );
    rebuilt.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_spreads_calls_by_weight() {
        let mix = parse_mix("lookup=70,verify=20,autofill=10,batch=0").expect("a valid mix");
        let mut counts = [0u32; 4];
        for n in 0..10_000 {
            counts[mix.pick(n) as usize] += 1;
        }
        assert_eq!(
            counts[Method::Batch as usize],
            0,
            "weight 0 is never picked"
        );
        for (method, share) in [
            (Method::Lookup, 70),
            (Method::Verify, 20),
            (Method::Autofill, 10),
        ] {
            let got = counts[method as usize] / 100;
            assert!(
                got.abs_diff(share) <= 2,
                "{method:?}: {got}% for a weight of {share}"
            );
        }
    }

    #[test]
    fn a_bad_mix_says_what_was_wrong() {
        for (input, expected) in [
            ("lookup", "expected method=weight"),
            ("read=5", "is not a method"),
            ("lookup=x", "whole number"),
            ("lookup=0", "no method with a weight above 0"),
        ] {
            let err = parse_mix(input).expect_err(input);
            assert!(err.contains(expected), "{input}: {err}");
        }
    }
}
