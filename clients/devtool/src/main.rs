//! `lienthong-dev`: start the whole mock environment in one command, create the development PKI,
//! and make an example call.

use clap::{Parser, Subcommand};
use lienthong_devtool::client::mtls_channel;
use lienthong_devtool::env::{DevPki, bind_mock, ensure_store};
use lienthong_proto::csdl::v1 as pb;
use mock_csdl::Spec;
use mock_csdl::cli::SpecArgs;
use mock_csdl::personas::PERSONAS;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lienthong-dev",
    version,
    about = "Liên Thông developer tooling"
)]
struct Cli {
    /// Directory holding the environment: PKI, population store.
    #[arg(
        long,
        global = true,
        env = "LIENTHONG_DIR",
        default_value = ".lienthong"
    )]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the mock environment (creating the PKI and the store on first run) and print what a
    /// connected system needs.
    Up {
        /// The population generated on first run.
        #[command(flatten)]
        population: SpecArgs,
        /// Where the mock population database listens.
        #[arg(long, env = "MOCK_CSDL_LISTEN", default_value = "127.0.0.1:50061")]
        csdl_listen: SocketAddr,
    },
    /// Create the development PKI only.
    Pki,
    /// Inject, list or clear faults in the running mock database.
    Fault {
        #[command(subcommand)]
        action: FaultAction,
        #[arg(long, global = true, default_value = "https://127.0.0.1:50061")]
        endpoint: String,
    },
    /// Look a citizen up in the running mock database with the development client certificate.
    Lookup {
        /// A 12-digit personal ID, or a 9-digit old ID number.
        id: String,
        #[arg(long, default_value = "https://127.0.0.1:50061")]
        endpoint: String,
    },
}

/// Which calls a fault applies to.
#[derive(clap::Args)]
struct FaultScopeArgs {
    /// Only this method (GetCitizen or GetHousehold); default every method.
    #[arg(long)]
    method: Option<String>,
    /// Only calls about this personal ID; default every citizen.
    #[arg(long)]
    id: Option<String>,
    /// Seed of the fault's random draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Subcommand)]
enum FaultAction {
    /// Delay matching calls.
    Latency {
        #[arg(long)]
        ms: u32,
        #[arg(long, default_value_t = 0)]
        jitter_ms: u32,
        #[command(flatten)]
        scope: FaultScopeArgs,
    },
    /// Fail a fraction of matching calls with a status code (14 UNAVAILABLE, 4 DEADLINE_EXCEEDED...).
    Error {
        #[arg(long)]
        rate: f64,
        #[arg(long, default_value_t = 14)]
        code: i32,
        #[command(flatten)]
        scope: FaultScopeArgs,
    },
    /// Fail every n-th matching call.
    EveryNth {
        #[arg(long)]
        n: u32,
        #[arg(long, default_value_t = 14)]
        code: i32,
        #[command(flatten)]
        scope: FaultScopeArgs,
    },
    /// Fail every matching call in a time window.
    Outage {
        #[arg(long, default_value_t = 0)]
        after_ms: u64,
        #[arg(long)]
        for_ms: u64,
        #[command(flatten)]
        scope: FaultScopeArgs,
    },
    /// List the faults in force.
    List,
    /// Clear one fault by id, or every run-time fault.
    Clear {
        #[arg(long)]
        id: Option<String>,
        /// Also clear the chaos personas' built-in faults.
        #[arg(long)]
        include_builtin: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lienthong-dev: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lienthong-dev: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Pki => {
            let (pki, created) = DevPki::ensure(&cli.dir)?;
            let verb = if created {
                "created"
            } else {
                "already present"
            };
            println!("development PKI {verb}: CA {}", pki.ca.display());
            Ok(())
        }
        Command::Up {
            population,
            csdl_listen,
        } => up(&cli.dir, population.spec(), csdl_listen).await,
        Command::Lookup { id, endpoint } => lookup(&cli.dir, &id, &endpoint).await,
        Command::Fault { action, endpoint } => fault(&cli.dir, action, &endpoint).await,
    }
}

async fn up(
    dir: &std::path::Path,
    spec: Spec,
    listen: SocketAddr,
) -> Result<(), Box<dyn std::error::Error>> {
    let (pki, created) = DevPki::ensure(dir)?;
    if created {
        eprintln!(
            "created the development PKI in {}",
            dir.join("pki").display()
        );
    }
    let store_dir = dir.to_owned();
    eprintln!(
        "opening the population store (generating {} citizens on first run)...",
        spec.citizens
    );
    let (store, generated) =
        tokio::task::spawn_blocking(move || ensure_store(&store_dir, spec, |_| {})).await??;
    let meta = store.meta()?;
    if generated {
        eprintln!("generated {} citizens, seed {}", meta.citizens, meta.seed);
    }
    let mock = bind_mock(store, &pki, listen).await?;
    let addr = mock.local_addr();
    print_connection_info(&pki, addr, &meta);
    mock.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("stopping: draining in-flight calls");
    })
    .await?;
    Ok(())
}

