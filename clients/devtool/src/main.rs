//! `lienthong-dev`: start the whole mock environment in one command (mock database and gateway),
//! create the development PKI, mint officer tokens, and call the gateway as a one-stop system.

use clap::{Parser, Subcommand};
use lienthong_devtool::call;
use lienthong_devtool::client::mtls_channel;
use lienthong_devtool::env::{
    DevPki, Made, bind_gateway_with, bind_mock, ensure_gateway_config, ensure_store,
};
use lienthong_devtool::pki::{Host, ServerHosts};
use lienthong_devtool::running::Running;
use lienthong_devtool::sample;
use lienthong_devtool::units::{self, Acting};
use lienthong_proto::csdl::v1 as pb;
use lienthong_proto::gateway::v1 as gw;
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
        #[command(flatten)]
        hosts: HostArgs,
        /// Where the mock population database listens.
        #[arg(long, env = "MOCK_CSDL_LISTEN", default_value = "127.0.0.1:50061")]
        csdl_listen: SocketAddr,
        /// Where the mock database's admin service (faults) listens.
        #[arg(
            long,
            env = "MOCK_CSDL_ADMIN_LISTEN",
            default_value = "127.0.0.1:50062"
        )]
        csdl_admin_listen: SocketAddr,
        /// Where the gateway listens.
        #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:50051")]
        gateway_listen: SocketAddr,
        /// Where the gateway serves its HTTP/JSON API (mutual TLS, `POST /v1/<Operation>`).
        #[arg(long, env = "GATEWAY_HTTP_LISTEN", default_value = "127.0.0.1:50443")]
        http_listen: SocketAddr,
        /// Where the gateway serves its metrics (`GET /metrics`, plain HTTP).
        #[arg(long, env = "GATEWAY_ADMIN_LISTEN", default_value = "127.0.0.1:9464")]
        admin_listen: SocketAddr,
        /// Where the mock database serves its metrics (`GET /metrics`, plain HTTP).
        #[arg(
            long,
            env = "MOCK_CSDL_METRICS_LISTEN",
            default_value = "127.0.0.1:9465"
        )]
        csdl_metrics_listen: SocketAddr,
    },
    /// Mint an officer's token, bound to their unit's certificate: a sample officer, or any
    /// officer of a unit of this environment (with --unit and --roles).
    Token {
        #[command(flatten)]
        who: OfficerArgs,
        /// A citizen token instead, as VNeID would vouch for this citizen (their personal ID) to
        /// the portal of --unit (Hà Tĩnh's by default): it reads only the citizen's own access
        /// history (AuditService/ListMyAccesses).
        #[arg(long, conflicts_with = "roles")]
        citizen: Option<String>,
        /// With --citizen: the citizen's consent to an auto-fill of this procedure (the token for
        /// `context.consent_token` on the citizen-consent channel).
        #[arg(long, requires = "citizen")]
        consent: Option<String>,
        /// Validity in minutes (at most the issuer's max_lifetime_seconds, 12 h by default).
        #[arg(long, default_value_t = 480)]
        minutes: u64,
    },
    /// Register your own connected unit, list the units, revoke a unit's certificate; the
    /// running gateway reloads.
    Unit {
        #[command(subcommand)]
        action: UnitAction,
    },
    /// Call the gateway as a one-stop system, for a sample officer.
    Call {
        #[command(subcommand)]
        call: GatewayCall,
        #[command(flatten)]
        who: OfficerArgs,
        /// The procedure (mã thủ tục).
        #[arg(long, global = true, default_value = "1.004222")]
        procedure: String,
        /// The dossier (mã hồ sơ).
        #[arg(long, global = true, default_value = "H42.01-251123-0001")]
        dossier: String,
        #[arg(long, global = true, default_value = "https://127.0.0.1:50051")]
        endpoint: String,
        /// The name the gateway's certificate must carry, when it is not the endpoint's host
        /// (e.g. a --host name your resolver does not know, reached by its address).
        #[arg(long, global = true)]
        server_name: Option<String>,
        /// Print the reply in the protobuf JSON mapping instead of for people.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Check a one-stop system's integration against a gateway serving the sandbox personas:
    /// identity, tokens, procedures and their fields, verification, auto-fill and the bundles,
    /// refusals, rate limits, receipts. Exit 0 when nothing failed, 1 otherwise, 2 when the
    /// gateway could not be reached.
    Check {
        #[arg(long, default_value = "https://127.0.0.1:50051")]
        endpoint: String,
        /// The name the gateway's certificate must carry, when it is not the endpoint's host.
        #[arg(long)]
        server_name: Option<String>,
        /// The CA of the gateway's certificate (default: this environment's).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// The unit's certificate and key (default: the officer's unit's in this environment).
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// The officer's token (default: minted here for --officer, bound to the certificate).
        #[arg(long)]
        token_file: Option<PathBuf>,
        #[command(flatten)]
        who: OfficerArgs,
        /// Another unit's certificate and key, to check that the token is refused with them.
        #[arg(long, requires = "other_key")]
        other_cert: Option<PathBuf>,
        #[arg(long, requires = "other_cert")]
        other_key: Option<PathBuf>,
        /// Also write the results as JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Create the development PKI only (or reissue its server certificates for other hosts).
    Pki {
        #[command(flatten)]
        hosts: HostArgs,
    },
    /// Create everything `up` serves (PKI, seeded store, gateway configuration and catalog)
    /// without serving, for running `mock-csdl serve` and `lienthong-gateway` as separate
    /// processes (benchmarks, systemd).
    Prepare {
        #[command(flatten)]
        population: SpecArgs,
        #[command(flatten)]
        hosts: HostArgs,
    },
    /// Inject, list or clear faults in the running mock database (its admin service).
    Fault {
        #[command(subcommand)]
        action: FaultAction,
        #[arg(long, global = true, default_value = "https://127.0.0.1:50062")]
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

/// Who acts.
#[derive(clap::Args)]
struct OfficerArgs {
    /// The officer (mã cán bộ): a sample officer (see `lienthong-dev up`), or any officer of
    /// a unit of this environment, given with --unit and --roles.
    #[arg(long, global = true, default_value = "CB.H42.0001")]
    officer: String,
    /// The officer's unit (default: a sample officer's own). Its certificate is used.
    #[arg(long, global = true)]
    unit: Option<String>,
    /// The officer's roles, comma-separated: receiver, processor, approver, auditor, admin
    /// (default: a sample officer's own).
    #[arg(long, global = true, value_delimiter = ',')]
    roles: Vec<String>,
}

impl OfficerArgs {
    fn acting(&self, dir: &std::path::Path) -> Result<Acting, lienthong_devtool::units::UnitError> {
        units::acting(dir, &self.officer, self.unit.as_deref(), &self.roles)
    }
}

/// A unit action.
#[derive(Subcommand)]
enum UnitAction {
    /// Register a unit: its client certificate and key (PEM, and a PKCS#12 bundle with a
    /// printed password), its entry in the gateway configuration (validated first), and a
    /// reload of the running gateway.
    Add {
        /// The unit's agency code (mã định danh đơn vị), e.g. 000.00.00.H48.
        #[arg(long)]
        code: String,
        /// The unit's name, as its certificate carries it.
        #[arg(long)]
        name: String,
        /// The procedures granted, comma-separated (`*` for the whole catalog).
        #[arg(long, value_delimiter = ',', required = true)]
        procedures: Vec<String>,
        /// The environment its credentials are issued for.
        #[arg(long = "env", default_value = "sandbox", value_parser = ["sandbox", "production"])]
        environment: String,
    },
    /// The units of the gateway configuration, their procedures and certificates.
    List,
    /// Revoke a unit's certificate: the gateway refuses it from its next call on
    /// (CERTIFICATE_REVOKED), without a restart.
    Revoke {
        #[arg(long)]
        code: String,
    },
}

/// The hosts the servers are reached by.
#[derive(clap::Args)]
struct HostArgs {
    /// A host name or IP address the gateway and the mock database are reached by, besides
    /// localhost and 127.0.0.1 (repeat the flag, or separate with commas). Saved with the PKI;
    /// given again with other hosts, the server certificates are reissued by the same CA.
    /// `--host localhost` goes back to the local names only.
    #[arg(long = "host", env = "LIENTHONG_HOSTS", value_delimiter = ',')]
    hosts: Vec<Host>,
}

impl HostArgs {
    fn requested(&self) -> Option<ServerHosts> {
        (!self.hosts.is_empty()).then(|| ServerHosts::new(self.hosts.iter().cloned()))
    }
}

fn is_loopback(host: &Host) -> bool {
    match host {
        Host::Ip(ip) => ip.is_loopback(),
        Host::Dns(name) => name == "localhost",
    }
}

/// A gateway call.
#[derive(Subcommand)]
enum GatewayCall {
    /// LookupCitizen: the procedure's fields of a citizen (12-digit ID, or 9-digit old ID).
    Lookup {
        id: String,
        /// Only these fields (comma-separated); default all the procedure allows.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
    },
    /// VerifyCitizen: compare declared values, e.g. --claim "full_name=Nguyễn Văn Hà".
    Verify {
        id: String,
        #[arg(long = "claim", required = true)]
        claims: Vec<String>,
    },
    /// AutofillForm: the procedure's e-form filled from the record.
    Autofill {
        id: String,
        /// On the citizen-consent channel, with the citizen's consent to this procedure (a
        /// development citizen token): what a VNeID login withholds comes back unfilled.
        #[arg(long)]
        consent: bool,
    },
    /// GetHousehold: the citizen's household (residence procedures only).
    Household { id: String },
    /// ListProcedures: what the officer may use (--all for the whole catalog).
    Procedures {
        #[arg(long)]
        all: bool,
    },
    /// VerifyBatch from a CSV file: header `item_id,personal_id,<field>,…`, one row per
    /// declaration; prints one line per item.
    Batch { file: PathBuf },
    /// SubmitUpdate: send a phone or health-insurance number back to the database (with
    /// --procedure MH.LAMGIAU and a processor).
    Update {
        id: String,
        /// phone, health_insurance_number or current_address ("detail, commune, province" in the
        /// 2025 units).
        #[arg(long)]
        field: String,
        #[arg(long)]
        value: String,
        /// The document the value comes from.
        #[arg(long, default_value = "")]
        evidence: String,
    },
    /// GetUpdate: where an update your unit sent stands.
    UpdateStatus { update_id: String },
    /// OpenBundle: a bundle case for a declaring parent (--procedure LT.KHAISINH) or the
    /// deceased (--procedure LT.KHAITU).
    OpenBundle { id: String },
    /// CompleteBundleStep: one agency's action on a case's ready step, under the step's
    /// procedure, e.g. --enter ho_ten_tre="Lê Gia Bảo".
    BundleStep {
        case_id: String,
        /// A value the officer enters, key=value (repeat the flag).
        #[arg(long = "enter")]
        entered: Vec<String>,
    },
    /// GetBundleCase: where a case your unit opened stands.
    BundleCase { case_id: String },
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
    lienthong_telemetry::init("warn,lienthong::request=info");
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
        Command::Pki { hosts } => {
            let (pki, made) = DevPki::ensure_for(&cli.dir, hosts.requested().as_ref())?;
            let verb = match made {
                Made::Created => "created",
                Made::Present => "already present",
                Made::Reissued => "present; server certificates reissued",
            };
            println!("development PKI {verb}: CA {}", pki.ca.display());
            println!("server certificates name: {}", pki.hosts()?);
            Ok(())
        }
        Command::Up {
            population,
            hosts,
            csdl_listen,
            csdl_admin_listen,
            gateway_listen,
            http_listen,
            admin_listen,
            csdl_metrics_listen,
        } => {
            up(
                &cli.dir,
                (population, hosts.requested()),
                (csdl_listen, csdl_admin_listen, csdl_metrics_listen),
                (gateway_listen, admin_listen, http_listen),
            )
            .await
        }
        Command::Prepare { population, hosts } => {
            prepare(&cli.dir, population, hosts.requested().as_ref()).await?;
            println!("prepared {}", cli.dir.display());
            Ok(())
        }
        Command::Token {
            who,
            citizen,
            consent,
            minutes,
        } => {
            let acting = match citizen {
                Some(id) => units::citizen(&cli.dir, &id, who.unit.as_deref())?,
                None => who.acting(&cli.dir)?,
            };
            println!(
                "{}",
                units::token(&cli.dir, &acting, consent.as_deref(), minutes)?
            );
            Ok(())
        }
        Command::Unit { action } => unit(&cli.dir, action).await,
        Command::Check {
            endpoint,
            server_name,
            ca,
            cert,
            key,
            token_file,
            who,
            other_cert,
            other_key,
            junit,
        } => {
            let pki = DevPki::layout(&cli.dir);
            let (identity, token) = match (token_file, cert.zip(key)) {
                (Some(file), Some((cert, key))) => (
                    lienthong_devtool::pki::CertFiles { cert, key },
                    std::fs::read_to_string(&file)
                        .map_err(|e| format!("--token-file {}: {e}", file.display()))?
                        .trim()
                        .to_owned(),
                ),
                (Some(_), None) => {
                    return Err(
                        "--token-file needs the certificate it is bound to: give --cert and --key"
                            .into(),
                    );
                }
                (None, identity) => {
                    let acting = who.acting(&cli.dir)?;
                    let token = units::token(&cli.dir, &acting, None, 60)?;
                    let identity = identity
                        .map(|(cert, key)| lienthong_devtool::pki::CertFiles { cert, key })
                        .unwrap_or(acting.certificate);
                    (identity, token)
                }
            };
            let target = lienthong_devtool::check::Target {
                endpoint,
                server_name,
                ca: ca.unwrap_or(pki.ca),
                identity,
                token,
                other: other_cert
                    .zip(other_key)
                    .map(|(cert, key)| lienthong_devtool::pki::CertFiles { cert, key }),
            };
            let cases = match lienthong_devtool::check::run(&target).await {
                Ok(cases) => cases,
                Err(e) => {
                    eprintln!("lienthong-dev check: {e}");
                    std::process::exit(2);
                }
            };
            print!("{}", lienthong_devtool::check::table(&cases));
            if let Some(path) = junit {
                std::fs::write(&path, lienthong_devtool::check::junit(&cases))
                    .map_err(|e| format!("--junit {}: {e}", path.display()))?;
            }
            let failed = cases
                .iter()
                .any(|c| c.outcome == lienthong_devtool::check::Outcome::Fail);
            std::process::exit(i32::from(failed));
        }
        Command::Call {
            call,
            who,
            procedure,
            dossier,
            endpoint,
            server_name,
            json,
        } => {
            let to = (endpoint.as_str(), server_name.as_deref());
            let acting = who.acting(&cli.dir)?;
            gateway_call(&cli.dir, to, &acting, (&procedure, &dossier, json), call).await
        }
        Command::Lookup { id, endpoint } => lookup(&cli.dir, &id, &endpoint).await,
        Command::Fault { action, endpoint } => fault(&cli.dir, action, &endpoint).await,
    }
}

/// The PKI, the seeded store and the gateway configuration under `dir`, each created when
/// missing.
async fn prepare(
    dir: &std::path::Path,
    population: SpecArgs,
    hosts: Option<&ServerHosts>,
) -> Result<(DevPki, mock_csdl::store::Store, std::path::PathBuf), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let (pki, made) = DevPki::ensure_for(dir, hosts)?;
    match made {
        Made::Created => eprintln!(
            "created the development PKI in {} (server names: {})",
            dir.join("pki").display(),
            pki.hosts()?
        ),
        Made::Reissued => eprintln!("reissued the server certificates for: {}", pki.hosts()?),
        Made::Present => {}
    }
    let store_dir = dir.to_owned();
    let spec = population.spec();
    eprintln!(
        "opening the population store (generating {} citizens on first run)...",
        spec.citizens
    );
    let (store, generated) =
        tokio::task::spawn_blocking(move || ensure_store(&store_dir, spec, |_| {})).await??;
    let meta = store.meta()?;
    if !generated && let Some(differ) = population.conflicts_with(&meta) {
        return Err(format!(
            "the environment in {} already holds a population, so {differ} cannot apply to it: leave the option out to use it, delete {} to generate another, or start another environment with --dir",
            dir.display(),
            dir.join("csdl.sled").display()
        )
        .into());
    }
    if generated {
        eprintln!("generated {} citizens, seed {}", meta.citizens, meta.seed);
    }
    let config_file = ensure_gateway_config(dir)?;
    Ok((pki, store, config_file))
}

async fn up(
    dir: &std::path::Path,
    (population, hosts): (SpecArgs, Option<ServerHosts>),
    (csdl_listen, csdl_admin_listen, csdl_metrics_listen): (SocketAddr, SocketAddr, SocketAddr),
    (gateway_listen, admin_listen, http_listen): (SocketAddr, SocketAddr, SocketAddr),
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(running) = Running::find(dir) {
        return Err(format!(
            "the environment in {} is already running (lienthong-dev up, process {}); its gateway is at {}. Use it, stop it first (Ctrl-C in its terminal, or kill -TERM {}), or start another environment with --dir and other ports",
            dir.display(),
            running.pid,
            running.endpoint,
            running.pid
        )
        .into());
    }
    let (pki, store, config_file) = prepare(dir, population, hosts.as_ref()).await?;
    let names = pki.hosts()?;
    if gateway_listen.ip().is_loopback() && names.extra().iter().any(|h| !is_loopback(h)) {
        eprintln!(
            "note: the certificates name {names}, but the gateway listens on {gateway_listen}, which only this machine reaches; to be reached from others, add --gateway-listen 0.0.0.0:{}",
            gateway_listen.port()
        );
    }
    let meta = store.meta()?;
    let mock = bind_mock(
        store,
        &pki,
        (csdl_listen, csdl_admin_listen),
        Some(csdl_metrics_listen),
    )
    .await?;
    let mock_metrics = mock.metrics_addr().unwrap_or(csdl_metrics_listen);
    let mock_addr = mock.local_addr();
    let mock_admin_addr = mock.admin_addr().unwrap_or(csdl_admin_listen);
    let gateway = bind_gateway_with(
        &config_file,
        gateway_listen,
        mock_addr,
        (Some(admin_listen), Some(http_listen)),
    )
    .await?;
    let gateway_addr = gateway.local_addr();
    let admin_addr = gateway.admin_addr().unwrap_or(admin_listen);
    let http_addr = gateway.http_addr().unwrap_or(http_listen);
    let token_file = dir.join("tokens").join("CB.H42.0001.jwt");
    std::fs::create_dir_all(dir.join("tokens"))?;
    std::fs::write(&token_file, token(dir, "CB.H42.0001", 480)?)?;
    // Listening for the stop signals before saying the environment is up.
    let stop = lienthong_telemetry::signals::stop_requested();
    let running = Running::mark(dir, &format!("https://{gateway_addr}"), admin_addr)?;
    print_connection_info(
        &pki,
        (gateway_addr, admin_addr, http_addr),
        (mock_addr, mock_admin_addr, mock_metrics),
        &meta,
        &config_file,
        &token_file,
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mock_task = tokio::spawn(mock.run_until_stopped(stopped(stop_rx.clone())));
    let gateway_task = tokio::spawn(gateway.run_until_stopped(stopped(stop_rx)));
    // Ctrl-C in a terminal, SIGTERM from a container runtime or a service manager: the same.
    stop.await;
    eprintln!("stopping: draining in-flight calls");
    let _ = stop_tx.send(true);
    gateway_task.await??;
    mock_task.await??;
    drop(running);
    Ok(())
}

/// Registers, lists or revokes units; the running gateway reloads after a change.
async fn unit(dir: &std::path::Path, action: UnitAction) -> Result<(), Box<dyn std::error::Error>> {
    let code = |code: &str| {
        lienthong_domain::UnitCode::parse(code)
            .map_err(|e| format!("--code {code:?}: {e} (an agency code such as 000.00.00.H48)"))
    };
    match action {
        UnitAction::Add {
            code: c,
            name,
            procedures,
            environment,
        } => {
            let new = units::NewUnit {
                code: code(&c)?,
                name,
                procedures,
                environment,
            };
            let made = units::add(dir, &new)?;
            println!(
                "registered unit {} ({}), {} credentials, procedures {}",
                new.code,
                new.name,
                new.environment,
                new.procedures.join(", ")
            );
            println!(
                "  certificate   {}   (SHA-256 {})",
                made.certificate.cert.display(),
                made.fingerprint
            );
            println!("  key           {}", made.certificate.key.display());
            println!(
                "  PKCS#12       {}   password {}",
                made.bundle.display(),
                made.bundle_password
            );
            println!(
                "                Java: keytool -list -storetype PKCS12 -keystore {} ; .NET: new X509Certificate2(path, password)",
                made.bundle.display()
            );
            println!("  CA            {}", DevPki::layout(dir).ca.display());
            print_reload(dir).await?;
            println!(
                "  token         lienthong-dev token --unit {} --officer CB.<unit>.0001 --roles receiver",
                new.code
            );
        }
        UnitAction::List => {
            println!(
                "{:<14} {:<10} {:<10} {:<44} certificate",
                "unit", "env", "approval", "procedures"
            );
            for u in units::list(dir)? {
                let procedures = u.procedures.join(",");
                let procedures = if procedures.chars().count() > 42 {
                    format!(
                        "{}… ({})",
                        procedures.chars().take(36).collect::<String>(),
                        u.procedures.len()
                    )
                } else {
                    procedures
                };
                let certificate = match (&u.certificate, u.revoked) {
                    (None, _) => "none in this environment".to_owned(),
                    (Some(c), true) => format!("REVOKED {}", c.display()),
                    (Some(c), false) => c.display().to_string(),
                };
                println!(
                    "{:<14} {:<10} {:<10} {:<44} {certificate}",
                    u.code, u.environment, u.approval, procedures
                );
            }
        }
        UnitAction::Revoke { code: c } => {
            let fingerprint = units::revoke(dir, &code(&c)?)?;
            println!("revoked the certificate of unit {c} (SHA-256 {fingerprint})");
            print_reload(dir).await?;
        }
    }
    Ok(())
}

async fn print_reload(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    match units::reload_running(dir).await? {
        units::Reloaded::Applied(said) => {
            println!(
                "  gateway       reloaded: {}",
                said.lines().next().unwrap_or("")
            )
        }
        units::Reloaded::NotRunning => println!(
            "  gateway       not running: the change applies at the next `lienthong-dev up`"
        ),
    }
    Ok(())
}

fn token(
    dir: &std::path::Path,
    officer: &str,
    minutes: u64,
) -> Result<String, Box<dyn std::error::Error>> {
    let acting = units::acting(dir, officer, None, &[])?;
    Ok(units::token(dir, &acting, None, minutes)?)
}

fn print_connection_info(
    pki: &DevPki,
    (gateway, admin, http): (SocketAddr, SocketAddr, SocketAddr),
    (mock, mock_admin, mock_metrics): (SocketAddr, SocketAddr, SocketAddr),
    meta: &mock_csdl::StoreMeta,
    config_file: &std::path::Path,
    token_file: &std::path::Path,
) {
    let h42 = sample::unit("ha-tinh").map(|u| pki.unit(u));
    println!();
    println!("Liên Thông mock environment is up.");
    println!();
    println!("  Gateway (lienthong.gateway.v1.CitizenGateway, mutual TLS + officer token)");
    let names = pki.hosts().map(|h| h.to_string()).unwrap_or_default();
    println!("    endpoint          https://{gateway}");
    println!("    server names      {names}   (the certificate's; connect by one of them)");
    println!("    CA certificate    {}", pki.ca.display());
    if let Some(h42) = &h42 {
        println!(
            "    client cert       {}   (unit 000.00.00.H42, Hà Tĩnh one-stop)",
            h42.cert.display()
        );
        println!("    client key        {}", h42.key.display());
    }
    println!(
        "    token             {}   (officer CB.H42.0001, receiver, 8 h)",
        token_file.display()
    );
    println!("                      send as metadata  authorization: Bearer <token>");
    println!("    configuration     {}", config_file.display());
    println!("    metrics           http://{admin}/metrics   (Prometheus; plain HTTP)");
    println!();
    println!("  HTTP/JSON API (the same operations, certificate and token; HTTP/1.1 and HTTP/2)");
    println!(
        "    endpoint          https://{http}/v1/<Operation>   (POST, JSON in the protobuf JSON mapping)"
    );
    println!("    OpenAPI 3.1       https://{http}/openapi.json");
    println!();
    println!(
        "  Sample units (certificates in {}/units/)",
        pki.ca
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    for u in sample::UNITS {
        println!("    {:<10} {}  {}", u.key, u.code, u.role);
    }
    println!();
    println!("  Sample officers (lienthong-dev token --officer <code>)");
    for o in sample::OFFICERS {
        println!(
            "    {:<12} {:<10} {:<28} {}",
            o.code,
            o.unit,
            o.roles.join(","),
            o.role
        );
    }
    println!();
    let dir = config_file.parent().unwrap_or(std::path::Path::new("."));
    println!("  Audit trail (lienthong.audit.v1.AuditService, auditor role: CB.H42.KT01)");
    println!(
        "    trail             {}",
        dir.join("audit/gw-dev-1.trail").display()
    );
    println!(
        "    public key        {}   (verifies the checkpoints)",
        pki.audit_signing.public_key.display()
    );
    println!(
        "    query             cargo run -q -p lienthong-auditctl --bin auditctl -- query --dev-dir {} --endpoint https://{gateway} --personal-id 042188999005",
        dir.display()
    );
    println!(
        "    verify offline    cargo run -q -p lienthong-auditctl --bin auditctl -- verify --trail {} --public-key {}",
        dir.join("audit/gw-dev-1.trail").display(),
        pki.audit_signing.public_key.display()
    );
    println!(
        "    console           cargo run -q -p lienthong-auditctl --bin auditctl -- serve --dev-dir {} --endpoint https://{gateway}",
        dir.display()
    );
    println!(
        "                      then http://127.0.0.1:50480/ (reviewers) and http://127.0.0.1:50480/citizen (a citizen's own history)"
    );
    println!();
    println!("  Mock population database (csdl.v1): https://{mock}");
    println!(
        "    data service      the gateway's certificate (and pki/dev-client.pem for `lienthong-dev lookup`)"
    );
    println!(
        "    admin service     https://{mock_admin}   (faults: lienthong-dev fault …, certificate pki/dev-client.pem)"
    );
    println!("    metrics           http://{mock_metrics}/metrics   (Prometheus; plain HTTP)");
    println!(
        "    population        {} citizens, seed {}{}",
        meta.citizens,
        meta.seed,
        meta.province
            .map(|p| format!(", province {p:03}"))
            .unwrap_or_default()
    );
    println!();
    println!("  Personas (in every store; see PERSONAS.md)");
    for p in PERSONAS {
        println!("    {:<22} {}  {}", p.key, p.personal_id, p.full_name);
    }
    println!();
    println!("  Try it (in another terminal):");
    println!(
        "    cargo run -q --release -p lienthong-devtool --bin lienthong-dev -- call lookup 042188999005 --procedure 1.004222"
    );
    println!(
        "    cargo run -q --release -p lienthong-devtool --bin lienthong-dev -- call verify 042092999014 --claim 'full_name=Nguyễn Văn Hà'"
    );
    println!(
        "    cargo run -q --release -p lienthong-devtool --bin lienthong-dev -- call autofill 042190999002 --procedure LT.KHAISINH"
    );
    if let Some(h42) = &h42 {
        println!("  or with grpcurl:");
        println!(
            "    grpcurl -cacert {} -cert {} -key {} -H \"authorization: Bearer $(cat {})\" \\",
            pki.ca.display(),
            h42.cert.display(),
            h42.key.display(),
            token_file.display()
        );
        println!(
            "      -d '{{\"context\":{{\"request_id\":\"r-1\",\"procedure_code\":\"1.004222\",\"dossier_id\":\"H42.01-0001\"}},\"personal_id\":\"042188999005\"}}' \\"
        );
        println!("      {gateway} lienthong.gateway.v1.CitizenGateway/LookupCitizen");
        println!("  or with curl, over the HTTP/JSON API:");
        println!(
            "    curl --cacert {} --cert {} --key {} -H \"authorization: Bearer $(cat {})\" \\",
            pki.ca.display(),
            h42.cert.display(),
            h42.key.display(),
            token_file.display()
        );
        println!(
            "      -H 'content-type: application/json' -d '{{\"context\":{{\"requestId\":\"r-2\",\"procedureCode\":\"1.004222\",\"dossierId\":\"H42.01-0001\"}},\"personalId\":\"042188999005\"}}' \\"
        );
        println!("      https://{http}/v1/LookupCitizen");
    }
    println!();
    println!("Press Ctrl-C to stop.");
}

/// One batch result: the item, the overall result, each field's result.
fn batch_line(r: &gw::VerifyBatchResponse) -> String {
    match &r.outcome {
        Some(gw::verify_batch_response::Outcome::Result(v)) => {
            let overall = gw::OverallResult::try_from(v.result)
                .map(|o| o.as_str_name().trim_start_matches("OVERALL_RESULT_"))
                .unwrap_or("?");
            let fields: Vec<String> = v
                .fields
                .iter()
                .map(|f| {
                    let result = gw::FieldResult::try_from(f.result)
                        .map(|r| r.as_str_name().trim_start_matches("FIELD_RESULT_"))
                        .unwrap_or("?");
                    format!("{}={result}", f.field)
                })
                .collect();
            format!("{:<12} {:<13} {}\n", r.item_id, overall, fields.join(" "))
        }
        Some(gw::verify_batch_response::Outcome::Error(e)) => {
            format!("{:<12} ERROR {} {}\n", r.item_id, e.reason, e.message_vi)
        }
        None => format!("{:<12} (no outcome)\n", r.item_id),
    }
}

/// How a reply is printed: for people, or as the protobuf JSON mapping.
fn shown<T: serde::Serialize>(
    json: bool,
    reply: tonic::Response<T>,
    human: impl FnOnce(&T) -> String,
) -> String {
    let receipt = lienthong_devtool::render::receipt(reply.metadata());
    let message = reply.into_inner();
    if json {
        serde_json::to_string_pretty(&message).unwrap_or_default()
    } else {
        format!("{}  {receipt}", human(&message))
    }
}

async fn gateway_call(
    dir: &std::path::Path,
    (endpoint, server_name): (&str, Option<&str>),
    acting: &Acting,
    (procedure, dossier, json): (&str, &str, bool),
    which: GatewayCall,
) -> Result<(), Box<dyn std::error::Error>> {
    use lienthong_devtool::render;
    let mut caller = call::connect_as(dir, endpoint, server_name, acting).await?;
    let ctx = || call::context(procedure, dossier);
    let subject = |id: &str| id.len() == 9;
    let result: Result<String, tonic::Status> = match which {
        GatewayCall::Lookup { id, fields } => {
            let subject = if subject(&id) {
                gw::lookup_citizen_request::Subject::OldIdNumber(id)
            } else {
                gw::lookup_citizen_request::Subject::PersonalId(id)
            };
            let req = caller.request(gw::LookupCitizenRequest {
                context: ctx(),
                subject: Some(subject),
                fields,
            });
            caller
                .client
                .lookup_citizen(req)
                .await
                .map(|r| shown(json, r, render::lookup))
        }
        GatewayCall::Verify { id, claims } => {
            let claims = claims
                .iter()
                .map(|c| {
                    let (field, value) = c.split_once('=').unwrap_or((c, ""));
                    gw::Claim {
                        field: field.to_owned(),
                        value: value.to_owned(),
                    }
                })
                .collect();
            let req = caller.request(gw::VerifyCitizenRequest {
                old_id_number: String::new(),
                context: ctx(),
                personal_id: id,
                claims,
            });
            caller
                .client
                .verify_citizen(req)
                .await
                .map(|r| shown(json, r, render::verification))
        }
        GatewayCall::Autofill { id, consent } => {
            let mut context = ctx();
            if consent && let Some(context) = &mut context {
                let citizen = units::citizen(dir, &id, Some(&acting.unit))?;
                context.channel = gw::Channel::CitizenConsent as i32;
                context.consent_token = units::token(dir, &citizen, Some(procedure), 10)?;
            }
            let subject = if subject(&id) {
                gw::autofill_form_request::Subject::OldIdNumber(id)
            } else {
                gw::autofill_form_request::Subject::PersonalId(id)
            };
            let req = caller.request(gw::AutofillFormRequest {
                context,
                subject: Some(subject),
            });
            caller
                .client
                .autofill_form(req)
                .await
                .map(|r| shown(json, r, render::form))
        }
        GatewayCall::Household { id } => {
            let req = caller.request(gw::GetHouseholdRequest {
                context: ctx(),
                personal_id: id,
            });
            caller
                .client
                .get_household(req)
                .await
                .map(|r| shown(json, r, render::household))
        }
        GatewayCall::Batch { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let items = call::batch_from_csv(&text, procedure, dossier)?;
            let req = caller.request(tokio_stream::iter(items));
            match caller.client.verify_batch(req).await {
                Err(s) => Err(s),
                Ok(reply) => {
                    let mut stream = reply.into_inner();
                    let mut out = String::new();
                    let mut all = Vec::new();
                    loop {
                        match stream.message().await {
                            Ok(Some(r)) => {
                                out.push_str(&batch_line(&r));
                                all.push(r);
                            }
                            Ok(None) => break,
                            Err(s) => {
                                out.push_str(&call::describe(&s));
                                break;
                            }
                        }
                    }
                    if json {
                        out = serde_json::to_string_pretty(&all).unwrap_or_default();
                    } else if let Ok(Some(trailers)) = stream.trailers().await {
                        out.push_str(&format!("  {}", render::receipt(&trailers)));
                    }
                    Ok(out)
                }
            }
        }
        GatewayCall::Update {
            id,
            field,
            value,
            evidence,
        } => {
            let req = caller.request(gw::SubmitUpdateRequest {
                context: ctx(),
                personal_id: id,
                field,
                value,
                evidence_ref: evidence,
            });
            caller
                .client
                .submit_update(req)
                .await
                .map(|r| shown(json, r, |m| render::update(m.update.as_ref())))
        }
        GatewayCall::UpdateStatus { update_id } => {
            let req = caller.request(gw::GetUpdateRequest {
                context: ctx(),
                update_id,
            });
            caller
                .client
                .get_update(req)
                .await
                .map(|r| shown(json, r, |m| render::update(m.update.as_ref())))
        }
        GatewayCall::OpenBundle { id } => {
            let req = caller.request(gw::OpenBundleRequest {
                context: ctx(),
                personal_id: id,
            });
            caller
                .client
                .open_bundle(req)
                .await
                .map(|r| shown(json, r, render::bundle))
        }
        GatewayCall::BundleStep { case_id, entered } => {
            let mut values = Vec::new();
            for e in entered {
                let Some((key, value)) = e.split_once('=') else {
                    return Err(
                        format!("--enter {e:?}: write key=value, e.g. gioi_tinh_tre=Nam").into(),
                    );
                };
                values.push(pb::EnteredValue {
                    key: key.trim().to_owned(),
                    value: value.to_owned(),
                });
            }
            let req = caller.request(gw::CompleteBundleStepRequest {
                context: ctx(),
                case_id,
                entered: values,
            });
            caller
                .client
                .complete_bundle_step(req)
                .await
                .map(|r| shown(json, r, render::bundle))
        }
        GatewayCall::BundleCase { case_id } => {
            let req = caller.request(gw::GetBundleCaseRequest {
                context: ctx(),
                case_id,
            });
            caller
                .client
                .get_bundle_case(req)
                .await
                .map(|r| shown(json, r, render::bundle))
        }
        GatewayCall::Procedures { all } => {
            let req = caller.request(gw::ListProceduresRequest {
                include_unavailable: all,
            });
            caller
                .client
                .list_procedures(req)
                .await
                .map(|r| shown(json, r, render::procedures))
        }
    };
    use std::io::Write;
    match result {
        Ok(text) => {
            let _ = writeln!(std::io::stdout(), "{text}");
            Ok(())
        }
        Err(status) => {
            let receipt = render::receipt(status.metadata());
            Err(format!("{}\n  {receipt}", call::describe(&status)).into())
        }
    }
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
            household_link_only: false,
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
