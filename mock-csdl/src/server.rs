//! The mock database's gRPC server: binds first (port 0 in tests), then serves until told to
//! stop. The registry (citizen data), with health and reflection, on the main address, for the
//! units named in `data_clients` only (the gateway); the admin service (faults, personas,
//! stats) on its own address, for the units named in `admin_clients` only. Under mutual TLS a
//! certificate is matched by the unit in its URI SAN `urn:lienthong:unit:<code>`.

use crate::faults::Faults;
use crate::metrics::{Metrics, MetricsLayer};
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
    /// None serves plaintext (for local development only: then anyone who reaches the ports
    /// reads and administers the database).
    pub tls: Option<TlsFiles>,
    /// The admin service's own address; None serves no admin service over the network (faults
    /// are then set from within the process only).
    pub admin_listen: Option<SocketAddr>,
    /// A plain-HTTP listener serving `GET /metrics` (Prometheus); None serves none.
    pub metrics_listen: Option<SocketAddr>,
    /// A plaintext listener serving gRPC health (`grpc.health.v1`) only, for probes that cannot
    /// speak TLS (Kubernetes `grpc` probes); None serves none.
    pub health_listen: Option<SocketAddr>,
    /// The units whose client certificates may read citizens (the gateway).
    pub data_clients: Vec<String>,
    /// The units whose client certificates may use the admin service.
    pub admin_clients: Vec<String>,
    /// How long an update sent back by a provincial system stays pending.
    pub review_delay: std::time::Duration,
}

/// The gateway's unit code towards the database.
pub const GATEWAY_UNIT: &str = "000.00.00.LTG";
/// The development workstation's unit code (the admin certificate of the dev environment).
pub const DEV_ADMIN_UNIT: &str = "000.00.00.DEV";

impl Settings {
    /// Mutual TLS (when `tls` is set), the gateway alone on the data service, the development
    /// admin certificate alone on the admin service.
    pub fn new(
        listen: SocketAddr,
        tls: Option<TlsFiles>,
        admin_listen: Option<SocketAddr>,
    ) -> Self {
        Self {
            listen,
            tls,
            admin_listen,
            metrics_listen: None,
            health_listen: None,
            data_clients: vec![GATEWAY_UNIT.to_owned()],
            admin_clients: vec![DEV_ADMIN_UNIT.to_owned()],
            review_delay: std::time::Duration::from_secs(2),
        }
    }
}

/// The URI SAN prefix naming a unit.
const UNIT_URI_PREFIX: &str = "urn:lienthong:unit:";

/// The unit a certificate names in its URI SAN.
fn unit_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => {
            u.strip_prefix(UNIT_URI_PREFIX).map(str::to_owned)
        }
        _ => None,
    })
}

/// Admits a call only from a certificate naming one of `units` (under mutual TLS).
#[derive(Clone)]
struct OnlyUnits {
    units: Arc<Vec<String>>,
    what: &'static str,
    enforce: bool,
}

impl tonic::service::Interceptor for OnlyUnits {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if !self.enforce {
            return Ok(request);
        }
        let unit = request
            .peer_certs()
            .and_then(|certs| certs.first().and_then(|leaf| unit_of(leaf)));
        match unit {
            Some(u) if self.units.contains(&u) => Ok(request),
            Some(u) => Err(tonic::Status::permission_denied(format!(
                "unit {u} may not use the {}: only {} may",
                self.what,
                self.units.join(", ")
            ))),
            None => Err(tonic::Status::unauthenticated(format!(
                "the {} needs a client certificate naming a unit (urn:lienthong:unit:<code>)",
                self.what
            ))),
        }
    }
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
    admin_listener: Option<TcpListener>,
    metrics_listener: Option<TcpListener>,
    health_listener: Option<TcpListener>,
    metrics: Arc<Metrics>,
    registry: Registry,
    tls: Option<ServerTlsConfig>,
    faults: Arc<Faults>,
    data_only: OnlyUnits,
    admin_only: OnlyUnits,
}

