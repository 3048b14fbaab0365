//! Connecting to a Liên Thông server with mutual TLS, as a connected system would.

use crate::pki::CertFiles;
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{endpoint:?} is not a usable endpoint (expected e.g. https://127.0.0.1:50061): {detail}"
    )]
    Endpoint { endpoint: String, detail: String },
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A channel to `endpoint` that trusts `ca` and presents `identity` (when given). The server
/// name checked is `localhost`, which the development certificates carry.
pub async fn mtls_channel(
    endpoint: &str,
    ca: &Path,
    identity: Option<&CertFiles>,
) -> Result<Channel, ConnectError> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(Identity::from_pem(read(&id.cert)?, read(&id.key)?));
    }
    let bad = |detail: String| ConnectError::Endpoint {
        endpoint: endpoint.to_owned(),
        detail,
    };
    Channel::from_shared(endpoint.to_owned())
        .map_err(|e| bad(e.to_string()))?
        .tls_config(tls)
        .map_err(|e| bad(e.to_string()))?
        .connect()
        .await
        .map_err(|source| ConnectError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })
}
