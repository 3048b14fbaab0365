//! `auditctl`: the security reviewer's tool. `query`, `export` and `checkpoints` talk to the
//! gateway's AuditService (auditor role); `verify` and `report` work offline on trail files or
//! exports, with only the public key.

mod chains;
mod console;
mod csv;
mod json;
mod report;

use clap::{Parser, Subcommand, ValueEnum};
use lienthong_devtool::client::mtls_channel;
use lienthong_devtool::env::DevPki;
use lienthong_devtool::pki::CertFiles;
use lienthong_devtool::sample;
use lienthong_devtool::tokens::{TokenSpec, mint};
use lienthong_gateway::audit::frame::{FrameError, FrameReader, Item};
use lienthong_gateway::audit::record::Record;
use lienthong_gateway::audit::verify::{Options, public_key_from_pem, verify, verify_file};
use lienthong_gateway::audit_service::{checkpoint_from_pb, record_from_pb};
use lienthong_proto::audit::v1 as pb;
use pb::audit_service_client::AuditServiceClient;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tonic::transport::Channel;

#[derive(Parser)]
#[command(
    name = "auditctl",
    version,
    about = "Liên Thông audit trail: query, verify, export, report"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How to reach the gateway's AuditService as an auditor.
#[derive(clap::Args)]
struct Connect {
    #[arg(long, default_value = "https://127.0.0.1:50051")]
    endpoint: String,
    /// CA certificate of the gateway (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Your unit's client certificate and key (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long)]
    key: Option<PathBuf>,
    /// A file holding your officer token (auditor role).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Development: take the CA and certificate from this `lienthong-dev` directory and mint a
    /// token for `--as-officer`.
    #[arg(long)]
    dev_dir: Option<PathBuf>,
    /// Development: the sample auditor to act as.
    #[arg(long, default_value = "CB.H42.KT01")]
    as_officer: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Jsonl,
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutcomeArg {
    Any,
    Served,
    Refused,
}

#[derive(Subcommand)]
enum Command {
    /// Records matching filters, oldest first.
    Query {
        #[command(flatten)]
        connect: Connect,
        #[arg(long)]
        officer: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        /// A citizen's personal ID: the gateway turns it into the pseudonym (and records your query).
        #[arg(long)]
        personal_id: Option<String>,
        #[arg(long)]
        procedure: Option<String>,
        #[arg(long, value_enum, default_value = "any")]
        outcome: OutcomeArg,
        #[arg(long)]
        reason: Option<String>,
        /// From this local date/time (UTC+7), "2026-11-23" or "2026-11-23T08:00".
        #[arg(long)]
        from: Option<String>,
        /// Until this local date/time (exclusive).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        /// The next page: the cursor printed after a full page.
        #[arg(long)]
        after: Option<String>,
        /// Only the record at this sequence of the gateway's chain.
        #[arg(long)]
        sequence: Option<u64>,
        /// Search every replica's chain in the fleet's central store (through this gateway).
        #[arg(long)]
        all_replicas: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Check a trail file, an export, or every chain of the central store: hashes, links,
    /// sequence, checkpoint signatures.
    Verify {
        /// A trail file (`<chain>.trail`).
        #[arg(long, conflicts_with_all = ["export", "central"])]
        trail: Option<PathBuf>,
        /// The fleet's central store (`postgres://…`, read access is enough): every chain in it,
        /// each said complete and verified up to a sequence.
        #[arg(long, conflicts_with = "export")]
        central: Option<String>,
        /// The central store's schema.
        #[arg(long, default_value = "lienthong_audit", requires = "central")]
        schema: String,
        /// An export (JSON lines from `auditctl export`).
        #[arg(long)]
        export: Option<PathBuf>,
        /// The gateway's checkpoint public key (PEM); repeat it for keys retired by a rotation.
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
        /// A checkpoint kept earlier (JSON, from `checkpoints --save`): the trail must reach it.
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// Serve the reviewer's console: the trail in a browser (search, records and their place in
    /// the chain, verification, the misuse report, exports), every page read through the
    /// gateway with the signed-in auditor's own token. With --dev-dir, the sign-in page also
    /// offers the unit's sample officers.
    Serve {
        #[command(flatten)]
        connect: Connect,
        /// Where the console listens (HTTP; keep it on loopback or behind a TLS proxy).
        #[arg(long, default_value = "127.0.0.1:50480")]
        listen: std::net::SocketAddr,
        /// The fleet's central store (`postgres://…`, read access is enough): the verification
        /// page also verifies every chain in it, for readers the gateway accepts as auditors.
        #[arg(long)]
        central: Option<String>,
        /// The central store's schema.
        #[arg(long, default_value = "lienthong_audit", requires = "central")]
        schema: String,
        /// The gateway's checkpoint public key (PEM), to verify the central store's chains;
        /// repeat it for keys retired by a rotation.
        #[arg(long = "public-key", requires = "central")]
        public_keys: Vec<PathBuf>,
    },
    /// Export a range with the checkpoint that covers it, as JSON lines.
    Export {
        #[command(flatten)]
        connect: Connect,
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Last sequence; 0 for everything covered by a checkpoint.
        #[arg(long, default_value_t = 0)]
        to: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// The signed checkpoints; `--save` keeps the latest as an anchor for later checks.
    Checkpoints {
        #[command(flatten)]
        connect: Connect,
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Misuse signals from a trail file or an export.
    Report {
        #[arg(long, conflicts_with = "export")]
        trail: Option<PathBuf>,
        #[arg(long)]
        export: Option<PathBuf>,
        #[arg(long, default_value_t = 30)]
        dormant_days: i64,
        #[arg(long, default_value_t = 10)]
        burst_count: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("auditctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("auditctl: {e}");
            ExitCode::from(2)
        }
    }
}

/// The console's channel to the gateway (its unit's certificate), its unit, and in the
/// development environment the sample officers it may sign in as.
async fn console_for(
    c: &Connect,
    central: Option<console::Central>,
) -> Result<console::Console, Error> {
    if let Some(dir) = &c.dev_dir {
        let pki = DevPki::layout(dir);
        let officer =
            sample::officer(&c.as_officer).ok_or("--as-officer is not a sample officer")?;
        let unit = sample::unit(officer.unit).ok_or("sample table inconsistent")?;
        let cert = pki.unit(unit);
        let channel = mtls_channel(&c.endpoint, &pki.ca, Some(&cert)).await?;
        let dev = console::DevLogin {
            issuer_key: pki.issuer.key.clone(),
            cert: cert.cert.clone(),
            officers: sample::OFFICERS
                .iter()
                .filter(|o| o.unit == unit.key)
                .collect(),
        };
        return Ok(console::Console::new(
            channel,
            unit.code.into(),
            Some(dev),
            central,
        ));
    }
    let need = |o: &Option<PathBuf>, what: &str| {
        o.clone()
            .ok_or_else(|| format!("give --{what} (or --dev-dir for a development environment)"))
    };
    let identity = CertFiles {
        cert: need(&c.cert, "cert")?,
        key: need(&c.key, "key")?,
    };
    let channel = mtls_channel(&c.endpoint, &need(&c.ca, "ca")?, Some(&identity)).await?;
    Ok(console::Console::new(channel, String::new(), None, central))
}

async fn connect(c: &Connect) -> Result<(AuditServiceClient<Channel>, String), Error> {
    let (ca, identity, token) = if let Some(dir) = &c.dev_dir {
        let pki = DevPki::layout(dir);
        let officer =
            sample::officer(&c.as_officer).ok_or("--as-officer is not a sample officer")?;
        let unit = sample::unit(officer.unit).ok_or("sample table inconsistent")?;
        let cert = pki.unit(unit);
        let spec =
            TokenSpec::new(officer.code, unit.code, officer.roles).bound_to_file(&cert.cert)?;
        (pki.ca.clone(), cert, mint(&pki.issuer.key, &spec)?)
    } else {
        let need = |o: &Option<PathBuf>, what: &str| {
            o.clone().ok_or_else(|| {
                format!("give --{what} (or --dev-dir for a development environment)")
            })
        };
        let token = std::fs::read_to_string(need(&c.token_file, "token-file")?)?;
        (
            need(&c.ca, "ca")?,
            CertFiles {
                cert: need(&c.cert, "cert")?,
                key: need(&c.key, "key")?,
            },
            token.trim().to_owned(),
        )
    };
    let channel = mtls_channel(&c.endpoint, &ca, Some(&identity)).await?;
    Ok((AuditServiceClient::new(channel), token))
}

fn authed<T>(token: &str, m: T) -> Result<tonic::Request<T>, Error> {
    let mut r = tonic::Request::new(m);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(r)
}

fn refused(s: tonic::Status) -> Error {
    lienthong_devtool::call::describe(&s).into()
}

/// "2026-11-23" or "2026-11-23T08:00", local time (UTC+7) → microseconds since the epoch.
fn parse_local(s: &str) -> Result<lienthong_proto::Timestamp, Error> {
    let bad = || -> Error {
        format!("{s:?} is not a date and time: use 2026-11-23, 2026-11-23T08:00 or 23/11/2026 (Vietnam time)").into()
    };
    let (date, time) = s
        .split_once('T')
        .or_else(|| s.split_once(' '))
        .unwrap_or((s, "00:00"));
    let numbers = |text: &str, sep: char| -> Option<Vec<i64>> {
        text.split(sep).map(|p| p.trim().parse().ok()).collect()
    };
    let (y, m, d) = match (numbers(date, '-'), numbers(date, '/')) {
        (Some(p), _) if p.len() == 3 => (p[0], p[1], p[2]),
        (_, Some(p)) if p.len() == 3 => (p[2], p[1], p[0]),
        _ => return Err(bad()),
    };
    let t = numbers(time, ':')
        .filter(|t| t.len() == 2)
        .ok_or_else(bad)?;
    let (h, min) = (t[0], t[1]);
    let valid = (1..=9999).contains(&y)
        && (1..=12).contains(&m)
        && (1..=i64::from(lienthong_domain::date::days_in_month(y as i32, m as u32))).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&min);
    if !valid {
        return Err(bad());
    }
    let days = lienthong_domain::date::days_from_civil(y as i32, m as u32, d as u32);
    Ok(lienthong_proto::Timestamp {
        seconds: days * 86_400 + h * 3600 + min * 60 - 7 * 3600,
        nanos: 0,
    })
}

fn print_records(records: &[Record], format: Format) {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Jsonl => {
            for r in records {
                let _ = writeln!(out, "{}", json::record(r));
            }
        }
        Format::Csv => {
            let _ = csv::write(&mut out, records);
        }
        Format::Table => {
            // Records of several chains (a query of every replica): each place is chain#seq.
            let many = records.iter().any(|r| r.chain_id != records[0].chain_id);
            let place = |r: &Record| {
                if many {
                    format!("{}#{}", r.chain_id, r.sequence)
                } else {
                    r.sequence.to_string()
                }
            };
            let _ = writeln!(
                out,
                "{:>6}  {:<25} {:<12} {:<14} {:<16} {:<11} {:<18} {:<14} outcome / fields",
                if many { "chain#seq" } else { "seq" },
                "time (UTC+7)",
                "officer",
                "unit",
                "method",
                "procedure",
                "dossier",
                "citizen"
            );
            for r in records {
                let e = &r.entry;
                let method = e.method.rsplit('/').next().unwrap_or_default();
                let outcome = if e.outcome_code == 0 {
                    format!("OK {}", e.fields_disclosed.join(","))
                } else {
                    format!("{} {}", e.outcome_code, e.outcome_reason)
                };
                let _ = writeln!(
                    out,
                    "{:>6}  {:<25} {:<12} {:<14} {:<16} {:<11} {:<18} {:<14} {}",
                    place(r),
                    report::local_time(e.time_us),
                    e.officer_code,
                    e.unit_code,
                    method,
                    e.procedure_code,
                    e.dossier_id,
                    e.citizen_masked_id,
                    outcome
                );
            }
        }
    }
}

type Frames = Box<dyn Iterator<Item = Result<(u64, Item), FrameError>>>;

/// Frames from a trail file or an export.
fn frames(trail: Option<&Path>, export: Option<&Path>) -> Result<Frames, Error> {
    match (trail, export) {
        (Some(t), _) => {
            let file =
                std::fs::File::open(t).map_err(|e| format!("cannot open {}: {e}", t.display()))?;
            let len = file.metadata()?.len();
            Ok(Box::new(FrameReader::new(
                BufReader::with_capacity(1 << 20, file),
                len,
            )?))
        }
        (None, Some(x)) => {
            let file =
                std::fs::File::open(x).map_err(|e| format!("cannot open {}: {e}", x.display()))?;
            let mut items = Vec::new();
            for (n, line) in BufReader::new(file).lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let item = serde_json::from_str(&line)
                    .ok()
                    .and_then(|v| json::item_from(&v));
                items.push(item.map(|i| (n as u64, i)).ok_or(FrameError {
                    offset: n as u64 + 1,
                    at_end: false,
                    problem: format!("line {} is not a record or checkpoint", n + 1),
                }));
            }
            Ok(Box::new(items.into_iter()))
        }
        (None, None) => Err("give --trail or --export".into()),
    }
}

async fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Query {
            connect: c,
            officer,
            unit,
            personal_id,
            procedure,
            outcome,
            reason,
            from,
            to,
            limit,
            after,
            sequence,
            all_replicas,
            format,
        } => {
            let (mut client, token) = connect(&c).await?;
            let req = pb::QueryRequest {
                officer_code: officer.unwrap_or_default(),
                unit_code: unit.unwrap_or_default(),
                personal_id: personal_id.unwrap_or_default(),
                procedure_code: procedure.unwrap_or_default(),
                outcome: match outcome {
                    OutcomeArg::Any => pb::OutcomeFilter::Any,
                    OutcomeArg::Served => pb::OutcomeFilter::Served,
                    OutcomeArg::Refused => pb::OutcomeFilter::Refused,
                } as i32,
                reason: reason.unwrap_or_default(),
                from: from.as_deref().map(parse_local).transpose()?,
                to: to.as_deref().map(parse_local).transpose()?,
                limit,
                all_replicas,
                page_after: after.unwrap_or_default(),
                sequence,
            };
            let mut stream = client
                .query(authed(&token, req)?)
                .await
                .map_err(refused)?
                .into_inner();
            let mut records = Vec::new();
            let mut cursor = String::new();
            while let Some(r) = stream.message().await.map_err(refused)? {
                records.push(record_from_pb(&r).ok_or("the gateway sent a malformed record")?);
                cursor = r.page_cursor;
            }
            print_records(&records, format);
            // A full page may have more after it; the hint goes to stderr, so the output stays
            // one format.
            if records.len() == limit as usize && !cursor.is_empty() {
                eprintln!("more records may follow: add --after {cursor}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            trail,
            central,
            schema,
            export,
            public_keys,
            anchor,
        } => {
            let keys = read_public_keys(&public_keys)?;
            let anchor = match anchor {
                Some(p) => {
                    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p)?)?;
                    Some(
                        json::checkpoint_from(&v)
                            .ok_or_else(|| format!("{} is not a checkpoint", p.display()))?,
                    )
                }
                None => None,
            };
            if let Some(url) = central {
                return verify_central(&url, &schema, keys).await;
            }
            let started = std::time::Instant::now();
            // A trail starts the chain; an export starts wherever its range starts.
            let opts = Options {
                keys,
                from_genesis: trail.is_some(),
                to_sequence: None,
                anchor,
            };
            let report = match &trail {
                Some(t) => verify_file(t, &opts)
                    .map_err(|e| format!("cannot read {}: {e}", t.display()))?,
                None => verify(frames(None, export.as_deref())?, &opts),
            };
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} records and {} checkpoints checked in {:.2} s ({:.0} records/s)",
                report.records_checked,
                report.checkpoints_checked,
                secs,
                report.records_checked as f64 / secs.max(1e-9)
            );
            if let Some((seq, hash)) = report.head {
                println!(
                    "head: sequence {seq}, hash {}",
                    lienthong_gateway::audit::record::hex(&hash)
                );
            }
            if report.uncovered > 0 {
                println!(
                    "note: the last {} record(s) are not yet covered by a signed checkpoint",
                    report.uncovered
                );
            }
            match report.first_bad {
                None => {
                    println!("OK: the chain holds and every checkpoint signature verifies");
                    Ok(ExitCode::SUCCESS)
                }
                // The wrong key proves nothing either way: its own exit code (3).
                Some((_, problem)) if problem.starts_with("WRONG KEY") => {
                    println!("{problem}");
                    Ok(ExitCode::from(3))
                }
                Some((seq, problem)) => {
                    println!("BAD at sequence {seq}: {problem}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Serve {
            connect: c,
            listen,
            central,
            schema,
            public_keys,
        } => {
            let central = match central {
                Some(_) if public_keys.is_empty() => {
                    return Err(
                        "--central needs --public-key (the gateway's checkpoint key)".into(),
                    );
                }
                Some(url) => Some(console::Central {
                    url,
                    schema,
                    keys: read_public_keys(&public_keys)?,
                }),
                None => None,
            };
            let console = console_for(&c, central).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let address = listener.local_addr()?;
            println!("console: http://{address}/");
            if !address.ip().is_loopback() {
                eprintln!(
                    "auditctl: the console serves plain HTTP on {address}: put a TLS proxy in \
                     front of it, or listen on 127.0.0.1"
                );
            }
            axum::serve(listener, console.router())
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            connect: c,
            from,
            to,
            out,
        } => {
            let (mut client, token) = connect(&c).await?;
            let mut stream = client
                .export(authed(
                    &token,
                    pb::ExportRequest {
                        from_sequence: from,
                        to_sequence: to,
                    },
                )?)
                .await
                .map_err(refused)?
                .into_inner();
            let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
            let (mut records, mut checkpoint) = (0u64, None);
            while let Some(chunk) = stream.message().await.map_err(refused)? {
                let item = match chunk.item {
                    Some(pb::export_chunk::Item::Record(r)) => {
                        records += 1;
                        Item::Record(record_from_pb(&r).ok_or("malformed record")?)
                    }
                    Some(pb::export_chunk::Item::Checkpoint(c)) => {
                        let c = checkpoint_from_pb(&c).ok_or("malformed checkpoint")?;
                        checkpoint = Some(c.sequence);
                        Item::Checkpoint(c)
                    }
                    None => continue,
                };
                writeln!(file, "{}", json::export_line(&item))?;
            }
            file.flush()?;
            match checkpoint {
                Some(seq) => println!(
                    "exported {records} records to {}, covered by the checkpoint at {seq}",
                    out.display()
                ),
                None => println!(
                    "exported {records} records to {}; no checkpoint covers them yet",
                    out.display()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoints { connect: c, save } => {
            let (mut client, token) = connect(&c).await?;
            let list = client
                .list_checkpoints(authed(&token, pb::ListCheckpointsRequest::default())?)
                .await
                .map_err(refused)?
                .into_inner()
                .checkpoints;
            for c in &list {
                let c = checkpoint_from_pb(c).ok_or("malformed checkpoint")?;
                println!(
                    "{:>8}  {}  key {}  {}",
                    c.sequence,
                    report::local_time(c.time_us),
                    c.key_id,
                    lienthong_gateway::audit::record::hex(&c.record_hash)
                );
            }
            if let Some(path) = save {
                let last = list
                    .last()
                    .and_then(checkpoint_from_pb)
                    .ok_or("no checkpoint to save yet")?;
                std::fs::write(&path, json::checkpoint(&last).to_string())?;
                println!(
                    "saved the checkpoint at {} to {}",
                    last.sequence,
                    path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            trail,
            export,
            dormant_days,
            burst_count,
            format,
        } => {
            let mut records: Vec<Record> = Vec::new();
            let mut unreadable: Option<FrameError> = None;
            for item in frames(trail.as_deref(), export.as_deref())? {
                match item {
                    Ok((_, Item::Record(r))) => records.push(r),
                    Ok((_, Item::Checkpoint(_))) => {}
                    Err(e) => {
                        unreadable = Some(e);
                        break;
                    }
                }
            }
            let thresholds = report::Thresholds {
                dormant_days,
                burst_count,
                ..Default::default()
            };
            let signals = report::signals(&records, &thresholds);
            match format {
                Format::Table => print!("{}", report::render(&signals, records.len())),
                Format::Jsonl | Format::Csv => {
                    for s in &signals {
                        println!(
                            "{}",
                            serde_json::json!({"kind": s.kind, "subject": s.subject, "detail": s.detail, "sequences": s.sequences})
                        );
                    }
                }
            }
            // A report over part of a trail must not pass for a report over all of it.
            if let Some(e) = unreadable {
                let after = records
                    .last()
                    .map(|r| format!("after sequence {}", r.sequence))
                    .unwrap_or_else(|| "before the first record".into());
                let at = if export.is_some() { "line" } else { "byte" };
                eprintln!(
                    "auditctl: INCOMPLETE: the {} cannot be read past {at} {} ({after}): {}; the report above covers only the {} records before it — run `auditctl verify` on it",
                    if export.is_some() { "export" } else { "trail" },
                    e.offset,
                    e.problem,
                    records.len()
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `verify --central`: every chain in the store, read in order and verified here with the
/// public keys (the store's own checks on arrival are not trusted for this). Says per chain up
/// to which sequence it is complete and verified, what waits past a gap, what was kept aside.
/// Exit 0: every chain verifies and is complete; 1: a chain fails; 4: every chain verifies but
/// one has a gap or quarantined items.
fn read_public_keys(paths: &[PathBuf]) -> Result<Vec<ed25519_dalek::VerifyingKey>, Error> {
    let mut keys = Vec::new();
    for path in paths {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        keys.push(public_key_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    Ok(keys)
}

async fn verify_central(
    url: &str,
    schema: &str,
    keys: Vec<ed25519_dalek::VerifyingKey>,
) -> Result<ExitCode, Error> {
    let chains = chains::verify(url, schema, keys).await?;
    if chains.is_empty() {
        println!("the central store (schema {schema}) holds no chain");
        return Ok(ExitCode::SUCCESS);
    }
    let (mut bad, mut incomplete) = (false, false);
    for chain in &chains {
        let id = &chain.chain_id;
        match &chain.state {
            chains::State::Bad { sequence, problem } => {
                bad = true;
                println!("{id}: BAD at sequence {sequence}: {problem}");
            }
            chains::State::Verified {
                head,
                records,
                checkpoints,
                signed_to,
            } => {
                let signed = match signed_to {
                    Some(s) => format!("signed up to {s}"),
                    None => "no signed checkpoint yet".to_owned(),
                };
                println!(
                    "{id}: complete and verified to sequence {head} ({records} records, {checkpoints} checkpoint signatures; {signed})"
                );
            }
            chains::State::Empty => println!("{id}: no records yet"),
        }
        if let Some((next, waiting)) = chain.gap {
            incomplete = true;
            println!("{id}: GAP at sequence {next}: {waiting} later record(s) wait for it");
        }
        if chain.quarantined > 0 {
            incomplete = true;
            println!(
                "{id}: {} record(s) or checkpoint(s) refused by the store and kept aside (table {schema}.quarantine)",
                chain.quarantined
            );
        }
    }
    Ok(if bad {
        ExitCode::from(1)
    } else if incomplete {
        ExitCode::from(4)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_flags_are_read_as_written_and_impossible_ones_refused() {
        let at = |s: &str| parse_local(s).map(|t| t.seconds);
        // 23/11/2026 00:00 in Vietnam is 22/11/2026 17:00 UTC.
        assert_eq!(at("2026-11-23").unwrap(), at("23/11/2026").unwrap());
        assert_eq!(
            at("2026-11-23T08:00").unwrap() - at("2026-11-23").unwrap(),
            8 * 3600
        );
        assert_eq!(
            at("2026-11-23 08:00").unwrap(),
            at("2026-11-23T08:00").unwrap()
        );
        assert_eq!(at("2026-11-23").unwrap() % 86_400, 17 * 3600);
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "31/04/2026",
            "2026-11-23T24:00",
            "yesterday",
            "2026-11",
        ] {
            let e = at(bad).unwrap_err().to_string();
            assert!(e.contains("use 2026-11-23"), "{bad}: {e}");
        }
    }
}