impl MockCsdl {
    /// Checks the store, reads the TLS files and binds the listener.
    pub async fn build(store: Store, settings: &Settings) -> Result<Self, ServeError> {
        let meta = store.meta()?;
        let tls = settings.tls.as_ref().map(tls_config).transpose()?;
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })
        };
        let listener = bind(settings.listen).await?;
        let admin_listener = match settings.admin_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let metrics_listener = match settings.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let health_listener = match settings.health_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let enforce = settings.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        if !enforce {
            tracing::warn!(
                "no mutual TLS: anyone who reaches the ports reads and administers the database"
            );
        }
        tracing::info!(citizens = meta.citizens, seed = meta.seed, "store opened");
        let faults = Arc::new(
            Faults::with_rules(personas::builtin_faults())
                .counting_on(metrics.fault_activations.clone()),
        );
        Ok(Self {
            listener,
            admin_listener,
            metrics_listener,
            health_listener,
            metrics,
            registry: Registry::new(store, faults.clone()).with_review_delay(settings.review_delay),
            tls,
            faults,
            data_only: OnlyUnits {
                units: Arc::new(settings.data_clients.clone()),
                what: "population registry",
                enforce,
            },
            admin_only: OnlyUnits {
                units: Arc::new(settings.admin_clients.clone()),
                what: "registry admin service",
                enforce,
            },
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The admin service's address, when it has one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The metrics listener's address, when it has one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The plaintext health listener's address, when it has one.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
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
        // Each port's reflection lists what that port serves.
        let reflection = |services: &[&str]| {
            lienthong_proto::reflection::serve(services)
                .map_err(|e| ServeError::Tls(format!("reflection: {e}")))
        };
        let (reflection_v1, reflection_v1alpha) = reflection(&[
            "lienthong.csdl.v1.PopulationRegistry",
            "grpc.health.v1.Health",
        ])?;
        let (admin_reflection_v1, admin_reflection_v1alpha) =
            reflection(&["lienthong.csdl.v1.RegistryAdmin", "grpc.health.v1.Health"])?;
        let metrics_task = self
            .metrics_listener
            .map(|l| tokio::spawn(crate::metrics::serve(l, self.metrics.clone())));
        // Probes that cannot speak TLS read the same health states on a plaintext port.
        let plain_health = self.health_listener.map(|listener| {
            tokio::spawn(
                Server::builder()
                    .add_service(health_service.clone())
                    .serve_with_incoming(TcpIncoming::from(listener)),
            )
        });
        let counted = MetricsLayer(self.metrics.clone());
        let builder = || -> Result<_, ServeError> {
            let mut builder = Server::builder();
            if let Some(tls) = self.tls.clone() {
                builder = builder
                    .tls_config(tls)
                    .map_err(|e| ServeError::Tls(e.to_string()))?;
            }
            Ok(builder.layer(counted.clone()))
        };
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = match self.admin_listener {
            Some(listener) => Some(tokio::spawn(
                builder()?
                    .add_service(health_service.clone())
                    .add_service(admin_reflection_v1)
                    .add_service(admin_reflection_v1alpha)
                    .add_service(RegistryAdminServer::with_interceptor(
                        self.registry.clone(),
                        self.admin_only,
                    ))
                    .serve_with_incoming_shutdown(
                        TcpIncoming::from(listener).with_nodelay(Some(true)),
                        async {
                            let _ = admin_stopped.await;
                        },
                    ),
            )),
            None => None,
        };
        let served = builder()?
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(PopulationRegistryServer::with_interceptor(
                self.registry,
                self.data_only,
            ))
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY small replies wait out delayed ACKs (~40 ms each).
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await;
        let _ = stop_admin.send(());
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        if let Some(m) = metrics_task {
            m.abort();
        }
        if let Some(h) = plain_health {
            h.abort();
        }
        served?;
        Ok(())
    }
}
