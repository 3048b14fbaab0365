//! `bare-proxy`: the floor the gateway is measured against. A tonic server with mutual TLS that
//! forwards `csdl.v1.PopulationRegistry/GetCitizen` to the mock population database over a
//! second mutual-TLS connection, and does nothing else: no token, no limits, no policy, no
//! filtering, no audit. Only `bench/run` starts it; it serves nobody.

use clap::Parser;
use lienthong_devtool::client::mtls_channel;
use lienthong_devtool::env::DevPki;
use lienthong_proto::csdl::v1 as pb;
use pb::population_registry_client::PopulationRegistryClient;
use pb::population_registry_server::{PopulationRegistry, PopulationRegistryServer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Channel, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

#[derive(Parser)]
#[command(
    name = "bare-proxy",
    version,
    about = "A bare tonic GetCitizen pass-through (benchmarks)"
)]
struct Cli {
    /// Where to listen (mutual TLS with the environment's gateway certificate).
    #[arg(long, default_value = "127.0.0.1:50071")]
    listen: SocketAddr,
    /// The mock population database.
    #[arg(long, default_value = "https://127.0.0.1:50061")]
    upstream: String,
    /// The environment directory (`lienthong-dev prepare`) holding the development PKI.
    #[arg(long, default_value = ".lienthong")]
    dir: PathBuf,
    /// Instead of forwarding, answer every GetCitizen with one record read from the upstream
    /// at start (the complete-adult persona): a bare tonic server with a reply of the same
    /// size, the floor for the mock database's own cost.
    #[arg(long)]
    canned: bool,
}

/// The answer to every method but GetCitizen.
fn not_forwarded<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented(
        "the bare proxy forwards GetCitizen only",
    ))
}

struct Proxy {
    upstream: PopulationRegistryClient<Channel>,
    canned: Option<pb::GetCitizenResponse>,
}

#[tonic::async_trait]
impl PopulationRegistry for Proxy {
    async fn get_citizen(
        &self,
        request: Request<pb::GetCitizenRequest>,
    ) -> Result<Response<pb::GetCitizenResponse>, Status> {
        if let Some(reply) = &self.canned {
            return Ok(Response::new(reply.clone()));
        }
        let mut upstream = self.upstream.clone();
        upstream.get_citizen(request.into_inner()).await
    }

    async fn get_household(
        &self,
        _: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::GetHouseholdResponse>, Status> {
        not_forwarded()
    }

    async fn submit_update(
        &self,
        _: Request<pb::SubmitUpdateRequest>,
    ) -> Result<Response<pb::DataUpdate>, Status> {
        not_forwarded()
    }

    async fn get_update(
        &self,
        _: Request<pb::GetUpdateRequest>,
    ) -> Result<Response<pb::DataUpdate>, Status> {
        not_forwarded()
    }

    async fn open_case(
        &self,
        _: Request<pb::OpenCaseRequest>,
    ) -> Result<Response<pb::BundleCase>, Status> {
        not_forwarded()
    }

    async fn complete_case_step(
        &self,
        _: Request<pb::CompleteCaseStepRequest>,
    ) -> Result<Response<pb::BundleCase>, Status> {
        not_forwarded()
    }

    async fn get_case(
        &self,
        _: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::BundleCase>, Status> {
        not_forwarded()
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let pki = DevPki::layout(&cli.dir);
    let mut upstream = PopulationRegistryClient::new(
        mtls_channel(&cli.upstream, &pki.ca, Some(&pki.gateway_upstream)).await?,
    );
    let canned = match cli.canned {
        true => Some(
            upstream
                .get_citizen(pb::GetCitizenRequest {
                    key: Some(pb::get_citizen_request::Key::PersonalId(
                        "042188999005".into(),
                    )),
                    request_id: String::new(),
                    household_link_only: true,
                })
                .await?
                .into_inner(),
        ),
        false => None,
    };
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            std::fs::read(&pki.gateway.cert)?,
            std::fs::read(&pki.gateway.key)?,
        ))
        .client_ca_root(Certificate::from_pem(std::fs::read(&pki.ca)?));
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    println!("bare-proxy listening on {}", listener.local_addr()?);
    Server::builder()
        .tls_config(tls)?
        .add_service(PopulationRegistryServer::new(Proxy { upstream, canned }))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await?;
    Ok(())
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bare-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}
