//! `mock-csdl`: generate a population store, serve it, print the persona table.

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mock_csdl::cli::SpecArgs;
use mock_csdl::personas::PERSONAS;
use mock_csdl::{MockCsdl, Settings, Store, TlsFiles};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "mock-csdl",
    version,
    about = "Mock national population database (CSDLQG về dân cư)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of the `serve` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Generate a store of synthetic citizens (personas included).
    Generate {
        /// Where the sled store lives.
        #[arg(long, env = "MOCK_CSDL_STORE", default_value = ".lienthong/csdl.sled")]
        store: PathBuf,
        #[command(flatten)]
        population: SpecArgs,
        /// Replace an existing population.
        #[arg(long)]
        force: bool,
    },
    /// Serve a generated store over gRPC.
    Serve {
        #[arg(long, env = "MOCK_CSDL_STORE", default_value = ".lienthong/csdl.sled")]
        store: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "MOCK_CSDL_LISTEN", default_value = "127.0.0.1:50061")]
        listen: SocketAddr,
        /// Server certificate (PEM). Without it the server speaks plaintext.
        #[arg(long, env = "MOCK_CSDL_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Server private key (PEM).
        #[arg(long, env = "MOCK_CSDL_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates chained to this CA (mutual TLS).
        #[arg(long, env = "MOCK_CSDL_CLIENT_CA", requires = "tls_cert")]
        client_ca: Option<PathBuf>,
        /// The admin service's own address (faults, personas, stats).
        #[arg(
            long,
            env = "MOCK_CSDL_ADMIN_LISTEN",
            default_value = "127.0.0.1:50062"
        )]
        admin_listen: SocketAddr,
        /// Serve Prometheus metrics (`GET /metrics`, plain HTTP) on this address.
        #[arg(long, env = "MOCK_CSDL_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        /// Serve gRPC health checking in plaintext on this address (for probes that cannot
        /// speak TLS, such as Kubernetes `grpc` probes).
        #[arg(long, env = "MOCK_CSDL_HEALTH_LISTEN")]
        health_listen: Option<SocketAddr>,
        /// A unit whose certificate may read citizens (repeat for more).
        #[arg(long = "data-client", default_value = mock_csdl::server::GATEWAY_UNIT)]
        data_clients: Vec<String>,
        /// A unit whose certificate may use the admin service (repeat for more).
        #[arg(long = "admin-client", default_value = mock_csdl::server::DEV_ADMIN_UNIT)]
        admin_clients: Vec<String>,
        /// How long an update sent back by a provincial system stays PENDING before it is
        /// decided (milliseconds).
        #[arg(long, env = "MOCK_CSDL_REVIEW_DELAY_MS", default_value_t = 2000)]
        review_delay_ms: u64,
    },
    /// Declarations as provincial systems hold them, drawn from the store's living citizens: a
    /// JSON array of VerifyBatch items (the protobuf JSON mapping, ready for `POST
    /// /v1/VerifyBatch`), each item id naming its kind of difference ("17:stale-phone"). The
    /// store must not be held by a running server.
    Declarations {
        #[arg(long, env = "MOCK_CSDL_STORE", default_value = ".lienthong/csdl.sled")]
        store: PathBuf,
        /// Share of declarations with a difference verification must flag.
        #[arg(long, default_value_t = 0.43)]
        rate: f64,
        /// Share of declarations with a variation verification must see through.
        #[arg(long, default_value_t = 0.10)]
        variations: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many declarations (at most one per living citizen).
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// The procedure and dossier named in the first item's context.
        #[arg(long, default_value = "2.000488")]
        procedure: String,
        #[arg(long, default_value = "H42.01-251123-0001")]
        dossier: String,
    },
    /// Print the persona table.
    Personas {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn main() -> ExitCode {
    lienthong_telemetry::init("info");
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mock-csdl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Generate {
            store,
            population,
            force,
        } => {
            let started = Instant::now();
            let db = Store::open(&store)?;
            let bar = ProgressBar::new(population.spec().citizens).with_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} citizens ({per_sec}, eta {eta})",
                )?,
            );
            let meta = db.generate(population.spec(), force, |n| bar.set_position(n))?;
            bar.finish_and_clear();
            println!(
                "generated {} citizens ({} personas) in {} households, seed {}, in {:.1}s -> {}",
                meta.citizens,
                meta.citizens - meta.generated,
                meta.households,
                meta.seed,
                started.elapsed().as_secs_f64(),
                store.display()
            );
            Ok(())
        }
        Command::Serve {
            store,
            listen,
            tls_cert,
            tls_key,
            client_ca,
            admin_listen,
            metrics_listen,
            health_listen,
            data_clients,
            admin_clients,
            review_delay_ms,
        } => {
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert,
                    key,
                    client_ca,
                }),
                _ => None,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let db = Store::open(&store)?;
                let server = MockCsdl::build(
                    db,
                    &Settings {
                        data_clients,
                        admin_clients,
                        metrics_listen,
                        health_listen,
                        review_delay: std::time::Duration::from_millis(review_delay_ms),
                        ..Settings::new(listen, tls.clone(), Some(admin_listen))
                    },
                )
                .await?;
                // Listening for the stop signals before saying it serves.
                let stop = shutdown_signal();
                println!(
                    "mock-csdl serving on {} (admin service on {}) ({})",
                    server.local_addr(),
                    server
                        .admin_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    match &tls {
                        Some(TlsFiles {
                            client_ca: Some(_), ..
                        }) => "mutual TLS",
                        Some(_) => "TLS",
                        None => "plaintext",
                    }
                );
                server.run_until_stopped(stop).await?;
                Ok::<_, Box<dyn std::error::Error>>(())
            })
        }
        Command::Declarations {
            store,
            rate,
            variations,
            seed,
            count,
            procedure,
            dossier,
        } => {
            use mock_csdl::declarations::{Declarations, Mix};
            let mut declarations = Declarations::new(Mix {
                rate,
                variations,
                seed,
            })?;
            let db = Store::open(&store)?;
            let mut items = Vec::with_capacity(count.min(1_000_000));
            for record in db.citizens() {
                if items.len() >= count {
                    break;
                }
                let record = record?;
                if record.life_status != lienthong_domain::LifeStatus::Alive {
                    continue;
                }
                let d = declarations.declare(&record);
                let mut item = serde_json::json!({
                    "itemId": format!("{}:{}", items.len(), d.kind.as_str()),
                    "claims": d.claims.iter().map(|(f, v)| serde_json::json!({
                        "field": f.as_str(),
                        "value": v,
                    })).collect::<Vec<_>>(),
                });
                match &d.old_id_subject {
                    Some(old) => item["oldIdNumber"] = serde_json::json!(old),
                    None => item["personalId"] = serde_json::json!(d.personal_id),
                }
                if items.is_empty() {
                    item["context"] = serde_json::json!({
                        "requestId": format!("declarations-{seed}"),
                        "procedureCode": procedure,
                        "dossierId": dossier,
                    });
                }
                items.push(item);
            }
            println!("{}", serde_json::to_string_pretty(&items)?);
            eprintln!("{} declarations", items.len());
            Ok(())
        }
        Command::Personas { format } => {
            match format {
                Format::Json => {
                    let rows: Vec<_> = PERSONAS
                        .iter()
                        .map(|p| {
                            serde_json::json!({
                                "key": p.key,
                                "personal_id": p.personal_id,
                                "old_id_number": p.old_id_number,
                                "full_name": p.full_name,
                                "scenario": p.scenario,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                }
                Format::Table => {
                    println!(
                        "{:<22} {:<13} {:<24} scenario",
                        "persona", "personal ID", "name"
                    );
                    for p in PERSONAS {
                        println!(
                            "{:<22} {:<13} {:<24} {}",
                            p.key, p.personal_id, p.full_name, p.scenario
                        );
                    }
                }
            }
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM (listening from the call on).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    let stop = lienthong_telemetry::signals::stop_requested();
    async move {
        stop.await;
        tracing::info!("shutting down: draining in-flight calls");
    }
}
