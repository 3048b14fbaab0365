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
    #[error("cannot connect to {endpoint}: {}", explained(source))]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

/// The error with its causes, and what to do about the usual ones.
fn explained(error: &tonic::transport::Error) -> String {
    let said = chain(error);
    let hint = if said.contains("Connection refused") {
        "; nothing listens there: is the gateway running? (`lienthong-dev up` starts the development environment)"
    } else if said.contains("UnknownIssuer") {
        "; the server's certificate is not from the CA given (--ca): use the CA that issued it"
    } else if said.contains("NotValidForName") {
        "; the server's certificate does not name this host: connect by a name it carries, or give --server-name"
    } else {
        ""
    };
    said + hint
}

/// An error with its causes ("transport error" alone does not say the certificate was refused).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

fn read(path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A channel to `endpoint` that trusts `ca` and presents `identity` (when given). The server
/// certificate must name the endpoint's host (the development certificates name `localhost`,
/// 127.0.0.1 and the hosts given to `lienthong-dev pki --host`).
pub async fn mtls_channel(
    endpoint: &str,
    ca: &Path,
    identity: Option<&CertFiles>,
) -> Result<Channel, ConnectError> {
    mtls_channel_as(endpoint, None, ca, identity).await
}

/// As [`mtls_channel`], checking the server certificate for `server_name` instead of the
/// endpoint's host when given (a name the caller's resolver does not know, reached by address).
pub async fn mtls_channel_as(
    endpoint: &str,
    server_name: Option<&str>,
    ca: &Path,
    identity: Option<&CertFiles>,
) -> Result<Channel, ConnectError> {
    if endpoint.starts_with("http://") {
        return Err(ConnectError::Endpoint {
            endpoint: endpoint.to_owned(),
            detail: "the servers speak TLS only: use https://".into(),
        });
    }
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    if let Some(name) = server_name {
        tls = tls.domain_name(name);
    }
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
