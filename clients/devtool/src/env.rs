//! The one-command mock environment: a development PKI, a seeded population store and the mock
//! database serving mutual TLS, all under one directory, created on first start and reused after.

use crate::pki::{CertFiles, DevCa, PkiError, Validity};
use mock_csdl::{MockCsdl, ServeError, Settings, Spec, Store, StoreError, TlsFiles};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why the environment could not start.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The files of the development PKI inside the environment directory.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub ca: PathBuf,
    pub mock_csdl: CertFiles,
    /// The client certificate a connected system (and the example call) uses.
    pub dev_client: CertFiles,
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
            dev_client: pair("dev-client"),
        }
    }

    /// Creates the PKI unless it is already there.
    pub fn ensure(dir: &Path) -> Result<(Self, bool), PkiError> {
        let layout = Self::layout(dir);
        if layout.ca.exists() && layout.mock_csdl.cert.exists() && layout.dev_client.cert.exists() {
            return Ok((layout, false));
        }
        let ca = DevCa::create(&dir.join("pki"), "Liên Thông Dev CA")?;
        ca.server("mock-csdl", "mock-csdl")?;
        ca.unit_client(
            "dev-client",
            "000.00.00.DEV",
            "Developer workstation",
            Validity::Days(825),
        )?;
        Ok((layout, true))
    }
}

/// Opens the store under `dir`, generating it first when it holds no population.
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
        Err(e) => Err(e),
    }
}

/// Binds the mock database with mutual TLS.
pub async fn bind_mock(
    store: Store,
    pki: &DevPki,
    listen: SocketAddr,
) -> Result<MockCsdl, ServeError> {
    MockCsdl::build(
        store,
        &Settings {
            listen,
            tls: Some(TlsFiles {
                cert: pki.mock_csdl.cert.clone(),
                key: pki.mock_csdl.key.clone(),
                client_ca: Some(pki.ca.clone()),
            }),
        },
    )
    .await
}
