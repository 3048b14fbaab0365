//! The mock database's gRPC server: binds first (port 0 in tests), then serves the registry, the
//! admin service, health and reflection until told to stop.

use crate::faults::Faults;
use crate::personas;
use crate::service::Registry;
use crate::store::{Store, StoreError};
use lienthong_proto::csdl::v1::population_registry_server::PopulationRegistryServer;
use lienthong_proto::csdl::v1::registry_admin_server::RegistryAdminServer;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// TLS material, as PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate chained to this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// None serves plaintext (for local development only).
    pub tls: Option<TlsFiles>,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot read {what} from {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the TLS settings are unusable: {0}")]
    Tls(String),
    #[error("the server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn tls_config(files: &TlsFiles) -> Result<ServerTlsConfig, ServeError> {
    let identity = Identity::from_pem(
        read("the server certificate", &files.cert)?,
        read("the server key", &files.key)?,
    );
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &files.client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read("the client CA", ca)?));
    }
    Ok(tls)
}

/// A bound, not yet serving, mock database.
pub struct MockCsdl {
    listener: TcpListener,
    registry: Registry,
    tls: Option<ServerTlsConfig>,
    faults: Arc<Faults>,
}

impl MockCsdl {
    /// Checks the store, reads the TLS files and binds the listener.
    pub async fn build(store: Store, settings: &Settings) -> Result<Self, ServeError> {
        let meta = store.meta()?;
        let tls = settings.tls.as_ref().map(tls_config).transpose()?;
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        tracing::info!(citizens = meta.citizens, seed = meta.seed, "store opened");
        let faults = Arc::new(Faults::with_rules(personas::builtin_faults()));
        Ok(Self {
            listener,
            registry: Registry::new(store, faults.clone()),
            tls,
            faults,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The fault rules, for in-process control (tests, the dev environment).
    pub fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }

    /// Serves until `shutdown` completes, then drains in-flight calls.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<PopulationRegistryServer<Registry>>()
            .await;
        health.set_serving::<RegistryAdminServer<Registry>>().await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(lienthong_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ServeError::Tls(format!("reflection: {e}")))?;
        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = builder
                .tls_config(tls)
                .map_err(|e| ServeError::Tls(e.to_string()))?;
        }
        builder
            .add_service(health_service)
            .add_service(reflection)
            .add_service(PopulationRegistryServer::new(self.registry.clone()))
            .add_service(RegistryAdminServer::new(self.registry))
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY small replies wait out delayed ACKs (~40 ms each).
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await?;
        Ok(())
    }
}
