//! The one-command mock environment: a development PKI (CA, server and unit certificates, the
//! token issuer's key), a seeded population store, the gateway's configuration, and the mock
//! database and gateway serving mutual TLS, all under one directory, created on first start and
//! reused after.

use crate::pki::{CertFiles, DevCa, IssuerFiles, PkiError, ServerHosts, Validity, issuer_keys};
use crate::sample::{self, SampleUnit};
use lienthong_gateway::{App, AppError, Config, ConfigError};
use mock_csdl::{MockCsdl, ServeError, Settings, Spec, Store, StoreError, TlsFiles};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The development gateway configuration, written into the environment directory.
pub const GATEWAY_CONFIG: &str = include_str!("../../../deploy/gateway.dev.toml");
/// The shipped procedure catalog.
pub const PROCEDURES: &str = include_str!("../../../deploy/procedures.toml");

/// Why the environment could not start.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gateway(#[from] AppError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The files of the development PKI inside the environment directory.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub ca: PathBuf,
    pub mock_csdl: CertFiles,
    pub gateway: CertFiles,
    /// The gateway's client certificate towards the population database.
    pub gateway_upstream: CertFiles,
    /// A client certificate for direct calls to the mock database (unit 000.00.00.DEV).
    pub dev_client: CertFiles,
    /// The token issuer's key pair.
    pub issuer: IssuerFiles,
    /// The token issuer's public key as a JWK Set (`jwks = "pki/issuer.jwks.json"`), the way an
    /// identity provider publishes it.
    pub issuer_jwks: PathBuf,
    /// The Ed25519 key pair signing the audit checkpoints (reviewers verify with the public key).
    pub audit_signing: IssuerFiles,
    /// The secret keying citizen pseudonyms in the audit trail (hex).
    pub audit_pseudonym: PathBuf,
    pki: PathBuf,
}

impl DevPki {
    /// The file layout under `dir/pki`.
    pub fn layout(dir: &Path) -> Self {
        let pki = dir.join("pki");
        let pair = |stem: &str| CertFiles {
            cert: pki.join(format!("{stem}.pem")),
            key: pki.join(format!("{stem}.key")),
        };
        Self {
            ca: pki.join("ca.pem"),
            mock_csdl: pair("mock-csdl"),
            gateway: pair("gateway"),
            gateway_upstream: pair("gateway-upstream"),
            dev_client: pair("dev-client"),
            issuer: IssuerFiles {
                key: pki.join("issuer.key"),
                public_key: pki.join("issuer.pub.pem"),
            },
            issuer_jwks: pki.join("issuer.jwks.json"),
            audit_signing: IssuerFiles {
                key: pki.join("audit-signing.key"),
                public_key: pki.join("audit-signing.pub.pem"),
            },
            audit_pseudonym: pki.join("audit-pseudonym.key"),
            pki,
        }
    }

    /// A sample unit's client certificate.
    pub fn unit(&self, unit: &SampleUnit) -> CertFiles {
        CertFiles {
            cert: self.pki.join("units").join(format!("{}.pem", unit.key)),
            key: self.pki.join("units").join(format!("{}.key", unit.key)),
        }
    }

    fn complete(&self) -> bool {
        let mut files = vec![
            &self.ca,
            &self.mock_csdl.cert,
            &self.gateway.cert,
            &self.gateway_upstream.cert,
            &self.dev_client.cert,
            &self.issuer.key,
            &self.audit_signing.key,
            &self.audit_pseudonym,
        ];
        let units: Vec<CertFiles> = sample::UNITS.iter().map(|u| self.unit(u)).collect();
        files.extend(units.iter().map(|u| &u.cert));
        files.iter().all(|f| f.exists())
    }

    /// Creates the PKI unless it is all already there.
    pub fn ensure(dir: &Path) -> Result<(Self, bool), PkiError> {
        let (layout, made) = Self::ensure_for(dir, None)?;
        Ok((layout, made == Made::Created))
    }