fn print_connection_info(pki: &DevPki, addr: SocketAddr, meta: &mock_csdl::StoreMeta) {
    println!();
    println!("Liên Thông mock environment is up.");
    println!();
    println!("  Mock population database (csdl.v1, mutual TLS)");
    println!("    endpoint          https://{addr}   (server name: localhost)");
    println!("    CA certificate    {}", pki.ca.display());
    println!("    client cert       {}", pki.dev_client.cert.display());
    println!("    client key        {}", pki.dev_client.key.display());
    println!(
        "    population        {} citizens, seed {}{}",
        meta.citizens,
        meta.seed,
        meta.province
            .map(|p| format!(", province {p:03}"))
            .unwrap_or_default()
    );
    println!(
        "    services          lienthong.csdl.v1.PopulationRegistry, lienthong.csdl.v1.RegistryAdmin,"
    );
    println!("                      grpc.health.v1.Health, grpc.reflection.v1.ServerReflection");
    println!();
    println!("  Personas (in every store; see PERSONAS.md)");
    for p in PERSONAS {
        println!("    {:<22} {}  {}", p.key, p.personal_id, p.full_name);
    }
    println!();
    println!("  Try it (in another terminal):");
    println!("    cargo run -q -p lienthong-devtool --bin lienthong-dev -- lookup 042188999005");
    println!();
    println!("Press Ctrl-C to stop.");
}

async fn lookup(
    dir: &std::path::Path,
    id: &str,
    endpoint: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let pki = DevPki::layout(dir);
    let channel = mtls_channel(endpoint, &pki.ca, Some(&pki.dev_client)).await?;
    let mut client = pb::population_registry_client::PopulationRegistryClient::new(channel);
    let key = if id.len() == 9 {
        pb::get_citizen_request::Key::OldIdNumber(id.to_owned())
    } else {
        pb::get_citizen_request::Key::PersonalId(id.to_owned())
    };
    let reply = client
        .get_citizen(pb::GetCitizenRequest {
            key: Some(key),
            request_id: "lienthong-dev".to_owned(),
        })
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
    // A closed pipe (e.g. `| head`) is not an error worth a panic.
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{:#?}", reply.into_inner().citizen);
    Ok(())
}

async fn fault(
    dir: &std::path::Path,
    action: FaultAction,
    endpoint: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    use pb::fault::Effect;
    let pki = DevPki::layout(dir);
    let channel = mtls_channel(endpoint, &pki.ca, Some(&pki.dev_client)).await?;
    let mut admin = pb::registry_admin_client::RegistryAdminClient::new(channel);
    let status = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
    let (scope, effect) = match action {
        FaultAction::List => {
            let faults = admin
                .list_faults(pb::ListFaultsRequest {})
                .await
                .map_err(status)?
                .into_inner()
                .faults;
            for f in faults {
                println!("{:#?}", f);
            }
            return Ok(());
        }
        FaultAction::Clear {
            id,
            include_builtin,
        } => {
            let removed = admin
                .clear_faults(pb::ClearFaultsRequest {
                    id: id.unwrap_or_default(),
                    include_builtin,
                })
                .await
                .map_err(status)?
                .into_inner()
                .removed;
            println!("removed {removed} fault(s)");
            return Ok(());
        }
        FaultAction::Latency {
            ms,
            jitter_ms,
            scope,
        } => (
            scope,
            Effect::Latency(pb::LatencyFault {
                fixed_ms: ms,
                jitter_ms,
            }),
        ),
        FaultAction::Error { rate, code, scope } => (
            scope,
            Effect::Error(pb::ErrorFault {
                rate,
                code,
                message: String::new(),
            }),
        ),
        FaultAction::EveryNth { n, code, scope } => {
            (scope, Effect::EveryNth(pb::EveryNthFault { n, code }))
        }
        FaultAction::Outage {
            after_ms,
            for_ms,
            scope,
        } => (
            scope,
            Effect::Outage(pb::OutageFault {
                start_after_ms: after_ms,
                duration_ms: for_ms,
            }),
        ),
    };
    let set = admin
        .set_fault(pb::SetFaultRequest {
            fault: Some(pb::Fault {
                scope: Some(pb::FaultScope {
                    method: scope.method.unwrap_or_default(),
                    personal_id: scope.id.unwrap_or_default(),
                }),
                effect: Some(effect),
                seed: scope.seed,
                ..Default::default()
            }),
        })
        .await
        .map_err(status)?
        .into_inner();
    println!("fault set: {}", set.fault.map(|f| f.id).unwrap_or_default());
    Ok(())
}