    /// The hosts the server certificates name (saved with the PKI).
    pub fn hosts(&self) -> Result<ServerHosts, PkiError> {
        ServerHosts::load(&self.pki)
    }

    /// Creates the PKI unless it is all already there. When `hosts` are given and differ from
    /// those the server certificates name, both server certificates are reissued for them by
    /// the same CA (unit certificates, keys and tokens stay valid) and the hosts are saved.
    pub fn ensure_for(dir: &Path, hosts: Option<&ServerHosts>) -> Result<(Self, Made), PkiError> {
        let layout = Self::layout(dir);
        if layout.complete() {
            // Environments made before keys were private get their modes fixed.
            crate::pki::tighten(&layout.pki).map_err(|source| PkiError::Write {
                path: layout.pki.clone(),
                source,
            })?;
            if !layout.issuer_jwks.exists() {
                layout.publish_issuer_jwks()?;
            }
            return match hosts {
                Some(wanted) if *wanted != layout.hosts()? => {
                    let ca = DevCa::open(&layout.pki)?;
                    layout.issue_servers(&ca, wanted)?;
                    Ok((layout, Made::Reissued))
                }
                _ => Ok((layout, Made::Present)),
            };
        }
        let ca = DevCa::create(&layout.pki, "Liên Thông Dev CA")?;
        layout.issue_servers(&ca, &hosts.cloned().unwrap_or_default())?;
        let g = sample::GATEWAY_UNIT;
        ca.unit_client(g.key, g.code, g.name, Validity::Days(825))?;
        ca.unit_client(
            "dev-client",
            "000.00.00.DEV",
            "Developer workstation",
            Validity::Days(825),
        )?;
        for u in sample::UNITS {
            ca.unit_client(
                &format!("units/{}", u.key),
                u.code,
                u.name,
                Validity::Days(825),
            )?;
        }
        issuer_keys(&layout.pki, "issuer")?;
        layout.publish_issuer_jwks()?;
        issuer_keys(&layout.pki, "audit-signing")?;
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        crate::pki::write_secret(&layout.audit_pseudonym, &(secret + "\n"))?;
        Ok((layout, Made::Created))
    }

    /// Writes the token issuer's public key as a JWK Set.
    fn publish_issuer_jwks(&self) -> Result<(), PkiError> {
        let private = std::fs::read(&self.issuer.key).map_err(|source| PkiError::Read {
            path: self.issuer.key.clone(),
            source,
        })?;
        let (_, jwk) = crate::tokens::issuer_jwk(&private).ok_or_else(|| PkiError::Write {
            path: self.issuer_jwks.clone(),
            source: std::io::Error::other("the issuer key is not an Ed25519 key in PKCS#8 PEM"),
        })?;
        let text = serde_json::json!({ "keys": [jwk] }).to_string();
        std::fs::write(&self.issuer_jwks, text + "\n").map_err(|source| PkiError::Write {
            path: self.issuer_jwks.clone(),
            source,
        })
    }

    fn issue_servers(&self, ca: &DevCa, hosts: &ServerHosts) -> Result<(), PkiError> {
        ca.server("mock-csdl", "mock-csdl", hosts)?;
        ca.server("gateway", "lienthong-gateway", hosts)?;
        hosts.save(&self.pki)
    }
}

/// What [`DevPki::ensure_for`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    Created,
    Present,
    /// The server certificates were reissued for other hosts.
    Reissued,
}

/// Opens the store under `dir`, generating it first when it holds no population, or one written
/// by an older build (a generated store holds nothing the seed cannot give again).
pub fn ensure_store(
    dir: &Path,
    spec: Spec,
    progress: impl FnMut(u64),
) -> Result<(Store, bool), StoreError> {
    let store = Store::open(&dir.join("csdl.sled"))?;
    match store.meta() {
        Ok(_) => Ok((store, false)),
        Err(StoreError::NotGenerated) => {
            store.generate(spec, false, progress)?;
            Ok((store, true))
        }
        Err(StoreError::Format { found }) => {
            tracing::warn!(
                found,
                "the population store was written in an older format: generating it again"
            );
            store.generate(spec, true, progress)?;
            Ok((store, true))
        }
        Err(e) => Err(e),
    }
}

/// Binds the mock database with mutual TLS: its data service for the gateway (and, in the
/// development environment, the developer workstation's certificate, for `lienthong-dev
/// lookup`), its admin service on `admin_listen` for the developer workstation's certificate,
/// its metrics on `metrics_listen` when given.
pub async fn bind_mock(
    store: Store,
    pki: &DevPki,
    (listen, admin_listen): (SocketAddr, SocketAddr),
    metrics_listen: Option<SocketAddr>,
) -> Result<MockCsdl, ServeError> {
    let tls = TlsFiles {
        cert: pki.mock_csdl.cert.clone(),
        key: pki.mock_csdl.key.clone(),
        client_ca: Some(pki.ca.clone()),
    };
    let mut settings = Settings::new(listen, Some(tls), Some(admin_listen));
    settings.metrics_listen = metrics_listen;
    settings
        .data_clients
        .push(mock_csdl::server::DEV_ADMIN_UNIT.to_owned());
    MockCsdl::build(store, &settings).await
}

/// Writes the gateway configuration and procedure catalog into `dir` unless they are there (so
/// local edits survive restarts). Returns the configuration file's path.
pub fn ensure_gateway_config(dir: &Path) -> Result<PathBuf, EnvError> {
    let write = |name: &str, contents: &str| -> Result<PathBuf, EnvError> {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, contents).map_err(|source| EnvError::Write {
                path: path.clone(),
                source,
            })?;
        }
        Ok(path)
    };
    write("procedures.toml", PROCEDURES)?;
    write("gateway.toml", GATEWAY_CONFIG)
}

/// Loads the environment's gateway configuration, listening on `listen` and calling the mock
/// database at `upstream`, and binds the gateway.
pub async fn bind_gateway(
    config_file: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
) -> Result<App, EnvError> {
    bind_gateway_with(config_file, listen, upstream, (None, None)).await
}

/// As [`bind_gateway`], with the admin listener (`GET /metrics`) on `admin` and the HTTP/JSON
/// API on `http` when given.
pub async fn bind_gateway_with(
    config_file: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    (admin, http): (Option<SocketAddr>, Option<SocketAddr>),
) -> Result<App, EnvError> {
    let prefix = lienthong_gateway::config::ENV_PREFIX;
    let overrides = [
        (format!("{prefix}LISTEN"), format!("\"{listen}\"")),
        (
            format!("{prefix}UPSTREAM__ENDPOINT"),
            format!("\"https://{upstream}\""),
        ),
    ]
    .into_iter()
    .chain(admin.map(|a| (format!("{prefix}ADMIN_LISTEN"), format!("\"{a}\""))))
    .chain(http.map(|a| (format!("{prefix}HTTP_LISTEN"), format!("\"{a}\""))));
    let env = std::env::vars()
        .filter(|(k, _)| k.starts_with(prefix))
        .chain(overrides);
    let config = Config::load(config_file, env)?;
    Ok(App::build(config).await?)
}

/// A mock database serving in the background (tests and tools): a store of `citizens` generated
/// with `seed` under `dir`, mutual TLS on a random port. Dropping the handle stops it.
pub struct RunningMock {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Generates a small store and serves it on 127.0.0.1, port 0.
pub async fn spawn_mock(
    dir: &Path,
    pki: &DevPki,
    seed: u64,
    citizens: u64,
) -> Result<RunningMock, EnvError> {
    let store = Store::open(&dir.join("csdl.sled"))?;
    store.generate(
        Spec {
            seed,
            citizens,
            province: None,
        },
        false,
        |_| {},
    )?;
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mock = bind_mock(store, pki, (any, any), None).await?;
    let addr = mock.local_addr();
    let admin_addr = mock.admin_addr().unwrap_or(any);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mock.run_until_stopped(async {
        let _ = rx.await;
    }));
    Ok(RunningMock {
        addr,
        admin_addr,
        _stop: stop,
    })
}
